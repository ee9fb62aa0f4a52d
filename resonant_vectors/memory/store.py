"""Engrams and the ``EngramStore``: the memory of nature, kept in a real Milvus.

An engram is one remembered step: the resonator vector of the situation, the action taken and
its outcome. The store keeps one Milvus collection per instance name and answers "which engrams
resonate most with this vector?" by an IVF_FLAT / L2 nearest-neighbour search.
"""
from __future__ import annotations

from typing import Iterable, List, Optional, Sequence

import numpy as np
from pymilvus import MilvusClient

from resonant_vectors.config import SEARCH_BACKENDS, Settings
from resonant_vectors.memory.milvus.collection import CONSISTENCY_LEVELS, EngramCollection, open_memory, use_server
from resonant_vectors.memory.seam import Engram, EngramColumns, EngramError, Neighbours, NeighbourTable, new_ids


class EngramStore:
    """The engrams of one instance, in one Milvus collection.

    **Searching.** ``nearest`` / ``nearest_many`` answer "which engrams resonate most with these
    vectors?" (optionally: among those that took one action). With ``SEARCH_BACKEND = "milvus"``
    (the seed's path) each search is a Milvus request; with ``"replica"`` an in-process FAISS copy
    of the collection answers (``milvus_memory.ReplicatedMemory``). Milvus stays the store of record
    either way: every engram is written there first. ``memory`` is the store's ``memory.Memory``,
    what the brain, re-valuation and evaluation read through.

    **Faults.** A request that fails because Milvus is unreachable or recovering is retried with a
    backoff from 0.5 s doubling to 8 s, for ``MILVUS_RETRY_TIMEOUT`` seconds in all; then
    ``MilvusUnavailableError`` says so. Each engram is sent with a random id, and a retried insert
    is an upsert of the same ids: never duplicated. Engrams that could not be stored come back in
    ``EngramsNotStoredError.engrams``.

    Every engram and query is checked before anything is sent: a bad one raises ``EngramError``
    and nothing of the batch is stored. An existing collection with another schema raises
    ``CollectionMismatchError`` and is never dropped, even with ``reset``; one made by an earlier
    version of this project (fewer fields) is dropped only with ``reset``. The collection's schema
    is ``milvus_memory.EngramCollection``'s.

    :param name: the collection's name (letters, digits and ``_``, not starting with a digit).
    :param reset: drop the collection's engrams first (a fresh memory); else keep and extend them.
    :param settings: the run's settings; ``settings.py`` by default.
    :param client: an open client to share; by default one is made from the settings.
    :param consistency: what each Milvus search waits for (see ``milvus_memory.CONSISTENCY_LEVELS``).
    :param search_backend: ``"milvus"`` or ``"replica"``; ``SEARCH_BACKEND`` by default.
    :param collection: the collection, opened already (its schema checked, nothing changed yet):
        how the ``Trainer`` checks everything before a fresh start drops a memory.
    """

    def __init__(self, name: str, reset: bool = False, settings: Optional[Settings] = None,
                 client: Optional[MilvusClient] = None, consistency: str = "Session",
                 search_backend: Optional[str] = None, collection: Optional[EngramCollection] = None) -> None:
        if consistency not in CONSISTENCY_LEVELS:
            raise EngramError(f"consistency {consistency!r}: expected one of {', '.join(CONSISTENCY_LEVELS)}")
        self.settings = settings or Settings.from_module()
        self.search_backend = search_backend or self.settings.search_backend
        if self.search_backend not in SEARCH_BACKENDS:
            raise EngramError(f"search backend {self.search_backend!r}: expected one of {', '.join(SEARCH_BACKENDS)}")
        self.name = name
        self.consistency = consistency
        self.dimension = self.settings.resonator_size
        self.action_count = self.settings.action_count
        self.collection = collection or EngramCollection(name, self.settings, client)
        self.engrams_dropped = 0  # by a fresh start (reset) of an existing collection
        if reset:
            self.engrams_dropped = self.collection.start_afresh()
        else:
            self.collection.open_kept()
        self.memory = open_memory(self.collection, self.search_backend, consistency)
        self._end_use = use_server(self.settings)

    def close(self) -> None:
        """This store is done. When it is the last open store of this process on the embedded server,
        the process gives up its share of the server (which its keeper stops once no program uses
        it, after ``MILVUS_IDLE_GRACE``). Stores never closed keep the share until the process ends."""
        self._end_use()

    # --- writing ---
    def insert(self, engram: Engram) -> int:
        """Store one engram."""
        return self.insert_many([engram])

    def insert_many(self, engrams: Iterable[Engram]) -> int:
        """Store many engrams in one request; all are checked first, so a bad one stores none.

        :return: how many engrams were stored.
        :raises EngramsNotStoredError: Milvus stayed unreachable; the error carries the engrams.
        """
        return self.memory.add(self._columns_of(list(engrams)))

    def upsert_many(self, engrams: Iterable[Engram]) -> int:
        """Store engrams that may already be stored (they carry ids): each id ends up stored once.

        Why: engrams kept after a failed insert (``EngramsNotStoredError``) may have reached the
        server before the connection broke; upserting them cannot duplicate them.
        """
        return self.memory.add(self._columns_of(list(engrams)), replace=True)

    def set_outcomes(self, rows: np.ndarray, outcomes: np.ndarray) -> None:
        """Give the engrams at these rows of ``memory.engrams()`` new outcomes (re-valuation)."""
        self.memory.set_outcomes(rows, outcomes)

    # --- searching ---
    def nearest(self, vector: Sequence[float], limit: int) -> list:
        """The ``limit`` engrams nearest to ``vector`` by L2, nearest first, as (Engram, distance).

        Distances are Milvus's L2: the *squared* Euclidean distance. The engrams carry no vector
        (``vector=()``): fetching vectors would double the search's cost and no decision needs them.
        """
        found = self.nearest_many([vector], limit)[0]
        return [(Engram((), int(action), float(outcome)), float(distance))
                for action, outcome, distance in zip(found.actions, found.outcomes, found.distances)]

    def nearest_many(self, vectors: Sequence[Sequence[float]], limit: int,
                     action: Optional[int] = None) -> List[Neighbours]:
        """One search for many query vectors: a ``Neighbours`` per vector, in order.

        :param action: only engrams that took this action (one memory per action); None: all.
        """
        table = self.nearest_table(vectors, limit, action)
        return [Neighbours(actions[found], outcomes[found], distances[found]) for actions, outcomes, distances, found
                in zip(table.actions, table.outcomes, table.distances, table.found)]

    def nearest_table(self, vectors: Sequence[Sequence[float]], limit: int,
                      action: Optional[int] = None) -> NeighbourTable:
        """``nearest_many``'s answer as one padded table (``memory.NeighbourTable``)."""
        if not isinstance(limit, (int, np.integer)) or not 1 <= limit <= 16384:
            raise EngramError(f"limit {limit!r}: expected a whole number from 1 to 16384")
        if action is not None and (not isinstance(action, (int, np.integer)) or not 0 <= action < self.action_count):
            raise EngramError(f"action {action!r}: expected None or a whole number from 0 to {self.action_count - 1}")
        return self.memory.nearest(checked_vectors(vectors, self.dimension, "query vector"), int(limit), action)

    # --- the collection ---
    def get_count(self) -> int:
        """How many engrams the collection holds now."""
        return self.collection.count()

    def flush(self) -> None:
        """Seal what was inserted into durable segments and wait (also lets Milvus index them)."""
        self.collection.flush()

    def drop(self) -> None:
        """Delete the collection and every engram in it (``clear`` keeps an empty one to go on with)."""
        self.collection.drop()

    def clear(self) -> None:
        """Forget every engram, keeping an empty collection with the same schema."""
        self.collection.start_afresh()
        self.memory = open_memory(self.collection, self.search_backend, self.consistency)

    # --- checking ---
    def _columns_of(self, engrams: List[Engram]) -> EngramColumns:
        """The engrams as columns (ids drawn where missing), every one checked first."""
        for position, engram in enumerate(engrams):
            self._check(position, engram)
        if not engrams:
            return EngramColumns.empty(self.dimension)
        unknown_next = (0.0,) * self.dimension
        ids = np.array([engram.id or 0 for engram in engrams], np.int64)
        ids[ids == 0] = new_ids(int((ids == 0).sum()))
        return EngramColumns.of(
            id=ids, vector=self._checked_column([engram.vector for engram in engrams], "vector"),
            action=[engram.action for engram in engrams], outcome=[engram.outcome for engram in engrams],
            trial=[engram.trial for engram in engrams], reward=[engram.reward for engram in engrams],
            next_vector=self._checked_column([unknown_next if engram.next_vector is None else engram.next_vector
                                              for engram in engrams], "next_vector"),
            ended=[bool(engram.ended) or engram.next_vector is None for engram in engrams])

    def _checked_column(self, vectors: list, name: str) -> np.ndarray:
        """Many engrams' vectors checked at once; if any is bad, the first bad one is named."""
        try:
            return checked_vectors(vectors, self.dimension, f"an engram's {name}")
        except EngramError:
            for position, vector in enumerate(vectors):
                checked_vectors([vector], self.dimension, f"engram {position}'s {name}")
            raise

    def _check(self, position: int, engram: Engram) -> None:
        if not isinstance(engram, Engram):
            raise EngramError(f"item {position} is a {type(engram).__name__}, expected an Engram")
        action = engram.action
        if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)) \
                or not 0 <= action < self.action_count:
            raise EngramError(f"engram {position}: action {action!r} is outside the action space; "
                              f"expected a whole number from 0 to {self.action_count - 1}")
        if engram.id is not None and (isinstance(engram.id, bool) or not isinstance(engram.id, (int, np.integer))
                                      or not 0 < engram.id < 2 ** 63):
            raise EngramError(f"engram {position}: id {engram.id!r}: expected a whole number from 1 to 2**63 - 1")
        for name in ("outcome", "reward"):
            if not _is_finite_number(getattr(engram, name)):
                raise EngramError(f"engram {position}: {name} {getattr(engram, name)!r}: expected a finite number")


