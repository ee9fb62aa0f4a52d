"""Values travel through the memory: re-valuation credits a step with the best continuation known."""
from __future__ import annotations

import pytest

from engram import Engram, EngramStore
from revaluation import revalue

FAR = 10.0  # the chain's situations lie this far apart, so each one's nearest is itself


def situation(step: int) -> tuple:
    return (FAR * step,) + (0.0,) * 8


@pytest.fixture
def chain_store(settings, collection_name) -> EngramStore:
    """A hand-made trial of three steps by action 0: rewards 0, 0, 100, then the trial ended."""
    settings = settings.replace(search_backend="replica", per_action_memory=True, min_results=1,
                                discount=0.5, outcome_reward_scale=100.0, revalue_blend=1.0)
    store = EngramStore(collection_name, reset=True, settings=settings)
    rewards = [0.0, 0.0, 100.0]
    store.insert_many([Engram(situation(step), 0, 0.0, reward=reward, next_vector=situation(step + 1),
                              ended=step == 2) for step, reward in enumerate(rewards)])
    return store


def stored_outcomes(store: EngramStore) -> list:
    rows = store.client.query(store.name, filter="id > 0", output_fields=["vector", "outcome"],
                              consistency_level="Strong")
    return [row["outcome"] for row in sorted(rows, key=lambda row: row["vector"][0])]


def test_re_valuing_a_chain_reproduces_its_discounted_values_in_milvus_and_the_replica(chain_store):
    report = revalue(chain_store, chain_store.settings, sweeps=3)
    assert report.engrams == 3
    assert stored_outcomes(chain_store) == pytest.approx([0.25, 0.5, 1.0])
    held = chain_store.replica.rows()
    assert sorted(held.outcomes.tolist()) == pytest.approx([0.25, 0.5, 1.0])
    assert chain_store.get_count() == 3  # written back as an upsert: no duplicates


def test_each_sweep_carries_the_value_one_step_further_back(chain_store):
    revalue(chain_store, chain_store.settings, sweeps=1)
    assert stored_outcomes(chain_store) == pytest.approx([0.0, 0.0, 1.0])
    revalue(chain_store, chain_store.settings, sweeps=1)
    assert stored_outcomes(chain_store) == pytest.approx([0.0, 0.5, 1.0])


def test_a_blend_moves_an_outcome_only_part_of_the_way(chain_store):
    revalue(chain_store, chain_store.settings.replace(revalue_blend=0.5), sweeps=1)
    assert stored_outcomes(chain_store) == pytest.approx([0.0, 0.0, 0.5])


def test_re_valuation_needs_the_replica_and_outcomes_in_return_units(settings):
    from config import SettingsError

    returns = settings.replace(outcome_rule="return", success_weight=0.0)
    with pytest.raises(SettingsError, match='REVALUE_EVERY = 10 needs SEARCH_BACKEND = "replica"'):
        returns.replace(revalue_every=10, search_backend="milvus")
    with pytest.raises(SettingsError, match='REVALUE_EVERY = 10 needs OUTCOME_RULE = "return" and SUCCESS_WEIGHT = 0'):
        returns.replace(revalue_every=10, search_backend="replica", success_weight=0.5)
