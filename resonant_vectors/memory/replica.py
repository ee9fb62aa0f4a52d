"""``EngramReplica``: engrams held in this process, searched with FAISS.

Why its own module: Milvus is the store of record (every engram is written there first, shared
between processes and machines, kept across runs), but a gRPC round trip per decision caps
training at a few hundred steps per second, and the decision rules of the ``landing`` preset need
a search per action and a search per stored engram. The replica holds a copy of the engrams and
answers the same nearest-neighbour question in process, 10–50x cheaper per query
(``bench/throughput.py``). ``milvus_memory.ReplicatedMemory`` keeps one in step with a collection
(loaded from it, extended with every insert Milvus acknowledged, polled for other writers'
engrams); ``memory.InProcessMemory`` is one kept nowhere else.

The index is of the kind Milvus runs — IVF_FLAT, L2 (squared), ``SEARCH_NPROBE`` lists probed — but
its number of lists grows with the memory: ``LISTS_PER_ROOT × √n``, and at most one per
``ENGRAMS_PER_LIST`` engrams (so that every list is trained on enough of them: with 1024 lists at
40,000 engrams only 86% of the 50 true nearest were found). Why not Milvus's fixed
``INDEX_NLIST``: with 1024 lists a search at 1,000,000 engrams scans ten times the engrams it scans
at 100,000; with √n lists a batch of 32 searches of k = 300 at 1,000,000 took about a third of
the time (one thread). Below ``EXACT_BELOW`` engrams it searches exactly (cheap at that size). The lists
are trained again each time the memory doubles, since a learning lander's situations drift. With
``INDEX_TYPE = "FLAT"`` it searches exactly at any size, as Milvus does then.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import faiss
import numpy as np

from resonant_vectors.memory.seam import EngramColumns, NeighbourTable

EXACT_BELOW = 4096              # engrams below which an index searches exactly (cheap at that size)
ENGRAMS_PER_LIST = 64           # IVF lists get at least this many engrams (FAISS wants >= 39 to train one)
LISTS_PER_ROOT = 4              # IVF lists per square root of the engrams indexed (FAISS's rule of thumb: 4-16)
TRAINING_ITERATIONS = 10        # k-means iterations when the lists are trained (FAISS's 25 cost 2.5x as long)
RETRAIN_GROWTH = 2.0            # train the lists again when the memory has grown this many times
FIRST_CAPACITY = 4096           # rows allocated at first; the arrays double as they fill
SPREAD_FIRST = 500              # engrams held when spread scaling first learns the spreads (a few dozen early trials)
SPREAD_SAMPLE = 1000            # engrams looked at to tell a binary component from a continuous one
ALL_ACTIONS = None              # the key of the index over every engram (the seed's shared search)
# One thread per process: a decision's search of a few queries is too small to split, and with the
# other core busy OpenMP's threads wait for each other (a population of 4 flew 7x slower with two
# threads than with one on a loaded 2-core machine). A species' workers are how both cores are used.
faiss.omp_set_num_threads(1)


class _VectorIndex:
    """One FAISS index over some of the replica's rows (all, or one action's), exact or IVF_FLAT.

    :param all_vectors: the replica's vectors (a view of its column), read when the lists are
        trained again.
    """

    def __init__(self, dimension: int, nprobe: int, always_exact: bool) -> None:
        self.dimension, self.nprobe, self.always_exact = dimension, nprobe, always_exact
        self._rows = np.zeros(FIRST_CAPACITY, np.int64)  # FAISS's labels -> replica rows, grown by doubling
        self.size = 0
        self.trained_size = 0
        self.index: faiss.Index = faiss.IndexFlatL2(dimension)

    @property
    def rows(self) -> np.ndarray:
        """The replica's row of each vector added, in the order added (FAISS's labels)."""
        return self._rows[:self.size]

    def add(self, rows: np.ndarray, all_vectors: np.ndarray) -> None:
        """Add the replica's rows ``rows``; train the lists again when the memory has grown enough
        (only then are all this index's vectors gathered: an ordinary add copies only the new ones)."""
        if self.size + len(rows) > len(self._rows):
            self._rows = np.concatenate([self._rows, np.zeros(max(len(self._rows), len(rows)), np.int64)])
        self._rows[self.size:self.size + len(rows)] = rows
        self.size += len(rows)
        if not self.always_exact and self.size >= EXACT_BELOW \
                and self.size >= RETRAIN_GROWTH * max(self.trained_size, 1):
            self._rebuild(all_vectors[self.rows])
        else:
            self.index.add(all_vectors[rows])

    def _rebuild(self, vectors: np.ndarray) -> None:
        """IVF lists trained on a sample of (at most ``ENGRAMS_PER_LIST`` per list of) the vectors."""
        lists = max(1, min(len(vectors) // ENGRAMS_PER_LIST, int(LISTS_PER_ROOT * np.sqrt(len(vectors)))))
        sample_size = min(len(vectors), ENGRAMS_PER_LIST * lists)
        sample = vectors[np.random.default_rng(len(vectors)).choice(len(vectors), sample_size, replace=False)]
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(self.dimension), self.dimension, lists, faiss.METRIC_L2)
        index.cp.niter = TRAINING_ITERATIONS
        index.train(sample)
        index.add(vectors)
        index.nprobe = self.nprobe
        self.index, self.trained_size = index, len(vectors)

    @property
    def exact(self) -> bool:
        return isinstance(self.index, faiss.IndexFlat)

    def search(self, queries: np.ndarray, limit: int) -> Tuple[np.ndarray, np.ndarray]:
        """Replica rows and squared L2 distances of each query's nearest, nearest first; -1 pads."""
        if self.size == 0:
            return np.full((len(queries), 0), -1, np.int64), np.zeros((len(queries), 0), np.float32)
        distances, labels = self.index.search(queries, min(limit, self.size))
        rows = np.where(labels >= 0, self.rows[np.maximum(labels, 0)], -1)
        return rows, distances


class EngramReplica:
    """Engrams held in this process, answering nearest-neighbour searches.

    Rows are appended and never removed (engrams are never deleted one by one); an id already held
    is updated in place (a re-valued outcome, another writer's upsert).

    **Spread scaling** (``STATE_SCALING = "spread"``). With ``spread_weights``, the replica searches
    a rescaled copy of the vectors: each continuous component divided by its standard deviation
    over the engrams held and multiplied by its weight, so that every one counts by its weight and
    not by the units it happens to be measured in (binary ones, like LunarLander's leg contacts,
    stay as they are). The spreads are learned from the memory itself: first at
    ``SPREAD_FIRST`` engrams, again each time the memory doubles (and at once when a kept memory
    is loaded), each time the indexes rebuilt; queries are rescaled the same way.

    :param dimension: the resonators' length.
    :param nprobe: lists searched per query (``SEARCH_NPROBE``).
    :param exact: search exactly at any size (``INDEX_TYPE = "FLAT"``).
    :param spread_weights: each component's weight in the resonator (``VECTOR_COMPONENT_WEIGHTS``
        and ``SUCCESS_COMPONENT_WEIGHT``), to rescale by the spread; None: search the vectors as they are.
    """

    def __init__(self, dimension: int, nprobe: int = 16, exact: bool = False,
                 spread_weights: Optional[np.ndarray] = None) -> None:
        self.dimension, self.nprobe, self.always_exact = dimension, nprobe, exact
        self._columns = EngramColumns.empty(dimension)
        self._size = 0
        self._row_of: Dict[int, int] = {}
        self._indexes: Dict[Optional[int], _VectorIndex] = {}
        self.spread_weights = None if spread_weights is None else np.asarray(spread_weights, np.float32)
        self.factors = np.ones(dimension, np.float32)  # what each component is multiplied by before a search
        self._scaled = self._columns.vector            # the vectors searched (a rescaled copy with spread scaling)
        self._scaled_at = 0                            # engrams held when the spreads were last learned

    def __len__(self) -> int:
        return self._size

    def rows(self) -> EngramColumns:
        """Every engram held, as columns (views: do not modify)."""
        return self._columns.select(slice(0, self._size))

    def add(self, engrams: EngramColumns) -> int:
        """Hold these engrams; an id already held gets the new values. Returns how many were new."""
        positions = np.array([self._row_of.get(engram_id, -1) for engram_id in engrams.id.tolist()], np.int64)
        known = positions >= 0
        if known.any():
            self._update(positions[known], engrams.select(known))
        fresh = _first_of_each_id(engrams.select(~known))
        if len(fresh):
            self._append(fresh)
        return len(fresh)

    def set_outcomes(self, rows: np.ndarray, outcomes: np.ndarray) -> None:
        """Give the engrams at these rows new outcomes (re-valuation); their vectors stay."""
        self._columns.outcome[rows] = outcomes

    def search(self, queries: np.ndarray, limit: int, action: Optional[int] = ALL_ACTIONS
               ) -> Tuple[np.ndarray, np.ndarray]:
        """The rows and squared L2 distances of each query's ``limit`` nearest engrams (of one action,
        or of all), nearest first; rows of -1 where fewer exist.

        :param queries: float32 resonators, shape ``(n, dimension)``.
        """
        queries = np.asarray(queries, dtype=np.float32)
        if self.spread_weights is not None:
            queries = queries * self.factors
        return self._index(action).search(np.ascontiguousarray(queries, dtype=np.float32), limit)

    def nearest(self, queries: np.ndarray, limit: int, action: Optional[int] = ALL_ACTIONS) -> NeighbourTable:
        """``search``'s answer as the memory seam's table, with each neighbour's row."""
        rows, distances = self.search(queries, limit, action)
        found = rows >= 0
        held = np.where(found, rows, 0)
        return NeighbourTable(self._columns.action[held].astype(np.int64), self._columns.outcome[held].astype(np.float64),
                              distances.astype(np.float64), found, np.where(found, rows, -1))

    @property
    def exact(self) -> bool:
        """Whether the shared search is exact (the memory is still too small for IVF lists)."""
        return self._index(ALL_ACTIONS).exact

    def _index(self, action: Optional[int]) -> _VectorIndex:
        """The index of every engram or of one action's; built from the rows on first use."""
        if action not in self._indexes:
            index = _VectorIndex(self.dimension, self.nprobe, self.always_exact)
            rows = self._rows_of_action(action)
            if len(rows):
                index.add(rows, self._scaled)
            self._indexes[action] = index
        return self._indexes[action]

    def _rows_of_action(self, action: Optional[int]) -> np.ndarray:
        rows = np.arange(self._size)
        return rows if action is ALL_ACTIONS else rows[self._columns.action[:self._size] == action]

    def _append(self, engrams: EngramColumns) -> None:
        start = self._size
        self._reserve(start + len(engrams))
        for name, values in engrams.as_dict().items():
            getattr(self._columns, name)[start:start + len(engrams)] = values
        self._size += len(engrams)
        new_rows = np.arange(start, self._size)
        self._row_of.update(zip(engrams.id.tolist(), new_rows.tolist()))
        if self.spread_weights is not None:
            self._scaled[start:self._size] = engrams.vector * self.factors
            if self._size >= SPREAD_FIRST and self._size >= 2 * self._scaled_at:
                self._learn_spreads()
                return
        for action, index in self._indexes.items():
            chosen = new_rows if action is ALL_ACTIONS else new_rows[engrams.action == action]
            if len(chosen):
                index.add(chosen, self._scaled)

    def _learn_spreads(self) -> None:
        """Each continuous component's factor: its weight over its spread in the memory now; the
        indexes are rebuilt over the rescaled vectors when next searched."""
        vectors = self._columns.vector[:self._size]
        spreads = vectors.std(axis=0)
        continuous = np.array([len(np.unique(column[:SPREAD_SAMPLE])) > 2 for column in vectors.T])
        weights = np.abs(self.spread_weights)
        self.factors = np.where(continuous & (spreads > 0), weights / np.where(spreads > 0, spreads, 1.0),
                                1.0).astype(np.float32)
        self._scaled[:self._size] = vectors * self.factors
        self._scaled_at = self._size
        self._indexes.clear()

    def _update(self, rows: np.ndarray, engrams: EngramColumns) -> None:
        """New values for engrams already held. A changed vector or action would leave the indexes
        stale, so those are rebuilt (it does not happen in training: only outcomes are re-valued)."""
        moved = (self._columns.action[rows] != engrams.action) | \
            (self._columns.vector[rows] != engrams.vector).any(axis=1)
        for name, values in engrams.as_dict().items():
            getattr(self._columns, name)[rows] = values
        if moved.any():
            if self.spread_weights is not None:
                self._scaled[rows] = engrams.vector * self.factors
            self._indexes.clear()

    def _reserve(self, size: int) -> None:
        capacity = len(self._columns)
        if size <= capacity:
            return
        capacity = max(FIRST_CAPACITY, capacity)
        while capacity < size:
            capacity *= 2
        grown = EngramColumns.empty(self.dimension, capacity)
        for name, values in self._columns.as_dict().items():
            getattr(grown, name)[:self._size] = values[:self._size]
        if self.spread_weights is not None:
            scaled = np.zeros_like(grown.vector)
            scaled[:self._size] = self._scaled[:self._size]
            self._scaled = scaled
        else:
            self._scaled = grown.vector
        self._columns = grown


def _first_of_each_id(engrams: EngramColumns) -> EngramColumns:
    """The engrams with an id repeated within one batch kept once (the last values win)."""
    _, last = np.unique(engrams.id[::-1], return_index=True)
    if len(last) == len(engrams):
        return engrams
    return engrams.select(np.sort(len(engrams) - 1 - last))
