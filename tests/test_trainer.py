"""The Trainer flies real LunarLander trials and stores exactly one engram per step taken, in a real
Milvus (the loop itself is tested without one in test_population.py)."""
from __future__ import annotations

import fcntl

import numpy as np
import pytest

from resonant_vectors.loop.trainer import Trainer
from resonant_vectors.memory.claims import CollectionClaim


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


def test_the_same_seed_flies_the_same_trials_on_milvus(settings, collection_name):
    runs = []
    for _ in range(2):
        trainer = Trainer(collection_name, settings=settings.replace(max_trial_length=60), quiet=True)
        trainer.train(3)
        runs.append([(r.reward, r.length) for r in trainer.metrics])
    assert runs[0] == runs[1]


@pytest.mark.parametrize("backend", ["milvus", "replica"])
def test_a_population_stores_one_engram_per_step_in_milvus(settings, collection_name, backend):
    trainer = Trainer(collection_name, settings=settings.replace(population_size=4, search_backend=backend),
                      quiet=True)
    trainer.train(10)
    assert sorted(record.trial for record in trainer.metrics) == list(range(10))
    assert {record.lander for record in trainer.metrics} == {0, 1, 2, 3}
    assert trainer.store.get_count() == sum(record.length for record in trainer.metrics) == trainer.steps_taken
    assert trainer.engram_count == trainer.metrics[-1].engrams == trainer.store.get_count()


def test_bad_trial_counts_are_refused(settings, collection_name):
    trainer = Trainer(collection_name, settings=settings, quiet=True)
    with pytest.raises(ValueError, match="trials: expected a whole number"):
        trainer.train(-1)


def test_alone_a_lander_sees_the_previous_trial_and_a_population_does_not_wait(settings, collection_name):
    trainer = Trainer(collection_name, settings=settings, quiet=True)
    trainer.train(2)
    first, second = trainer.metrics
    assert np.isnan(first.neighbour_distance) and first.engrams == first.length
    assert np.isfinite(second.neighbour_distance)
    assert trainer.store.consistency == "Session"
    assert Trainer(collection_name, settings=settings.replace(population_size=3), quiet=True).store.consistency \
        == "Eventually"


def test_an_instance_name_milvus_would_refuse_is_a_settings_error(settings):
    from resonant_vectors.config import SettingsError

    with pytest.raises(SettingsError, match="INSTANCE_NAME: expected letters, digits and '_'.*got '../runs'"):
        Trainer("../runs", settings=settings, quiet=True)
    for taken in ("log_book", "lander_species"):  # another instance's species' book or ledger, replaced by its start
        with pytest.raises(SettingsError, match=f"INSTANCE_NAME = '{taken}': a name ending in '_species' or '_book'"):
            Trainer(taken, settings=settings, quiet=True)


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

    from resonant_vectors.memory.milvus.collection import CollectionMismatchError, connect

    client = connect(settings)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=3)
    client.create_collection(collection_name, schema=schema)
    with pytest.raises(CollectionMismatchError, match="vector dimension 3"):
        Trainer(collection_name, settings=settings, quiet=True)
    assert collection_lock_is_free(settings, collection_name)
