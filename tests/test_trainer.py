"""The Trainer flies real LunarLander trials and stores exactly one engram per step taken."""
from __future__ import annotations

import fcntl

import numpy as np
import pytest

from credit import step_outcomes, trial_success
from claims import CollectionClaim
from Trainer import Trainer


def test_a_short_run_stores_exactly_one_engram_per_step(settings, collection_name):
    trainer = Trainer(collection_name, settings=settings, quiet=True)
    mean_reward = trainer.train(3)
    steps = sum(record.length for record in trainer.metrics)
    assert [record.trial for record in trainer.metrics] == [0, 1, 2]
    assert steps == trainer.steps_taken > 0
    assert trainer.store.get_count() == steps == trainer.metrics[-1].engrams
    assert mean_reward == pytest.approx(np.mean([record.reward for record in trainer.metrics]))


def test_a_read_only_run_stores_nothing_and_keeps_the_memory(settings, collection_name):
    Trainer(collection_name, settings=settings, quiet=True).train(2)
    stored = Trainer(collection_name, clear_collection=False, settings=settings, quiet=True).store.get_count()
    reader = Trainer(collection_name, settings=settings.replace(read_only=True), quiet=True)
    reader.train(2)
    assert reader.steps_taken > 0
    assert reader.store.get_count() == stored


def test_keeping_the_collection_extends_the_memory(settings, collection_name):
    first = Trainer(collection_name, settings=settings, quiet=True)
    first.train(1)
    second = Trainer(collection_name, clear_collection=False, settings=settings, quiet=True)
    second.train(1)
    assert second.store.get_count() == first.steps_taken + second.steps_taken


def test_display_on_a_machine_without_a_display_still_trains(settings, collection_name, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    trainer = Trainer(collection_name, settings=settings.replace(display=True), quiet=True)
    trainer.train(1)
    assert trainer.store.get_count() == trainer.steps_taken > 0
    assert capsys.readouterr().err.count("no display") == 1


def test_trials_end_at_max_trial_length(settings, collection_name):
    trainer = Trainer(collection_name, settings=settings.replace(max_trial_length=5), quiet=True)
    trainer.train(2)
    assert [record.length for record in trainer.metrics] == [5, 5]


def test_running_out_of_hit_points_ends_the_trial_as_a_death(settings, collection_name):
    starving = settings.replace(hit_points=10, metabolic_cost=4.0)
    trainer = Trainer(collection_name, settings=starving, quiet=True)
    trainer.train(2)
    assert all(record.died and record.length <= 4 for record in trainer.metrics)


def test_one_line_is_printed_per_trial(settings, collection_name, capsys):
    Trainer(collection_name, settings=settings).train(2)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("trial")]
    assert len(lines) == 2 and "reward" in lines[0] and "engrams" in lines[0]


def test_a_callback_returning_false_stops_training(settings, collection_name):
    trainer = Trainer(collection_name, settings=settings, quiet=True)
    trainer.train(10, callback=lambda record: record.trial < 1)
    assert len(trainer.metrics) == 2


def test_the_same_seed_flies_the_same_trials(settings, collection_name):
    runs = []
    for _ in range(2):
        trainer = Trainer(collection_name, settings=settings, quiet=True)
        trainer.train(3)
        runs.append([(r.reward, r.length) for r in trainer.metrics])
    assert runs[0] == runs[1]


def test_trial_success_is_reward_clipped_to_300_over_300():
    assert [trial_success(r) for r in (-600, -150, 0, 150, 300, 900)] == [-1, -0.5, 0, 0.5, 1, 1]


def test_outcomes_are_scaled_rewards_weighted_by_trial_success(settings):
    rewards = np.array([10.0, -10.0, 40.0, -100.0, 0.0])
    # r / 20 clipped to [-1, 1], times (1 + 0.5 * s), clipped again
    np.testing.assert_allclose(step_outcomes(rewards, 0.5, settings), [0.625, -0.625, 1.0, -1.0, 0.0])
    np.testing.assert_allclose(step_outcomes(rewards, -1.0, settings), [0.25, -0.25, 0.5, -0.5, 0.0])


