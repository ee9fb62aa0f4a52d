"""The seam between deciding and remembering: what an engram is made of, and what a memory answers.

Why its own module: the brain, re-valuation and evaluation need only a few things of a memory —
the k nearest engrams of many situations (optionally of one action) as a column table, adding a
batch, re-valuing outcomes, a count — and must not care who answers. ``Memory`` is that interface;
its implementations are ``milvus_memory.MilvusMemory`` (every search a Milvus request: the seed's
path), ``milvus_memory.ReplicatedMemory`` (Milvus the store of record, an in-process FAISS copy
answering) and ``InProcessMemory`` (the FAISS copy alone, kept nowhere: for tests, notebooks and
the instinct experiment's empty memory).

The engram schema is declared here once, as the columns of ``EngramColumns``: the Milvus
collection's fields, the replica's arrays and the run folder's journal of unstored engrams are all
derived from it.
"""
from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Dict, Iterable, Optional

import numpy as np

from resonant_vectors.errors import ResonantVectorsError

ID_RANGE = 2 ** 63 - 1   # engram ids are random positive int64s: unique across processes and machines
_id_source = np.random.default_rng()  # fresh entropy, never a run's seed: ids must not repeat
WORKER_TRIALS = 10 ** 7  # worker k of a species numbers its trials k x this on (worker 0: one process's)


def next_in_namespace(worker: int, earlier_trials: Iterable[int]) -> int:
    """The trial number worker ``worker`` flies next: one past its own highest, else its namespace's
    first. Why namespaces: trial numbers (an engram's ``trial``, a run folder's rows) are then unique
    across a species without a lock, however many workers and joiners fly at once."""
    first = worker * WORKER_TRIALS
    own = [trial for trial in earlier_trials if first <= trial < first + WORKER_TRIALS]
    return max(own) + 1 if own else first


class EngramError(ResonantVectorsError, ValueError):
    """An engram, a query vector or a collection name is not what the memory expects."""


class NotStoredError(ConnectionError):
    """A memory could not store a batch; ``engrams`` holds it (with the ids it was sent with, so
    that storing it again, replacing, cannot duplicate any)."""

    def __init__(self, message: str, engrams: "EngramColumns") -> None:
        super().__init__(message)
        self.engrams = engrams


def column(dtype, kind: str, per_dimension: bool = False, primary: bool = False):
    """A column of ``EngramColumns``: its numpy type, its Milvus type's name, whether it holds a
    vector of the resonator's length per engram, and whether it is the primary key."""
    return dataclasses.field(metadata={"dtype": np.dtype(dtype), "kind": kind, "per_dimension": per_dimension,
                                       "primary": primary})


@dataclass
class EngramColumns:
    """Engrams as columns, one row each: the schema of every memory (the names are the Milvus
    collection's fields and the keys of the run folder's journal).

    :param id: the primary key, a random positive int64 (``new_ids``).
    :param vector: the resonator of the situation, shape ``(n, dimension)``.
    :param action: the action taken.
    :param outcome: how well it went, in [-1, 1] (what decisions average).
    :param trial: the number of the trial that left it.
    :param reward: the step's own reward, in the environment's units (what re-valuation starts from).
    :param next_vector: the resonator of the situation the step led to, shape ``(n, dimension)``.
    :param ended: the trial ended there (the environment's own end, not a time limit or a death by
        hit points): nothing follows it.
    """

    id: np.ndarray = column(np.int64, "INT64", primary=True)
    vector: np.ndarray = column(np.float32, "FLOAT_VECTOR", per_dimension=True)
    action: np.ndarray = column(np.int16, "INT16")
    outcome: np.ndarray = column(np.float32, "FLOAT")
    trial: np.ndarray = column(np.int64, "INT64")
    reward: np.ndarray = column(np.float32, "FLOAT")
    next_vector: np.ndarray = column(np.float32, "ARRAY", per_dimension=True)
    ended: np.ndarray = column(np.bool_, "BOOL")

    def __len__(self) -> int:
        return len(self.id)

    def select(self, which) -> "EngramColumns":
        """The rows picked by ``which`` (a boolean mask, row numbers or a slice)."""
        return EngramColumns(**{name: values[which] for name, values in self.as_dict().items()})

    def in_content_order(self) -> "EngramColumns":
        """The rows sorted by what they hold: by trial, then by the vector's components, the action and
        the outcome (the id, which is random, only orders rows alike in all of these).

        Why: Milvus returns a read's rows in the order of its segments, which differs between two
        memories of the same engrams (their ids are random) and may differ between two reads of
        one. A copy built in another order trains other IVF lists and breaks ties between equally
        near engrams otherwise, so one memory could fly differently each time it was evaluated.
        Read back in this order, equal memories give equal copies.
        """
        return self.select(np.lexsort([self.id, self.outcome, self.action, *self.vector.T[::-1], self.trial]))

    def as_dict(self) -> Dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in COLUMN_NAMES}

    @classmethod
    def empty(cls, dimension: int, size: int = 0) -> "EngramColumns":
        """``size`` zeroed rows (none by default)."""
        return cls(**{f.name: np.zeros((size, dimension) if f.metadata["per_dimension"] else size,
                                       f.metadata["dtype"]) for f in dataclasses.fields(cls)})

    @classmethod
    def of(cls, **values) -> "EngramColumns":
        """Columns from arrays or lists, each converted to its declared type."""
        return cls(**{f.name: np.asarray(values[f.name], f.metadata["dtype"]) for f in dataclasses.fields(cls)})

    @classmethod
    def concatenate(cls, parts: list, dimension: int) -> "EngramColumns":
        if not parts:
            return cls.empty(dimension)
        return cls(**{name: np.concatenate([getattr(part, name) for part in parts]) for name in COLUMN_NAMES})