def checked_vectors(vectors, dimension: int, what: str) -> np.ndarray:
    """Vectors as a float32 array of rows of ``dimension`` finite numbers, or an ``EngramError``
    saying what was wrong and what was expected."""
    try:
        array = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError):
        raise EngramError(f"{what}: expected numbers, got {vectors!r}") from None
    if array.ndim != 2 or array.shape[1] != dimension:
        length = array.shape[-1] if array.ndim else "a scalar"
        raise EngramError(f"{what} has length {length}; expected {dimension} "
                          "(STATE_VECTOR_SIZE: the weighted state dims + 1 success dim)")
    if not np.isfinite(array).all():
        raise EngramError(f"{what} contains NaN or infinity: {array[~np.isfinite(array).all(1)][0]}")
    return array


def _is_finite_number(value) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and bool(np.isfinite(value))


class MemoryNotFoundError(EngramError):
    """A memory was to be read (evaluate, watch, read-only training) but no collection has its name;
    nothing was created."""


def consistency_for(settings: Settings) -> str:
    """What a population's Milvus searches wait for: alone, a lander sees the previous trial's
    engrams ("Session"); a population's searches do not wait for the latest inserts
    ("Eventually": a finished trial's engrams reach the others a server time tick later), which
    cost a population of 32 a fifth of its throughput, and a species does not need the last few
    milliseconds."""
    return "Session" if settings.population_size == 1 else "Eventually"