def test_a_population_shares_one_memory_and_counts_trials_across_landers(settings, collection_name):
    trainer = Trainer(collection_name, settings=settings.replace(population_size=4), quiet=True)
    trainer.train(10)
    assert sorted(record.trial for record in trainer.metrics) == list(range(10))
    assert {record.lander for record in trainer.metrics} == {0, 1, 2, 3}
    assert trainer.store.get_count() == sum(record.length for record in trainer.metrics) == trainer.steps_taken


def test_bad_trial_counts_are_refused(settings, collection_name):
    trainer = Trainer(collection_name, settings=settings, quiet=True)
    with pytest.raises(ValueError, match="trials: expected a whole number"):
        trainer.train(-1)


def test_alone_trial_0_acts_on_an_empty_memory_and_trial_1_resonates_with_it(settings, collection_name):
    trainer = Trainer(collection_name, settings=settings, quiet=True)
    trainer.train(2)
    first, second = trainer.metrics
    assert np.isnan(first.neighbour_distance) and first.engrams == first.length
    assert np.isfinite(second.neighbour_distance)
    assert trainer.store.consistency == "Session"


def test_each_lander_of_a_population_keeps_its_own_trials(settings, collection_name):
    trainer = Trainer(collection_name, settings=settings.replace(population_size=3), quiet=True)
    trainer.train(9)
    assert trainer.store.consistency == "Eventually"
    for lander in range(3):
        own = [record.trial for record in trainer.metrics if record.lander == lander]
        assert own == sorted(own) and own[0] == lander  # the first three trials start together
    assert sum(record.length for record in trainer.metrics) == trainer.steps_taken
    assert len(trainer.recent_success) == min(9, settings.success_window)


def test_an_instance_name_milvus_would_refuse_is_a_settings_error(settings):
    from config import SettingsError

    with pytest.raises(SettingsError, match="INSTANCE_NAME: expected letters, digits and '_'.*got '../runs'"):
        Trainer("../runs", settings=settings, quiet=True)


def test_only_lunarlanders_own_end_is_stored_as_an_end_not_a_time_limit(settings, collection_name):
    replica = settings.replace(search_backend="replica")
    cut_short = Trainer(collection_name, settings=replica.replace(max_trial_length=5), quiet=True)
    cut_short.train(2)
    assert not cut_short.store.replica.rows().ended.any()
    flown = Trainer(collection_name, settings=replica.replace(use_hit_points=False), quiet=True)
    flown.train(1)  # a random lander crashes (LunarLander ends the episode) well before 400 steps
    ended = flown.store.replica.rows().ended
    assert flown.metrics[0].length < 400 and ended.sum() == 1 and ended[-1]  # its last step, only


def test_training_with_re_valuation_keeps_one_engram_per_step(settings, collection_name):
    revaluing = settings.replace(search_backend="replica", revalue_every=2, per_action_memory=True, min_results=10,
                                 outcome_rule="return", success_weight=0.0)
    trainer = Trainer(collection_name, settings=revaluing, quiet=True)
    trainer.train(4)
    assert trainer.store.get_count() == trainer.steps_taken == len(trainer.store.replica)


def collection_lock_is_free(settings, name: str) -> bool:
    """Whether another process could claim the collection now (a new descriptor: flock is per open file)."""
    with open(CollectionClaim.path_for(settings.replace(instance_name=name))) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def test_a_trainer_used_with_with_closes_and_frees_its_collection(settings, collection_name):
    with Trainer(collection_name, settings=settings.replace(max_trial_length=10), quiet=True) as trainer:
        trainer.train(1)
        assert not collection_lock_is_free(settings, collection_name)
    assert collection_lock_is_free(settings, collection_name)
    assert trainer.store.get_count() == 10


def test_a_store_that_fails_to_open_leaves_the_collection_free(settings, collection_name):
    from pymilvus import DataType

    from engram import CollectionMismatchError, connect

    client = connect(settings)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=3)
    client.create_collection(collection_name, schema=schema)
    with pytest.raises(CollectionMismatchError, match="vector dimension 3"):
        Trainer(collection_name, settings=settings, quiet=True)
    assert collection_lock_is_free(settings, collection_name)
