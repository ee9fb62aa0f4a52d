"""Values travel through the memory: re-valuation credits a step with the best continuation known."""
from __future__ import annotations

import numpy as np
import pytest

from resonant_vectors.agent.revaluation import revalue
from resonant_vectors.memory.in_process import InProcessMemory
from resonant_vectors.memory.seam import Engram, EngramColumns, new_ids
from resonant_vectors.memory.store import EngramStore

FAR = 10.0  # the chain's situations lie this far apart, so each one's nearest is itself
REWARDS = [0.0, 0.0, 100.0]  # a hand-made trial of three steps by action 0, then the trial ended


def situation(step: int) -> tuple:
    return (FAR * step,) + (0.0,) * 8


@pytest.fixture
def chain_settings(local_settings):
    return local_settings.replace(search_backend="replica", per_action_memory=True, min_results=1, discount=0.5,
                                  outcome_reward_scale=100.0, revalue_blend=1.0)


@pytest.fixture
def chain(chain_settings) -> InProcessMemory:
    memory = InProcessMemory(9, exact=True)
    memory.add(EngramColumns.of(id=new_ids(3), vector=[situation(step) for step in range(3)], action=np.zeros(3),
                                outcome=np.zeros(3), trial=np.zeros(3), reward=REWARDS,
                                next_vector=[situation(step + 1) for step in range(3)], ended=[False, False, True]))
    return memory


def outcomes_of(memory) -> list:
    held = memory.engrams()
    return held.outcome[np.argsort(held.vector[:, 0])].tolist()


def test_re_valuing_a_chain_reproduces_its_discounted_values(chain, chain_settings):
    report = revalue(chain, chain_settings, sweeps=3)
    assert report.engrams == 3
    assert outcomes_of(chain) == pytest.approx([0.25, 0.5, 1.0])


def test_each_sweep_carries_the_value_one_step_further_back(chain, chain_settings):
    revalue(chain, chain_settings, sweeps=1)
    assert outcomes_of(chain) == pytest.approx([0.0, 0.0, 1.0])
    revalue(chain, chain_settings, sweeps=1)
    assert outcomes_of(chain) == pytest.approx([0.0, 0.5, 1.0])


def test_a_blend_moves_an_outcome_only_part_of_the_way(chain, chain_settings):
    revalue(chain, chain_settings.replace(revalue_blend=0.5), sweeps=1)
    assert outcomes_of(chain) == pytest.approx([0.0, 0.0, 0.5])


def test_re_valued_outcomes_are_written_to_milvus_without_duplicates(settings, collection_name):
    chain_settings = settings.replace(search_backend="replica", per_action_memory=True, min_results=1,
                                      discount=0.5, outcome_reward_scale=100.0, revalue_blend=1.0)
    store = EngramStore(collection_name, reset=True, settings=chain_settings)
    store.insert_many([Engram(situation(step), 0, 0.0, reward=reward, next_vector=situation(step + 1),
                              ended=step == 2) for step, reward in enumerate(REWARDS)])
    revalue(store.memory, chain_settings, sweeps=3)
    rows = store.collection.rows_where("id > 0", ["vector", "outcome"], limit=10)
    assert [row["outcome"] for row in sorted(rows, key=lambda row: row["vector"][0])] == pytest.approx([0.25, 0.5, 1.0])
    assert outcomes_of(store.memory) == pytest.approx([0.25, 0.5, 1.0])
    assert store.get_count() == 3  # written back as an upsert: no duplicates


def test_re_valuation_needs_the_replica_and_outcomes_in_return_units(local_settings):
    from resonant_vectors.config import SettingsError

    returns = local_settings.replace(outcome_rule="return", success_weight=0.0)
    with pytest.raises(SettingsError, match='REVALUE_EVERY = 10 needs SEARCH_BACKEND = "replica"'):
        returns.replace(revalue_every=10, search_backend="milvus")
    with pytest.raises(SettingsError, match='REVALUE_EVERY = 10 needs OUTCOME_RULE = "return" and SUCCESS_WEIGHT = 0'):
        returns.replace(revalue_every=10, search_backend="replica", success_weight=0.5)
