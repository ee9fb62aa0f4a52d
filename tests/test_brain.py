"""The EngramBrain scores each action by the mean outcome of the neighbours that took it (read from
a real in-process FAISS memory; the seed's own calls on a real Milvus store)."""
from __future__ import annotations

import numpy as np
import pytest

from resonant_vectors.agent.brain import EngramBrain
from resonant_vectors.agent.resonators import IResonatorFactory, WeightedResonatorFactory
from resonant_vectors.memory.in_process import InProcessMemory
from resonant_vectors.memory.seam import Engram, EngramColumns, new_ids
from resonant_vectors.memory.store import EngramStore

HERE = (0.0,) * 8


def memory_of(*engrams: tuple) -> InProcessMemory:
    """An exact in-process memory of (vector, action, outcome) engrams."""
    memory = InProcessMemory(9, exact=True)
    count = len(engrams)
    memory.add(EngramColumns.of(id=new_ids(count), vector=[vector for vector, _, _ in engrams],
                                action=[action for _, action, _ in engrams],
                                outcome=[outcome for _, _, outcome in engrams], trial=np.zeros(count),
                                reward=np.zeros(count), next_vector=np.zeros((count, 9)), ended=np.ones(count)))
    return memory


def make_brain(store, noise=0.0, probabilistic=False, seed=0) -> EngramBrain:
    return EngramBrain(9, 4, store, WeightedResonatorFactory([1.0] * 8), noise=noise, neighbours=300,
                       probabilistic_choice=probabilistic, rng=np.random.default_rng(seed))


@pytest.fixture(scope="module")
def handmade_store() -> InProcessMemory:
    """Engrams around one situation: action 1 went well (+0.8, +0.4), action 2 badly (-0.5),
    action 3 both ways (+1, -1, -0.4); nobody took action 0."""
    near = [(0.01 * i,) + (0.0,) * 8 for i in range(6)]
    return memory_of((near[0], 1, 0.8), (near[1], 1, 0.4), (near[2], 2, -0.5), (near[3], 3, 1.0),
                     (near[4], 3, -1.0), (near[5], 3, -0.4))


def test_each_action_scores_the_mean_outcome_of_its_neighbours_and_zero_if_none(handmade_store):
    scores = make_brain(handmade_store).decide(HERE, success=0.0)
    np.testing.assert_allclose(scores, [0.0, 0.6, -0.5, -0.4 / 3], atol=1e-6)


def test_without_noise_the_best_scoring_action_is_chosen(handmade_store):
    brain = make_brain(handmade_store)
    assert brain.choose(brain.decide(HERE, 0.0))[0] == 1


def test_noise_is_gaussian_with_the_configured_spread(handmade_store):
    brain = make_brain(handmade_store, noise=0.1)
    samples = np.stack([brain.decide(HERE, 0.0) for _ in range(40)])
    spread = (samples - [0.0, 0.6, -0.5, -0.4 / 3]).std()
    assert 0.07 < spread < 0.13


def test_a_batch_of_situations_is_scored_like_each_alone(handmade_store):
    brain = make_brain(handmade_store)
    batch = brain.consult(np.zeros((3, 8), dtype=np.float32), 0.0)
    assert batch.scores.shape == (3, 4)
    np.testing.assert_allclose(batch.scores, np.tile(brain.decide(HERE, 0.0), (3, 1)))
    squared_distances = [(0.01 * i) ** 2 for i in range(6)]  # L2 as Milvus and FAISS give it: squared
    assert batch.neighbour_distance == pytest.approx([np.mean(squared_distances)] * 3, rel=1e-3)


def test_an_empty_memory_gives_uniform_random_scores():
    brain = make_brain(InProcessMemory(9))
    scores = np.stack([brain.decide(HERE, 0.0) for _ in range(200)])
    assert ((scores >= 0) & (scores < 1)).all()
    assert np.bincount(scores.argmax(axis=1), minlength=4).min() > 25


def test_probabilistic_choice_samples_in_proportion_to_score_minus_min():
    brain = EngramBrain.__new__(EngramBrain)
    brain.output_size, brain.probabilistic_choice, brain.rng = 4, True, np.random.default_rng(0)
    choices = brain.choose(np.tile([0.0, 1.0, 3.0, 0.0], (4000, 1)))
    counts = np.bincount(choices, minlength=4)
    assert counts[0] == counts[3] == 0
    assert counts[2] / counts[1] == pytest.approx(3.0, rel=0.15)


def test_feedback_to_an_in_process_memory_is_remembered_too():
    memory = InProcessMemory(9)
    make_brain(memory).apply_feedback([0.5] * 8, 2, -0.25, success=0.75)
    assert memory.count() == 1 and memory.engrams().action.tolist() == [2]


def test_feedback_becomes_an_engram_with_the_trials_success_and_is_stored(settings, collection_name):
    store = EngramStore(collection_name, reset=True, settings=settings)
    engram = make_brain(store).apply_feedback([0.5] * 8, 2, -0.25, success=0.75, trial=7)
    assert engram == Engram((0.5,) * 8 + (0.75,), 2, -0.25, 7)
    assert store.get_count() == 1


