"""A smoke test of your Milvus: connect, create, insert, index, search, query, delete, drop.

    python hello_milvus.py                                   # the embedded server (default)
    MILVUS_URI=http://localhost:19530 python hello_milvus.py # Docker, a cluster or a managed Milvus

Each step prints its latency, so a slow or broken server shows where it hurts.
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Iterator

import numpy as np

from resonant_vectors.config import Settings
from resonant_vectors.errors import ResonantVectorsError
from resonant_vectors.memory.seam import Engram
from resonant_vectors.memory.store import EngramStore

COLLECTION = "hello_milvus"
ROWS = 3000


@contextmanager
def timed(step: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    print(f"  {step:<46s} {1000 * (time.perf_counter() - started):9.1f} ms")


def main() -> int:
    """Every step, or one line saying what is wrong (bad settings.py, no server) and what to do."""

    try:
        smoke_test(Settings.from_module())
    except ResonantVectorsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def smoke_test(settings: Settings) -> None:
    print(f"Milvus: {settings.milvus_uri or 'embedded, data in ' + settings.milvus_data_dir}")
    rng = np.random.default_rng(0)
    vectors = rng.random((ROWS, settings.resonator_size), dtype=np.float32)
    with timed("connect and create collection (IVF_FLAT, L2)"):
        store = EngramStore(COLLECTION, reset=True, settings=settings)
    with timed(f"insert {ROWS} engrams in one request"):
        store.insert_many(Engram(tuple(v), i % settings.action_count, 0.5) for i, v in enumerate(vectors))
    with timed("flush (seal and build the index)"):
        store.flush()
    with timed(f"search {settings.min_results} neighbours of one vector"):
        nearest = store.nearest(vectors[0], settings.min_results)
    print(f"    nearest distance {nearest[0][1]:.4f} (0 expected: the vector itself)")
    with timed("query engrams with action 0"):
        rows = store.collection.rows_where("action == 0", ["outcome"], limit=10)
    with timed("delete them"):
        store.collection.delete([row["id"] for row in rows])
    with timed("count"):
        count = store.get_count()
    print(f"    {count} engrams left ({ROWS - len(rows)} expected)")
    with timed("drop collection"):
        store.drop()
    print("Milvus works.")


if __name__ == "__main__":
    sys.exit(main())
