"""The replica answers decisions' searches in process, in step with the Milvus collection it copies."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from resonant_vectors.config import Settings, SettingsError
from resonant_vectors.loop.trainer import Trainer
from resonant_vectors.memory.replica import EngramReplica
from resonant_vectors.memory.seam import Engram, EngramColumns, EngramError
from resonant_vectors.memory.store import EngramStore
from resonant_vectors.runs.folder import RunFolder

PROJECT = Path(__file__).resolve().parent.parent


def random_rows(count: int, seed: int = 0, dimension: int = 9) -> EngramColumns:
    rng = np.random.default_rng(seed)
    vectors = rng.random((count, dimension), dtype=np.float32)
    return EngramColumns.of(id=np.arange(1, count + 1), vector=vectors, action=np.arange(count) % 4,
                            outcome=rng.uniform(-1, 1, count), trial=np.zeros(count), reward=np.zeros(count),
                            next_vector=vectors, ended=np.ones(count))


def brute_force(vectors: np.ndarray, queries: np.ndarray, limit: int) -> np.ndarray:
    distances = ((queries[:, None, :] - vectors[None, :, :]) ** 2).sum(axis=2)
    return np.argsort(distances, axis=1, kind="stable")[:, :limit]


def test_a_small_replica_searches_exactly_the_same_ids_as_brute_force():
    replica = EngramReplica(9, nprobe=16)
    engrams = random_rows(3000)
    replica.add(engrams)
    queries = np.random.default_rng(1).random((20, 9), dtype=np.float32)
    rows, _ = replica.search(queries, 50)
    assert replica.exact
    np.testing.assert_array_equal(rows, brute_force(engrams.vector, queries, 50))


def test_a_large_replica_uses_ivf_lists_and_finds_at_least_nine_tenths_of_the_true_neighbours():
    replica = EngramReplica(9, nprobe=16)  # settings.py's probes
    engrams = random_rows(100_000)
    for start in range(0, 100_000, 10_000):  # grown as in training: the lists are trained as it grows
        replica.add(engrams.select(slice(start, start + 10_000)))
    queries = np.random.default_rng(2).random((50, 9), dtype=np.float32)
    rows, _ = replica.search(queries, 50)
    truth = brute_force(engrams.vector, queries, 50)
    recall = np.mean([len(np.intersect1d(found, true)) / 50 for found, true in zip(rows, truth)])
    assert not replica.exact and recall >= 0.9


def test_one_memory_per_action_holds_only_that_actions_engrams():
    replica = EngramReplica(9, nprobe=16)
    engrams = random_rows(400)
    replica.add(engrams)
    rows, _ = replica.search(engrams.vector[:5], 20, action=2)
    assert (replica.rows().action[rows] == 2).all()
    replica.add(random_rows(4, seed=9))  # ids 1-4 again: updated, not added
    assert len(replica) == 400


@pytest.fixture
def replica_settings(settings) -> Settings:
    return settings.replace(search_backend="replica")


def test_the_replica_answers_as_milvus_does_on_one_collection(replica_settings, collection_name):
    rng = np.random.default_rng(3)
    engrams = [Engram(tuple(v), int(a), float(o)) for v, a, o in
               zip(rng.random((2000, 9)).tolist(), rng.integers(0, 4, 2000), rng.uniform(-1, 1, 2000))]
    milvus = EngramStore(collection_name, reset=True, settings=replica_settings, search_backend="milvus")
    milvus.insert_many(engrams)
    replica = EngramStore(collection_name, reset=False, settings=replica_settings)
    assert replica.search_backend == "replica" and len(replica.memory.engrams()) == 2000
    queries = rng.random((10, 9)).astype(np.float32)
    for action in (None, 1):
        for ours, theirs in zip(replica.nearest_many(queries, 40, action), milvus.nearest_many(queries, 40, action)):
            np.testing.assert_allclose(ours.distances, theirs.distances, rtol=1e-4, atol=1e-5)
            np.testing.assert_array_equal(ours.actions, theirs.actions)
            np.testing.assert_allclose(ours.outcomes, theirs.outcomes, rtol=1e-6)


def test_a_batch_refused_before_it_is_sent_leaves_the_replica_as_milvus(replica_settings, collection_name):
    store = EngramStore(collection_name, reset=True, settings=replica_settings)
    store.insert_many([Engram((0.0,) * 9, 1, 0.5)])
    with pytest.raises(EngramError, match="action 7 is outside the action space"):
        store.insert_many([Engram((0.0,) * 9, 1, 0.5), Engram((0.0,) * 9, 7, 0.5)])  # a bad action: none sent
    assert len(store.memory.engrams()) == store.get_count() == 1


def test_a_second_process_s_engrams_reach_the_replica_within_the_refresh_bound(replica_settings, collection_name):
    store = EngramStore(collection_name, reset=True, settings=replica_settings.replace(replica_refresh=1.0))
    store.insert_many([Engram((0.0,) * 9, 0, 0.0)])
    writer = subprocess.Popen(
        [sys.executable, "-c",
         "from resonant_vectors import Settings; from engram import Engram, EngramStore\n"
         "from resonant_vectors.memory.seam import EngramError\n"
         f"store = EngramStore({collection_name!r}, settings=Settings.from_module(milvus_data_dir="
         f"{replica_settings.milvus_data_dir!r}, milvus_uri=''))\n"
         "store.insert_many([Engram((5.0,) * 9, 3, 0.9)]); print('stored', flush=True)\n"],
        cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "stored", writer.stderr.read()
    acknowledged = time.monotonic()
    while store.nearest((5.0,) * 9, 1)[0][1] != 0.0:
        assert time.monotonic() - acknowledged < 1.0 + 2.0, "another writer's engram did not arrive in time"
        time.sleep(0.05)
    writer.wait(timeout=30)
    assert len(store.memory.engrams()) == 2


def test_resuming_loads_the_whole_memory_into_the_replica(replica_settings, collection_name, tmp_path):
    folder = RunFolder(tmp_path / collection_name)
    first = Trainer(collection_name, settings=replica_settings, quiet=True, run_folder=folder)
    first.train(3)
    first.close()
    resumed = Trainer(collection_name, clear_collection=False, settings=replica_settings, quiet=True,
                      run_folder=folder)
    held = resumed.store.memory.engrams()
    assert len(held) == first.store.get_count() == first.steps_taken
    np.testing.assert_array_equal(np.sort(held.id), np.sort(first.store.memory.engrams().id))
    resumed.close()


def test_one_training_stored_in_another_order_is_read_back_into_the_same_copy(replica_settings, collection_name):
    """Milvus returns a read's rows in the order of its segments, and two memories of one training
    differ in their ids (random): both must load into one copy, searched alike, so that an
    evaluation of a memory does not depend on which copy of it, or which read of it, it flies."""
    trained = random_rows(6000, seed=4)  # more than an exact search holds: IVF lists, trained on what they get
    trained.trial[:] = np.arange(6000) // 100
    again = trained.select(np.random.default_rng(5).permutation(6000))
    again.id = np.random.default_rng(6).permutation(np.arange(10_000, 16_000))
    for name, engrams in ((collection_name, trained), (f"{collection_name}_again", again)):
        store = EngramStore(name, reset=True, settings=replica_settings, search_backend="milvus")
        for start in range(0, 6000, 1500):  # several inserts, as trials arrive
            store.memory.add(engrams.select(slice(start, start + 1500)))
        store.close()
    stores = [EngramStore(name, reset=False, settings=replica_settings)
              for name in (collection_name, f"{collection_name}_again", collection_name)]  # the first one twice
    copies = [store.memory for store in stores]
    queries = np.random.default_rng(7).random((30, 9), dtype=np.float32)
    first = copies[0].engrams()
    answers = [copy.nearest(queries, 50) for copy in copies]
    for copy, answer in zip(copies[1:], answers[1:]):
        held = copy.engrams()
        for column in ("trial", "vector", "action", "outcome"):
            np.testing.assert_array_equal(getattr(held, column), getattr(first, column))
        np.testing.assert_array_equal(answer.rows, answers[0].rows)
        np.testing.assert_array_equal(answer.distances, answers[0].distances)
    for store in stores:
        store.close()


@pytest.mark.parametrize("changes, complaint", [
    ({"search_backend": "faiss"}, "SEARCH_BACKEND: expected one of ('milvus', 'replica'), got 'faiss'"),
    ({"replica_refresh": 0}, "REPLICA_REFRESH: expected a finite number of seconds, more than 0"),
    ({"replica_refresh": "1s"}, "REPLICA_REFRESH: expected a finite number of seconds"),
])
def test_a_bad_backend_or_refresh_is_refused_when_the_settings_are_built(changes, complaint):
    with pytest.raises(SettingsError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_module(**changes)


def test_the_search_backend_flag_selects_the_replica():
    from resonant_vectors.cli.main import parse_arguments, settings_from

    assert settings_from(vars(parse_arguments(["--search-backend", "replica"]))).search_backend == "replica"
    assert settings_from(vars(parse_arguments([]))).search_backend == "milvus"  # settings.py's default


def test_a_flat_index_searches_exactly_at_any_size():
    replica = EngramReplica(9, nprobe=16, exact=True)  # INDEX_TYPE = "FLAT"
    engrams = random_rows(20_000)
    replica.add(engrams)
    queries = np.random.default_rng(4).random((10, 9), dtype=np.float32)
    rows, _ = replica.search(queries, 20)
    assert replica.exact
    np.testing.assert_array_equal(rows, brute_force(engrams.vector, queries, 20))


def test_spread_scaling_searches_each_component_by_its_weight_not_its_units():
    rng = np.random.default_rng(6)
    count = 3000
    vectors = np.column_stack([rng.normal(0, 10.0, count), rng.normal(0, 0.1, count), rng.integers(0, 2, count),
                               np.zeros(count)]).astype(np.float32)
    engrams = EngramColumns.of(id=np.arange(1, count + 1), vector=vectors, action=np.zeros(count),
                               outcome=np.zeros(count), trial=np.zeros(count), reward=np.zeros(count),
                               next_vector=vectors, ended=np.ones(count))
    replica = EngramReplica(4, exact=True, spread_weights=np.array([1.0, 2.0, 1.0, 0.0]))
    replica.add(engrams)
    np.testing.assert_allclose(replica.factors[:2], [1.0 / vectors[:, 0].std(), 2.0 / vectors[:, 1].std()], rtol=1e-4)
    assert list(replica.factors[2:]) == [1.0, 1.0]  # a binary component, and one that never varies, stay as they are
    queries = rng.normal(0, 1, (5, 4)).astype(np.float32) * [10.0, 0.1, 1.0, 0.0]
    rows, _ = replica.search(queries.astype(np.float32), 10)
    np.testing.assert_array_equal(rows, brute_force(vectors * replica.factors, queries * replica.factors, 10))


def test_spread_scaling_needs_the_replica():
    with pytest.raises(SettingsError, match='STATE_SCALING = "spread" needs SEARCH_BACKEND = "replica"'):
        Settings.from_module(state_scaling="spread", search_backend="milvus")