COLUMN_NAMES = tuple(f.name for f in dataclasses.fields(EngramColumns))
COLUMNS = {f.name: f.metadata for f in dataclasses.fields(EngramColumns)}  # name -> dtype, kind, shape, key
# Stamped by a Milvus memory on every row it writes, so that replicas can poll for other writers' engrams.
STAMP_COLUMNS = {"stored_at": {"dtype": np.dtype(np.int64), "kind": "INT64", "per_dimension": False, "primary": False},
                 "writer": {"dtype": np.dtype(np.int64), "kind": "INT64", "per_dimension": False, "primary": False}}


def new_ids(count: int) -> np.ndarray:
    """Fresh random engram ids."""
    return _id_source.integers(1, ID_RANGE, size=count, dtype=np.int64)


@dataclass(frozen=True)
class NeighbourTable:
    """The neighbours of many queries, one row per query, nearest first, padded to one width: the
    form a batched decision reads without a Python loop over queries.

    :param actions: the action each neighbour took.
    :param outcomes: each neighbour's outcome.
    :param distances: squared L2 distances (Milvus's L2).
    :param found: False where a query had fewer neighbours than the row's width (padding).
    :param rows: each neighbour's row in ``Memory.engrams()`` where the memory holds its engrams in
        this process (-1 in padding); None where it does not (a Milvus search).
    """

    actions: np.ndarray
    outcomes: np.ndarray
    distances: np.ndarray
    found: np.ndarray
    rows: Optional[np.ndarray] = None

    @classmethod
    def empty(cls, queries: int) -> "NeighbourTable":
        return cls(np.zeros((queries, 0), np.int64), np.zeros((queries, 0)), np.zeros((queries, 0)),
                   np.zeros((queries, 0), bool))

    @classmethod
    def from_hits(cls, actions: np.ndarray, outcomes: np.ndarray, distances: np.ndarray,
                  counts: np.ndarray) -> "NeighbourTable":
        """The table of hits given concatenated, query after query (``counts`` hits each)."""
        counts = np.asarray(counts, np.int64)
        width = int(counts.max()) if len(counts) else 0
        found = np.arange(width)[None, :] < counts[:, None]
        table = {}
        for name, values, dtype in (("actions", actions, np.int64), ("outcomes", outcomes, np.float64),
                                    ("distances", distances, np.float64)):
            table[name] = np.zeros((len(counts), width), dtype)
            table[name][found] = np.asarray(values, dtype)[:int(counts.sum())]
        return cls(table["actions"], table["outcomes"], table["distances"], found)


class Memory(ABC):
    """What deciding, re-valuing and evaluating read and write: one small interface, one
    implementation per backend.

    :param dimension: the resonators' length.
    """

    dimension: int

    @abstractmethod
    def nearest(self, queries: np.ndarray, limit: int, action: Optional[int] = None) -> NeighbourTable:
        """The ``limit`` engrams nearest to each query (float32 rows of ``dimension``), by squared L2,
        nearest first; only those that took ``action`` when it is given."""

    @abstractmethod
    def add(self, engrams: EngramColumns, replace: bool = False) -> int:
        """Store a batch (ids set, see ``new_ids``); returns how many.

        :param replace: some ids may be stored already (engrams kept after a failed request): each
            ends up stored once.
        """

    @abstractmethod
    def count(self) -> int:
        """How many engrams the memory holds."""

    def known(self) -> Optional[int]:
        """How many engrams this process holds a copy of (None: it holds none, only Milvus knows)."""
        return None

    def engrams(self) -> EngramColumns:
        """Every engram, as columns, in the row order ``NeighbourTable.rows`` refers to (re-valuation
        reads them). Only memories that hold their engrams in this process have them."""
        raise NotImplementedError(f"{type(self).__name__} holds no engrams in this process; re-valuation needs "
                                  "SEARCH_BACKEND = \"replica\"")

    def set_outcomes(self, rows: np.ndarray, outcomes: np.ndarray) -> None:
        """Give the engrams at these rows of ``engrams()`` new outcomes (re-valuation)."""
        raise NotImplementedError(f"{type(self).__name__} cannot re-value outcomes; re-valuation needs "
                                  "SEARCH_BACKEND = \"replica\"")


@dataclass(frozen=True)
class Engram:
    """One remembered step.

    :param vector: the resonator of the situation (normalised, weighted state + trial success).
    :param action: the action taken, an index into the action space.
    :param outcome: how well it went, in [-1, 1] (the step's reward, weighted by the trial's success).
    :param trial: the number of the trial that left it.
    :param id: its primary key; the store draws one at random when it is stored without one.
    :param reward: the step's own reward (the environment's units), from which re-valuation starts.
    :param next_vector: the resonator of the situation the step led to (None: unknown).
    :param ended: whether the trial ended with this step (the environment's own end; a time limit
        or a death by hit points is not an end). An engram without a ``next_vector`` counts as an
        end: nothing is known to follow it.
    """

    vector: tuple
    action: int
    outcome: float
    trial: int = 0
    id: Optional[int] = None
    reward: float = 0.0
    next_vector: Optional[tuple] = None
    ended: bool = True


@dataclass(frozen=True)
class Neighbours:
    """The engrams nearest to one query, as arrays (nearest first)."""

    actions: np.ndarray
    outcomes: np.ndarray
    distances: np.ndarray

    def __len__(self) -> int:
        return len(self.actions)