def test_the_seeds_own_calls_work_as_the_seed_meant_them(settings, collection_name):
    store = EngramStore(collection_name, reset=True, settings=settings)
    brain = EngramBrain(9, 4, store, WeightedResonatorFactory([1.0] * 8))  # 9: the resonator's size
    assert brain.engram_store is store and brain.store is store
    brain.apply_feedback([0.1] * 8, 3, 0.9, 0.5)
    assert brain.choose(brain.decide([0.1] * 8, 0.5))[0] == 3  # the one engram it added speaks
    assert store.get_count() == 1


class SeedStyleFactory(IResonatorFactory):
    """A factory written against the seed's interface: only ``make_resonator``."""

    def make_resonator(self, input, success):
        return np.append(np.asarray(input, dtype=np.float32), np.float32(success))


def test_a_factory_implementing_only_the_seeds_make_resonator_serves_a_brain(handmade_store):
    brain = EngramBrain(9, 4, handmade_store, SeedStyleFactory(), noise=0.0)
    np.testing.assert_allclose(SeedStyleFactory().make_resonators(np.ones((2, 8)), np.array([0.5, -0.5]))[:, 8],
                               [0.5, -0.5])
    np.testing.assert_allclose(brain.decide(HERE, success=0.0), [0.0, 0.6, -0.5, -0.4 / 3], atol=1e-6)


def test_a_resonator_size_that_does_not_match_the_store_is_refused(handmade_store):
    with pytest.raises(ValueError, match="resonator_size 8: expected the length of the store's vectors, 9"):
        EngramBrain(8, 4, handmade_store, WeightedResonatorFactory([1.0] * 8))


def test_inputs_of_the_wrong_length_are_refused(handmade_store):
    with pytest.raises(ValueError, match="expected rows of 8 numbers"):
        make_brain(handmade_store).decide([0.0] * 9, 0.0)


def test_distance_weighting_lets_nearer_neighbours_speak_louder(handmade_store):
    brain = EngramBrain(9, 4, handmade_store, WeightedResonatorFactory([1.0] * 8), noise=0.0, neighbours=300,
                        weighting="distance")
    weight = {i: 1 / (0.01 * i + 0.001) for i in range(6)}  # engram i lies 0.01 * i away
    expected = [0.0, (0.8 * weight[0] + 0.4 * weight[1]) / (weight[0] + weight[1]), -0.5,
                (weight[3] - weight[4] - 0.4 * weight[5]) / (weight[3] + weight[4] + weight[5])]
    np.testing.assert_allclose(brain.decide(HERE, success=0.0), expected, atol=1e-4)


def test_an_unknown_weighting_is_refused(handmade_store):
    with pytest.raises(ValueError, match="weighting: expected one of .*'uniform'.*got 'nearest'"):
        EngramBrain(9, 4, handmade_store, WeightedResonatorFactory([1.0] * 8), weighting="nearest")


@pytest.fixture(scope="module")
def crowded_store() -> InProcessMemory:
    """Around one situation: ten near engrams of action 0 that went so-so (+0.2), and two a little
    farther of action 1 that went well (+0.9)."""
    return memory_of(*[((0.001 * i,) + (0.0,) * 8, 0, 0.2) for i in range(10)],
                     *[((0.5 + 0.01 * i,) + (0.0,) * 8, 1, 0.9) for i in range(2)])


def test_one_memory_per_action_picks_the_action_whose_own_neighbours_are_best(crowded_store):
    shared = EngramBrain(9, 4, crowded_store, WeightedResonatorFactory([1.0] * 8), noise=0.0, neighbours=5)
    per_action = EngramBrain(9, 4, crowded_store, WeightedResonatorFactory([1.0] * 8), noise=0.0, neighbours=5,
                             per_action=True)
    assert shared.choose(shared.decide(HERE, 0.0))[0] == 0  # its 5 neighbours all took action 0
    scores = per_action.decide(HERE, 0.0)
    np.testing.assert_allclose(scores, [0.2, 0.9, 0.0, 0.0], atol=1e-6)
    assert per_action.choose(scores)[0] == 1


def test_an_action_without_neighbours_scores_the_untried_value(crowded_store):
    hopeful = EngramBrain(9, 4, crowded_store, WeightedResonatorFactory([1.0] * 8), noise=0.0, neighbours=5,
                          per_action=True, untried_score=1.0)
    np.testing.assert_allclose(hopeful.decide(HERE, 0.0), [0.2, 0.9, 1.0, 1.0], atol=1e-6)
    consultation = hopeful.consult(np.zeros((1, 8), np.float32), 0.0)
    assert consultation.best_value[0] == pytest.approx(0.9)  # untried actions are no value to bootstrap from


def test_epsilon_greedy_explores_with_its_probability_and_never_at_zero():
    brain = EngramBrain.__new__(EngramBrain)
    brain.output_size, brain.probabilistic_choice, brain.rng = 4, False, np.random.default_rng(0)
    scores = np.tile([0.0, 1.0, 0.0, 0.0], (4000, 1))
    assert (brain.choose(scores, np.zeros(4000)) == 1).all()
    explored = brain.choose(scores, np.full(4000, 0.4))
    assert np.mean(explored != 1) == pytest.approx(0.4 * 3 / 4, abs=0.03)  # a random action may be the best
