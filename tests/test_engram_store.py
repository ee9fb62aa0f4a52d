"""The EngramStore keeps engrams in a real Milvus and finds the true nearest ones."""
from __future__ import annotations

import time

import numpy as np
import pytest
from pymilvus import DataType

from resonant_vectors.config import Settings
from resonant_vectors.memory.milvus import columns as milvus_columns
from resonant_vectors.memory.milvus.collection import CollectionMismatchError, MilvusUnavailableError, connect
from resonant_vectors.memory.seam import Engram, EngramError
from resonant_vectors.memory.store import EngramStore


def random_engrams(count: int, dimension: int = 9, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    vectors = rng.random((count, dimension), dtype=np.float32)
    return [Engram(tuple(v.tolist()), i % 4, float(rng.uniform(-1, 1)), trial=i // 100) for i, v in enumerate(vectors)]


@pytest.fixture(params=[True, False], ids=["pymilvus_internals", "public_search"])
def search_path(request):
    """Both ways of reading a Milvus search: the fast one (pymilvus internals) and the public API."""
    assert milvus_columns.use_internals(request.param) == request.param
    yield
    milvus_columns.use_internals(True)


def test_nearest_returns_the_true_nearest_neighbours_by_l2_in_order(settings, collection_name, search_path):
    store = EngramStore(collection_name, reset=True, settings=settings)
    engrams = random_engrams(3000)
    store.insert_many(engrams)
    vectors = np.array([e.vector for e in engrams], dtype=np.float32)
    queries = np.random.default_rng(1).random((5, 9), dtype=np.float32)
    for query, found in zip(queries, store.nearest_many(queries, 50)):
        distances = ((vectors - query) ** 2).sum(axis=1)
        expected = np.argsort(distances)[:50]
        assert len(found) == 50
        np.testing.assert_allclose(found.distances, distances[expected], rtol=1e-4, atol=1e-5)
        assert list(found.actions) == [engrams[i].action for i in expected]
        np.testing.assert_allclose(found.outcomes, [engrams[i].outcome for i in expected], rtol=1e-6)


def test_nearest_gives_engram_distance_pairs_nearest_first(settings, collection_name):
    store = EngramStore(collection_name, reset=True, settings=settings)
    store.insert_many([Engram((0.0,) * 9, 1, 0.5), Engram((1.0,) + (0.0,) * 8, 2, -0.5)])
    (first, d1), (second, d2) = store.nearest((0.0,) * 9, 10)
    assert (first.action, first.outcome, d1) == (1, 0.5, 0.0)
    assert (second.action, second.outcome) == (2, -0.5) and d2 == pytest.approx(1.0)


def test_a_search_never_returns_more_engrams_than_stored(settings, collection_name):
    store = EngramStore(collection_name, reset=True, settings=settings)
    store.insert_many(random_engrams(7))
    assert len(store.nearest_many([(0.5,) * 9], 300)[0]) == 7


def test_an_empty_store_returns_no_neighbours(settings, collection_name, search_path):
    store = EngramStore(collection_name, reset=True, settings=settings)
    assert store.nearest((0.0,) * 9, 300) == []


def test_inserted_engrams_are_visible_to_the_very_next_search(settings, collection_name):
    store = EngramStore(collection_name, reset=True, settings=settings)
    for i in range(5):
        vector = (float(i),) * 9
        store.insert(Engram(vector, i % 4, 0.1))
        assert store.nearest(vector, 1)[0][1] == 0.0


def test_keep_reopens_the_memory_and_reset_empties_it(settings, collection_name):
    EngramStore(collection_name, reset=True, settings=settings).insert_many(random_engrams(10))
    assert EngramStore(collection_name, reset=False, settings=settings).get_count() == 10
    assert EngramStore(collection_name, reset=True, settings=settings).get_count() == 0


def test_clear_forgets_every_engram_and_drop_deletes_the_collection(settings, collection_name):
    store = EngramStore(collection_name, reset=True, settings=settings)
    store.insert_many(random_engrams(10))
    store.clear()
    assert store.get_count() == 0
    store.drop()
    assert not connect(settings).has_collection(collection_name)


@pytest.fixture(scope="module")
def five_engram_store(milvus_data_dir) -> EngramStore:
    """One store of five engrams shared by the bad-input tests: each must leave it unchanged."""
    store = EngramStore("bad_input", reset=True,
                        settings=Settings.from_module(milvus_data_dir=milvus_data_dir, milvus_uri=""))
    store.insert_many(random_engrams(5))
    return store


@pytest.mark.parametrize("bad_engram, complaint", [
    (Engram((0.0,) * 8, 0, 0.0), "length 8; expected 9"),
    (Engram((0.0,) * 10, 0, 0.0), "length 10; expected 9"),
    (Engram((float("nan"),) + (0.0,) * 8, 0, 0.0), "NaN or infinity"),
    (Engram((float("inf"),) + (0.0,) * 8, 0, 0.0), "NaN or infinity"),
    (Engram((0.0,) * 9, 4, 0.0), "action 4 is outside the action space"),
    (Engram((0.0,) * 9, -1, 0.0), "action -1 is outside the action space"),
    (Engram((0.0,) * 9, 1.5, 0.0), "outside the action space"),
    (Engram((0.0,) * 9, 0, float("nan")), "expected a finite number"),
])
def test_a_bad_engram_is_refused_and_nothing_of_its_batch_is_stored(five_engram_store, bad_engram, complaint):
    with pytest.raises(EngramError, match=complaint):
        five_engram_store.insert_many(random_engrams(3, seed=2) + [bad_engram])
    assert five_engram_store.get_count() == 5


@pytest.mark.parametrize("bad_query", [(0.0,) * 8, (float("nan"),) * 9, "not a vector"])
def test_a_bad_query_vector_is_refused_with_what_was_expected(five_engram_store, bad_query):
    with pytest.raises(EngramError, match="query vector"):
        five_engram_store.nearest(bad_query, 10)


@pytest.mark.parametrize("name", ["bad-name", "3lander", "", "with space", "x" * 256])
def test_an_invalid_collection_name_is_refused_before_milvus_sees_it(settings, name):
    with pytest.raises(EngramError, match="invalid collection name"):
        EngramStore(name, settings=settings)


def test_an_existing_collection_of_another_dimension_is_refused_and_kept(settings, collection_name):
    client = connect(settings)  # another program's collection of that name
    schema = client.create_schema(auto_id=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=5)
    index = client.prepare_index_params()
    index.add_index(field_name="vector", index_type="FLAT", metric_type="L2")
    client.create_collection(collection_name, schema=schema, index_params=index)
    client.insert(collection_name, [{"vector": [0.1] * 5} for _ in range(4)])
    for reset in (False, True):
        with pytest.raises(CollectionMismatchError, match="dimension 5.*expected.*dimension 9.*left as it is"):
            EngramStore(collection_name, reset=reset, settings=settings)
    rows = client.query(collection_name, filter="", output_fields=["count(*)"], consistency_level="Strong")
    assert rows[0]["count(*)"] == 4


@pytest.mark.parametrize("auto_id", [True, False], ids=["milvus_drawn_ids", "without_the_new_fields"])
def test_a_collection_made_by_an_earlier_version_is_kept_only_when_started_afresh(settings, collection_name,
                                                                                   auto_id):
    client = connect(settings)  # what an earlier version of the project made
    schema = client.create_schema(auto_id=auto_id)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=9)
    for name, kind in (("action", DataType.INT16), ("outcome", DataType.FLOAT), ("trial", DataType.INT64)):
        schema.add_field(name, kind)
    index = client.prepare_index_params()
    index.add_index(field_name="vector", index_type="FLAT", metric_type="L2")
    client.create_collection(collection_name, schema=schema, index_params=index)
    with pytest.raises(CollectionMismatchError, match="earlier version.*left as it is.*without --keep"):
        EngramStore(collection_name, reset=False, settings=settings)
    assert client.has_collection(collection_name)
    assert EngramStore(collection_name, reset=True, settings=settings).get_count() == 0


def test_an_engram_with_an_invalid_id_is_refused_and_nothing_is_stored(settings, collection_name):
    store = EngramStore(collection_name, reset=True, settings=settings)
    with pytest.raises(EngramError, match="engram 1: id -3: expected a whole number from 1"):
        store.insert_many([Engram((0.0,) * 9, 0, 0.0), Engram((0.0,) * 9, 0, 0.0, id=-3)])
    assert store.get_count() == 0


def test_upserting_engrams_twice_stores_each_once(settings, collection_name):
    store = EngramStore(collection_name, reset=True, settings=settings)
    engrams = [Engram((0.1 * i,) * 9, i % 4, 0.5, id=1000 + i) for i in range(5)]
    store.insert_many(engrams)
    store.upsert_many(engrams)
    assert store.get_count() == 5


def test_an_unreachable_milvus_uri_fails_fast_with_a_clear_error(settings):
    unreachable = settings.replace(milvus_uri="http://127.0.0.1:1", milvus_connect_timeout=5.0)
    started = time.monotonic()
    with pytest.raises(MilvusUnavailableError) as error:
        EngramStore("anything", settings=unreachable)
    assert time.monotonic() - started < 10
    message = str(error.value)
    assert "http://127.0.0.1:1" in message and "docker compose up -d" in message and "unset MILVUS_URI" in message


def test_every_seal_every_engrams_are_sealed_and_indexed_without_an_explicit_flush(settings, collection_name):
    store = EngramStore(collection_name, reset=True, settings=settings.replace(seal_every=1024))
    store.insert_many(random_engrams(1100))
    deadline = time.monotonic() + 60
    client = connect(settings)
    while client.describe_index(collection_name, "vector")["indexed_rows"] < 1100:
        assert time.monotonic() < deadline, "the sealed engrams were not indexed within 60 s"
        time.sleep(1)
    assert store.get_count() == 1100


def test_a_replica_leaves_what_it_writes_unsealed_until_training_ends(settings, collection_name):
    """Milvus answers none of a replica's searches, so it has no small segments to seal, index and
    merge; the Milvus path's seal of the same engrams, written just after, shows when one would
    have landed."""
    sealing = settings.replace(seal_every=1024)
    replica = EngramStore(collection_name, reset=True, settings=sealing.replace(search_backend="replica"))
    searched = EngramStore(f"{collection_name}_m", reset=True, settings=sealing.replace(search_backend="milvus"))
    replica.insert_many(random_engrams(1100))
    searched.insert_many(random_engrams(1100))
    client = connect(settings)
    deadline = time.monotonic() + 60
    while client.describe_index(searched.name, "vector")["total_rows"] < 1100:  # sealed rows
        assert time.monotonic() < deadline, "the Milvus path's engrams were not sealed within 60 s"
        time.sleep(0.5)
    assert client.describe_index(collection_name, "vector")["total_rows"] == 0
    replica.flush()  # as Trainer.close does
    assert client.describe_index(collection_name, "vector")["total_rows"] == 1100
    assert replica.get_count() == 1100
    searched.drop()


def test_an_unknown_consistency_level_is_refused(settings):
    with pytest.raises(EngramError, match="consistency 'Sometimes': expected one of Session"):
        EngramStore("anything", settings=settings, consistency="Sometimes")


def test_a_kept_memory_reads_back_every_column_as_it_was_stored(settings, collection_name, search_path):
    store = EngramStore(collection_name, reset=True, settings=settings)
    rng = np.random.default_rng(5)
    vectors = rng.random((300, 9)).astype(np.float32)
    engrams = [Engram(tuple(v.tolist()), i % 4, float(rng.uniform(-1, 1)), trial=i, reward=float(i) / 2,
                      next_vector=tuple((v * 2).tolist()), ended=i % 3 == 0) for i, v in enumerate(vectors)]
    store.insert_many(engrams)
    read = sorted(((int(page.trial[i]), page.select(i)) for page in store.collection.pages("", "Strong")
                   for i in range(len(page))), key=lambda pair: pair[0])
    assert [trial for trial, _ in read] == list(range(300))
    for (_, row), engram in zip(read, engrams):
        np.testing.assert_allclose(row.vector, engram.vector, rtol=1e-6)
        np.testing.assert_allclose(row.next_vector, engram.next_vector, rtol=1e-6)
        assert (int(row.action), float(row.reward), bool(row.ended)) == (engram.action, engram.reward, engram.ended)
        assert float(row.outcome) == pytest.approx(engram.outcome, rel=1e-6)


def test_a_fresh_start_drops_a_collection_that_is_not_loaded_at_once(settings, collection_name):
    EngramStore(collection_name, reset=True, settings=settings).insert_many(random_engrams(20))
    connect(settings).release_collection(collection_name)  # as another program, or a run killed before loading
    started = time.monotonic()
    store = EngramStore(collection_name, reset=True, settings=settings)
    assert time.monotonic() - started < 30 and store.engrams_dropped == 20 and store.get_count() == 0
