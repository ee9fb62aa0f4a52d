"""Engrams and the ``EngramStore``: the memory of nature, kept in a real Milvus.

An engram is one remembered step: the resonator vector of the situation, the action taken and
its outcome. The store keeps one Milvus collection per instance name and answers "which engrams
resonate most with this vector?" by an IVF_FLAT / L2 nearest-neighbour search.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence, TypeVar

import grpc
import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException
from tqdm import tqdm

import milvus_columns
from config import COLLECTION_NAME, SEARCH_BACKENDS, Settings
from milvus_server import (embedded_server_token, embedded_server_uri, raise_if_credential_refused,
                           release_embedded_server)
from replica import EngramReplica, EngramRows

# The collection's fields: named once here, used by the schema, inserts and searches.
FIELD_ID = "id"
FIELD_VECTOR = "vector"
FIELD_ACTION = "action"
FIELD_OUTCOME = "outcome"
FIELD_TRIAL = "trial"
FIELD_REWARD = "reward"            # the step's own reward: what re-valuation starts from
FIELD_NEXT_VECTOR = "next_vector"  # the resonator of the situation the step led to
FIELD_ENDED = "ended"              # the trial ended there (LunarLander's end; not a time limit)
FIELD_STORED_AT = "stored_at"      # microseconds since the epoch when its writer sent it: replicas poll it
FIELD_WRITER = "writer"            # a random number per store: a replica skips its own engrams when polling
NEIGHBOUR_FIELDS = [FIELD_ACTION, FIELD_OUTCOME]  # all a decision needs: vectors are not fetched
ENGRAM_FIELDS = [FIELD_ID, FIELD_VECTOR, FIELD_ACTION, FIELD_OUTCOME, FIELD_TRIAL, FIELD_REWARD,
                 FIELD_NEXT_VECTOR, FIELD_ENDED]   # what a replica copies
FIELD_KINDS = {FIELD_ID: DataType.INT64, FIELD_VECTOR: DataType.FLOAT_VECTOR, FIELD_ACTION: DataType.INT16,
               FIELD_OUTCOME: DataType.FLOAT, FIELD_TRIAL: DataType.INT64, FIELD_REWARD: DataType.FLOAT,
               FIELD_NEXT_VECTOR: DataType.ARRAY, FIELD_ENDED: DataType.BOOL, FIELD_STORED_AT: DataType.INT64,
               FIELD_WRITER: DataType.INT64}  # the collection's schema, in field order

# What a search waits for. "Session" (the default) sees every insert this client made before it:
# a finished trial's engrams are visible to the very next decision, without paying for "Strong"
# (~400 ms a search here). "Eventually" waits for nothing: inserts show up a server time tick later.
CONSISTENCY_LEVELS = ("Session", "Eventually", "Bounded", "Strong")
MILVUS_LITE_SUFFIX = ".db"
FIRST_RETRY_DELAY_S = 0.5      # a request that failed for want of a server is retried after this,
LONGEST_RETRY_DELAY_S = 8.0    # doubling up to this, until MILVUS_RETRY_TIMEOUT has passed
PERMANENT_ERROR_CODES = {100, 1100}  # Milvus: collection not found, invalid parameter (no retry helps)
ID_RANGE = 2 ** 63 - 1         # engram ids are random positive int64s: unique across processes
LOAD_CHUNK = 20_000            # engrams per request when a replica loads a kept memory
LOAD_PROGRESS_FROM = 100_000   # a replica loading at least this many engrams shows a progress bar
# A replica polls for other writers' engrams stamped up to this long before its previous poll:
# an insert is stamped when sent and visible once acknowledged, and clocks of machines differ.
POLL_LOOKBACK_US = 5_000_000
# Why: gRPC shares one connection per address across a process and, after a server went away,
# waits up to 120 s between reconnection attempts, so a restarted server (or a new one on a port
# a dead one used) stayed "unavailable" to every client of the process. Each client keeps its own
# connection here, and tries again at least every 2 s.
GRPC_OPTIONS = {"grpc.use_local_subchannel_pool": 1, "grpc.max_reconnect_backoff_ms": 2000}
T = TypeVar("T")


class EngramError(ValueError):
    """An engram, a query vector or a collection name is not what the store expects."""


class CollectionMismatchError(RuntimeError):
    """An existing collection does not have the schema the settings ask for; it is left untouched."""


class CollectionInUseError(RuntimeError):
    """Another Trainer on this machine is training (writing to) the same collection."""


class MilvusUnavailableError(ConnectionError):
    """The Milvus server at the configured URI could not be reached."""


class EngramsNotStoredError(MilvusUnavailableError):
    """Milvus stayed unreachable while engrams were being stored; ``engrams`` holds them, with the
    ids they were sent with, so that storing them again (``upsert_many``) cannot duplicate any."""

    def __init__(self, message: str, engrams: List["Engram"]) -> None:
        super().__init__(message)
        self.engrams = engrams


@dataclass(frozen=True)
class Engram:
    """One remembered step.

    :param vector: the resonator of the situation (normalised, weighted state + trial success).
    :param action: the action taken, an index into the action space.
    :param outcome: how well it went, in [-1, 1] (the step's reward, weighted by the trial's success).
    :param trial: the number of the trial that left it.
    :param id: its primary key; the store draws one at random when it is stored without one.
    :param reward: the step's own reward (LunarLander's units), from which re-valuation starts.
    :param next_vector: the resonator of the situation the step led to (None: unknown).
    :param ended: whether the trial ended with this step (LunarLander's own end: a crash or a
        landing at rest; a time limit or a death by hit points is not an end). An engram without
        a ``next_vector`` counts as an end: nothing is known to follow it.
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
    """The engrams nearest to one query, as arrays (nearest first): the decision's hot path."""

    actions: np.ndarray
    outcomes: np.ndarray
    distances: np.ndarray

    def __len__(self) -> int:
        return len(self.actions)


NO_NEIGHBOURS = Neighbours(np.zeros(0, np.int64), np.zeros(0), np.zeros(0))


@dataclass(frozen=True)
class NeighbourTable:
    """The neighbours of many queries at once, one row per query, padded to one length: the form a
    batched decision reads without a Python loop over queries.

    :param found: False where a query had fewer neighbours than the row's length (padding).
    """

    actions: np.ndarray
    outcomes: np.ndarray
    distances: np.ndarray
    found: np.ndarray

    def as_list(self) -> List[Neighbours]:
        return [Neighbours(actions[found], outcomes[found], distances[found]) for actions, outcomes, distances, found
                in zip(self.actions, self.outcomes, self.distances, self.found)]

    @classmethod
    def from_lists(cls, neighbours: List[Neighbours]) -> "NeighbourTable":
        width = max([len(n) for n in neighbours] + [0])
        found = np.arange(width)[None, :] < np.array([len(n) for n in neighbours])[:, None]
        table = {name: np.zeros((len(neighbours), width), dtype) for name, dtype in
                 (("actions", np.int64), ("outcomes", np.float64), ("distances", np.float64))}
        for name, column in table.items():
            column[found] = np.concatenate([getattr(n, name) for n in neighbours] + [np.zeros(0, column.dtype)])
        return cls(table["actions"], table["outcomes"], table["distances"], found)


def connect(settings: Settings) -> MilvusClient:
    """A client for the configured Milvus: ``MILVUS_URI`` (with ``MILVUS_TOKEN``) if set, else the
    embedded server, with its folder's own credential."""
    if settings.milvus_uri:
        uri, token = settings.milvus_uri, settings.milvus_token
    else:
        uri = embedded_server_uri(settings.milvus_data_dir, settings.milvus_idle_grace)
        token = embedded_server_token(settings.milvus_data_dir)
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # it logs a traceback per failed request; we report
    if uri.endswith(MILVUS_LITE_SUFFIX):
        warnings.warn(f"MILVUS_URI={uri} is Milvus Lite: it works, but its search took ~0.5 s per "
                      "query at 60k engrams here, far too slow for training. Leave MILVUS_URI empty "
                      "for the embedded server.", stacklevel=2)
    try:
        return MilvusClient(uri=uri, token=token, timeout=settings.milvus_connect_timeout,
                            grpc_options=GRPC_OPTIONS)
    except MilvusException as error:
        if not settings.milvus_uri:
            raise_if_credential_refused(error, settings.milvus_data_dir)
        raise MilvusUnavailableError(
            f"could not reach Milvus at MILVUS_URI={uri!r} (waited up to {settings.milvus_connect_timeout:g} s: "
            f"{error.message}). Start that server (e.g. `docker compose up -d` in this project), "
            "fix the URI, or unset MILVUS_URI to use the embedded server.") from None


class EngramStore:
    """The engrams of one instance, in one Milvus collection.

    **Searching.** ``nearest_many`` answers "which engrams resonate most with these vectors?"
    (optionally: among those that took one action). With ``SEARCH_BACKEND = "milvus"`` (the seed's
    path) each search is a Milvus request. With ``"replica"`` an in-process copy of the collection
    (``replica.EngramReplica``, FAISS with the same IVF_FLAT / L2 index) answers: it is loaded from
    the collection when a kept memory is opened, extended with every insert Milvus has
    acknowledged (never before), and every ``REPLICA_REFRESH`` seconds of searching it polls
    Milvus for engrams other writers (other processes or machines) stored meanwhile. Milvus stays
    the store of record either way: every engram is written there first.

    **Faults.** A request that fails because Milvus is unreachable or recovering (restarted, not
    yet loaded) is retried with a backoff from 0.5 s doubling to 8 s, for ``MILVUS_RETRY_TIMEOUT``
    seconds in all; then ``MilvusUnavailableError`` says so. Each engram is sent with a random id,
    and a retried insert is an upsert of the same ids: an insert that reached the server before the
    connection broke is replaced, never duplicated. Engrams that could not be stored at all come
    back in ``EngramsNotStoredError.engrams`` (and are not in the replica).

    Schema: INT64 ``id`` (random, given by the store), FLOAT_VECTOR ``vector``
    (``STATE_VECTOR_SIZE``), INT16 ``action``, FLOAT ``outcome``, INT64 ``trial``, FLOAT ``reward``,
    ARRAY of FLOAT ``next_vector``, BOOL ``ended``, INT64 ``stored_at`` and ``writer``; an IVF_FLAT /
    L2 index (``INDEX_NLIST`` lists), searched with ``SEARCH_NPROBE``.

    Every engram and query is checked before anything is sent: a bad one raises ``EngramError``
    and nothing of the batch is stored. An existing collection with another schema raises
    ``CollectionMismatchError`` and is never dropped, even with ``reset``; one made by an earlier
    version of this project (fewer fields) is dropped only with ``reset``.

    :param name: the collection's name (letters, digits and ``_``, not starting with a digit).
    :param reset: drop the collection's engrams first (a fresh memory); else keep and extend them.
    :param settings: the run's settings; ``settings.py`` by default.
    :param client: an open client to share; by default one is made from the settings.
    :param consistency: what each Milvus search waits for (see ``CONSISTENCY_LEVELS``).
    :param search_backend: ``"milvus"`` or ``"replica"``; ``SEARCH_BACKEND`` by default.
    """

    def __init__(self, name: str, reset: bool = False, settings: Optional[Settings] = None,
                 client: Optional[MilvusClient] = None, consistency: str = "Session",
                 search_backend: Optional[str] = None) -> None:
        if not isinstance(name, str) or not COLLECTION_NAME.match(name):
            raise EngramError(f"invalid collection name {name!r}: expected letters, digits and '_' "
                              "(at most 255, not starting with a digit), e.g. 'lander3'")
        if consistency not in CONSISTENCY_LEVELS:
            raise EngramError(f"consistency {consistency!r}: expected one of {', '.join(CONSISTENCY_LEVELS)}")
        self.settings = settings or Settings.from_module()
        search_backend = search_backend or self.settings.search_backend
        if search_backend not in SEARCH_BACKENDS:
            raise EngramError(f"search backend {search_backend!r}: expected one of {', '.join(SEARCH_BACKENDS)}")
        self.name = name
        self.consistency = consistency
        self.dimension = self.settings.state_vector_size
        self.action_count = self.settings.output_vector_size
        self.client = client or connect(self.settings)
        self._search_params = {"metric_type": self.settings.metric_type,
                               "params": {"nprobe": self.settings.search_nprobe}}
        self._timeout = self.settings.milvus_retry_timeout  # no single request may hang longer than this
        self._id_source = np.random.default_rng()  # fresh entropy, never the run's seed: ids must not repeat
        self.writer = int(self._id_source.integers(1, ID_RANGE))
        self._unsealed = 0
        self._sealing: Optional[threading.Thread] = None
        self.replica = EngramReplica(self.dimension, self.settings.index_nlist, self.settings.search_nprobe) \
            if search_backend == "replica" else None
        self._polled_until_us = _now_us()
        self._next_poll = 0.0
        self.engrams_dropped = 0  # by a fresh start (reset) of an existing collection
        self._open(reset)
        self._embedded_dir = None if self.settings.milvus_uri else str(Path(self.settings.milvus_data_dir).resolve())
        _open_stores[self._embedded_dir] = _open_stores.get(self._embedded_dir, 0) + 1
        self._closed = False

    def close(self) -> None:
        """This store is done. When it is the last open store of this process on the embedded server,
        the process gives up its share of the server (which its keeper stops once no program uses
        it, after ``MILVUS_IDLE_GRACE``): a notebook need not exit to let the server go. Stores
        that are never closed keep the share until the process ends."""
        if self._closed:
            return
        self._closed = True
        _open_stores[self._embedded_dir] -= 1
        if self._embedded_dir is not None and _open_stores[self._embedded_dir] == 0:
            release_embedded_server(self._embedded_dir)

    @property
    def search_backend(self) -> str:
        return "milvus" if self.replica is None else "replica"

    # --- the collection ---
    def _open(self, reset: bool) -> None:
        if self._request("opening the collection", lambda: self.client.has_collection(self.name)):
            self._check_schema(keep=not reset)
            if not reset:
                self.client.load_collection(self.name)
                self._load_replica()
                return
            self.engrams_dropped = self._count_before_dropping()
            self.client.drop_collection(self.name)
        self._create()

    def _count_before_dropping(self) -> int:
        """How many engrams a fresh start drops (for the user to read): the live count where the
        collection is loaded, else Milvus's row statistics (which also count rows an upsert replaced)."""
        try:
            return self.get_count()
        except MilvusException:
            return int(self.client.get_collection_stats(self.name)["row_count"])

    def _create(self) -> None:
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        shapes = {FIELD_ID: {"is_primary": True}, FIELD_VECTOR: {"dim": self.dimension},
                  FIELD_NEXT_VECTOR: {"element_type": DataType.FLOAT, "max_capacity": self.dimension}}
        for name, kind in FIELD_KINDS.items():
            schema.add_field(name, kind, **shapes.get(name, {}))
        index = self.client.prepare_index_params()
        index.add_index(field_name=FIELD_VECTOR, index_type=self.settings.index_type,
                        metric_type=self.settings.metric_type, params={"nlist": self.settings.index_nlist})
        self.client.create_collection(self.name, schema=schema)
        self._index_when_known(index)
        self.client.load_collection(self.name)

    def _index_when_known(self, index) -> None:
        """Index the new collection. Why the wait: a Milvus 2.3 that has just started, with two
        programs creating collections at once, answered "collection not found" to the index request
        that followed a collection's creation (seen here); a moment later it knows the collection."""
        deadline = time.monotonic() + self.settings.milvus_connect_timeout
        while True:
            try:
                self.client.create_index(self.name, index)
                return
            except MilvusException as error:
                if "collection not found" not in str(error.message) or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _check_schema(self, keep: bool) -> None:
        description = self.client.describe_collection(self.name)
        fields = {f["name"]: f for f in description["fields"]}
        found_dim = fields.get(FIELD_VECTOR, {}).get("params", {}).get("dim")
        essential = (FIELD_VECTOR, FIELD_ACTION, FIELD_OUTCOME, FIELD_TRIAL)
        missing = [n for n in essential if n not in fields]
        if missing or found_dim is None or int(found_dim) != self.dimension:
            raise CollectionMismatchError(
                f"collection {self.name!r} already exists with fields {sorted(fields)} and vector "
                f"dimension {found_dim}; expected fields {', '.join(essential)} and dimension {self.dimension} "
                "(STATE_VECTOR_SIZE). It was left as it is. "
                "Use another instance name, or drop it yourself if it is no longer wanted.")
        older = [n for n in (FIELD_REWARD, FIELD_NEXT_VECTOR, FIELD_ENDED, FIELD_STORED_AT, FIELD_WRITER)
                 if n not in fields]
        if keep and (description.get("auto_id") or older):
            raise CollectionMismatchError(
                f"collection {self.name!r} was made by an earlier version of Resonant Vectors "
                f"({'Milvus draws its ids' if description.get('auto_id') else 'no fields ' + ', '.join(older)}), "
                "which this version cannot extend without losing what its engrams mean; it was left as it is. "
                "Train without --keep (DROP_COLLECTION = True) to start it afresh, or use another instance name.")

    def drop(self) -> None:
        """Delete the collection and every engram in it."""
        self._wait_for_seal()
        self.client.drop_collection(self.name)
        if self.replica is not None:
            self.replica = EngramReplica(self.dimension, self.settings.index_nlist, self.settings.search_nprobe)

    def clear(self) -> None:
        """Forget every engram, keeping an empty collection with the same schema."""
        self.drop()
        self._create()

    def flush(self) -> None:
        """Seal what was inserted into durable segments and wait (also lets Milvus index them)."""
        self._wait_for_seal()
        self._request("sealing engrams", lambda: self.client.flush(self.name, timeout=self._timeout))
        self._unsealed = 0

    def _wait_for_seal(self) -> None:
        if self._sealing is not None:
            self._sealing.join()

    def _seal_in_background(self) -> None:
        """Seal every ``SEAL_EVERY`` engrams without blocking the trainer.

        Why: Milvus searches unsealed (growing) engrams by brute force, and seals by size only at
        about two million of these small rows; measured here, a batch of 32 searches took 247 ms
        over 100k unsealed engrams and 7 ms over 300k sealed, indexed ones. ``flush`` blocks for
        about 1.5 s, so it runs in a thread; Milvus's compaction merges the small segments later.
        """
        if self._unsealed < self.settings.seal_every or (self._sealing and self._sealing.is_alive()):
            return
        self._unsealed = 0
        self._sealing = threading.Thread(target=self._seal_quietly, daemon=True)
        self._sealing.start()

    def _seal_quietly(self) -> None:
        """A background seal that fails is left to the next one (or to ``flush``): it loses nothing."""
        try:
            self.client.flush(self.name)
        except (MilvusException, grpc.RpcError):
            self._unsealed = self.settings.seal_every

    def get_count(self) -> int:
        """How many engrams the collection holds now: "Strong", since "Session" misses deletes."""
        return self._count("", "counting engrams", "Strong")

    # --- faults ---
    def _request(self, what: str, send: Callable[[], T], resend: Optional[Callable[[], T]] = None) -> T:
        """Send a request, and send it again (``resend`` if given) while Milvus is unreachable or
        recovering (see ``retried``)."""
        return retried(self.settings, what, send, resend)

    # --- writing ---
    def insert(self, engram: Engram) -> int:
        """Store one engram."""
        return self.insert_many([engram])

    def insert_many(self, engrams: Iterable[Engram]) -> int:
        """Store many engrams in one request; all are checked first, so a bad one stores none.

        :return: how many engrams were stored.
        :raises EngramsNotStoredError: Milvus stayed unreachable; the error carries the engrams.
        """
        return self._write(engrams, upsert=False)

    def upsert_many(self, engrams: Iterable[Engram]) -> int:
        """Store engrams that may already be stored (they carry ids): each id ends up stored once.

        Why: engrams kept after a failed insert (``EngramsNotStoredError``) may have reached the
        server before the connection broke; upserting them cannot duplicate them.
        """
        return self._write(engrams, upsert=True)

    def _write(self, engrams: Iterable[Engram], upsert: bool) -> int:
        engrams = self._with_ids(list(engrams))
        columns = self._columns_of(engrams)
        if not len(columns):
            return 0
        try:
            self._send_rows(columns, upsert, f"storing {len(columns)} engrams")
        except MilvusUnavailableError as error:
            raise EngramsNotStoredError(str(error), engrams) from None
        if self.replica is not None:
            self.replica.add(columns)  # only now: the replica never serves what Milvus did not take
        self._unsealed += len(columns)
        self._seal_in_background()
        return len(columns)

    def _send_rows(self, columns: EngramRows, upsert: bool, what: str) -> None:
        """Send rows, stamped when each attempt is sent (so that a replica polling ``stored_at``
        finds a retried insert too); a retry is an upsert of the same ids."""
        def send(upsert: bool) -> Callable[[], None]:
            return lambda: milvus_columns.write(self.client, self.name, self._milvus_columns(columns), FIELD_KINDS,
                                                upsert, self._timeout)
        self._request(what, send(upsert), resend=send(True))

    def _milvus_columns(self, columns: EngramRows) -> dict:
        count = len(columns)
        return {FIELD_ID: columns.ids, FIELD_VECTOR: columns.vectors, FIELD_ACTION: columns.actions,
                FIELD_OUTCOME: columns.outcomes, FIELD_TRIAL: columns.trials, FIELD_REWARD: columns.rewards,
                FIELD_NEXT_VECTOR: columns.next_vectors, FIELD_ENDED: columns.ended,
                FIELD_STORED_AT: np.full(count, _now_us(), np.int64), FIELD_WRITER: np.full(count, self.writer, np.int64)}

    def _with_ids(self, engrams: List[Engram]) -> List[Engram]:
        missing = [i for i, engram in enumerate(engrams) if isinstance(engram, Engram) and engram.id is None]
        ids = self._id_source.integers(1, ID_RANGE, size=len(missing))
        for position, engram_id in zip(missing, ids):
            engrams[position] = replace(engrams[position], id=int(engram_id))
        return engrams

    def _columns_of(self, engrams: List[Engram]) -> EngramRows:
        """The engrams as columns, every one checked first."""
        for position, engram in enumerate(engrams):
            self._check(position, engram)
        if not engrams:
            return EngramRows.empty(self.dimension)
        unknown_next = (0.0,) * self.dimension
        return EngramRows(
            ids=np.array([engram.id for engram in engrams], np.int64),
            vectors=self._checked_column([engram.vector for engram in engrams], "vector"),
            actions=np.array([engram.action for engram in engrams], np.int64),
            outcomes=np.array([engram.outcome for engram in engrams], np.float32),
            trials=np.array([engram.trial for engram in engrams], np.int64),
            rewards=np.array([engram.reward for engram in engrams], np.float32),
            next_vectors=self._checked_column([unknown_next if engram.next_vector is None else engram.next_vector
                                               for engram in engrams], "next_vector"),
            ended=np.array([bool(engram.ended) or engram.next_vector is None for engram in engrams]))

    def _checked_column(self, vectors: list, name: str) -> np.ndarray:
        """Many engrams' vectors checked at once; if any is bad, the first bad one is named."""
        try:
            return self._checked_vectors(vectors, what=f"an engram's {name}")
        except EngramError:
            for position, vector in enumerate(vectors):
                self._checked_vectors([vector], what=f"engram {position}'s {name}")
            raise

    def _check(self, position: int, engram: Engram) -> None:
        if not isinstance(engram, Engram):
            raise EngramError(f"item {position} is a {type(engram).__name__}, expected an Engram")
        action = engram.action
        if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)) \
                or not 0 <= action < self.action_count:
            raise EngramError(f"engram {position}: action {action!r} is outside the action space; "
                              f"expected a whole number from 0 to {self.action_count - 1}")
        if isinstance(engram.id, bool) or not isinstance(engram.id, (int, np.integer)) or not 0 < engram.id <= ID_RANGE:
            raise EngramError(f"engram {position}: id {engram.id!r}: expected a whole number from 1 to 2**63 - 1")
        for name in ("outcome", "reward"):
            if not _is_finite_number(getattr(engram, name)):
                raise EngramError(f"engram {position}: {name} {getattr(engram, name)!r}: expected a finite number")

    # --- re-valuing ---
    def set_outcomes(self, rows: np.ndarray, outcomes: np.ndarray) -> int:
        """Give the replica's engrams at ``rows`` new outcomes, in Milvus first (an upsert of the same
        ids, so the count does not change), then in the replica. Returns how many were written.

        :raises EngramError: without a replica (re-valuation reads the whole memory from it).
        """
        if self.replica is None:
            raise EngramError("re-valuing outcomes needs SEARCH_BACKEND = \"replica\" (it reads every engram)")
        rows = np.asarray(rows, np.int64)
        outcomes = np.asarray(outcomes, np.float32)
        held = self.replica.rows()
        for start in range(0, len(rows), LOAD_CHUNK):
            chunk, new = rows[start:start + LOAD_CHUNK], outcomes[start:start + LOAD_CHUNK]
            self._send_rows(replace(held.select(chunk), outcomes=new), True, f"re-valuing {len(chunk)} engrams")
            self.replica.set_outcomes(chunk, new)  # chunk by chunk, as Milvus acknowledges them
        self._unsealed += len(rows)
        self._seal_in_background()
        return len(rows)

    # --- keeping a replica ---
    def _load_replica(self) -> None:
        """Copy the whole collection into the replica (a progress bar for big memories)."""
        if self.replica is None:
            return
        self._polled_until_us = _now_us()  # engrams stored from now on are found by polling
        self._copy_into_replica("", "loading the replica", "Strong", f"loading {self.name} into the replica")

    def _poll_other_writers(self) -> None:
        """At most every ``REPLICA_REFRESH`` seconds, add what other writers stored since the last poll.

        Why a stamp and a writer field: Milvus cannot list "rows added since", so every engram
        carries the time its writer sent it; a poll asks for other writers' engrams stamped since
        the previous poll (less ``POLL_LOOKBACK_US`` for inserts in flight, reads a time tick
        stale, and clock differences between machines), and the replica keeps each id once. The
        poll waits for nothing ("Eventually"): what it misses by a time tick, the next poll's
        lookback finds.
        """
        if self.replica is None or time.monotonic() < self._next_poll:
            return
        started = _now_us()
        since = self._polled_until_us - POLL_LOOKBACK_US
        self._copy_into_replica(f"{FIELD_STORED_AT} > {since} and {FIELD_WRITER} != {self.writer}",
                                "polling for other writers' engrams", "Eventually")
        self._polled_until_us = started
        self._next_poll = time.monotonic() + self.settings.replica_refresh

    def _copy_into_replica(self, condition: str, what: str, consistency: str, progress: str = "") -> None:
        """Add every engram matching ``condition`` to the replica, in pages of about ``LOAD_CHUNK``
        engrams cut along the id range (ids are random), so that no answer grows with the memory."""
        count = self._count(condition, what, consistency)
        pages = max(1, -(-count // LOAD_CHUNK))
        edges = [i * (ID_RANGE // pages) for i in range(pages)] + [ID_RANGE]
        with tqdm(total=count, unit="engram", desc=progress, leave=False,
                  disable=not progress or count < LOAD_PROGRESS_FROM) as bar:
            for low, high in zip(edges[:-1], edges[1:]) if count else ():
                page = f"{FIELD_ID} > {low} and {FIELD_ID} <= {high}"
                found = self._query_rows(f"({condition}) and {page}" if condition else page, what, consistency)
                self.replica.add(found)
                bar.update(len(found))

    def _count(self, condition: str, what: str, consistency: str) -> int:
        rows = self._request(what, lambda: self.client.query(
            self.name, filter=condition, output_fields=["count(*)"], consistency_level=consistency,
            timeout=self._timeout))
        return int(rows[0]["count(*)"])

    def _query_rows(self, condition: str, what: str, consistency: str) -> EngramRows:
        """Every engram matching ``condition``, as columns."""
        rows = self._request(what, lambda: self.client.query(
            self.name, filter=condition, output_fields=ENGRAM_FIELDS, consistency_level=consistency,
            timeout=self._timeout))
        if not rows:
            return EngramRows.empty(self.dimension)
        return EngramRows(
            ids=np.array([row[FIELD_ID] for row in rows], np.int64),
            vectors=np.array([row[FIELD_VECTOR] for row in rows], np.float32),
            actions=np.array([row[FIELD_ACTION] for row in rows], np.int64),
            outcomes=np.array([row[FIELD_OUTCOME] for row in rows], np.float32),
            trials=np.array([row[FIELD_TRIAL] for row in rows], np.int64),
            rewards=np.array([row[FIELD_REWARD] for row in rows], np.float32),
            next_vectors=np.array([row[FIELD_NEXT_VECTOR] for row in rows], np.float32).reshape(-1, self.dimension),
            ended=np.array([row[FIELD_ENDED] for row in rows], bool))

    # --- searching ---
    def nearest(self, vector: Sequence[float], limit: int) -> list:
        """The ``limit`` engrams nearest to ``vector`` by L2, nearest first, as (Engram, distance).

        Distances are Milvus's L2: the *squared* Euclidean distance.
        The engrams carry no vector (``vector=()``): fetching vectors would double the search's
        cost and no decision needs them.
        """
        found = self.nearest_many([vector], limit)[0]
        return [(Engram((), int(action), float(outcome)), float(distance))
                for action, outcome, distance in zip(found.actions, found.outcomes, found.distances)]

    def nearest_many(self, vectors: Sequence[Sequence[float]], limit: int,
                     action: Optional[int] = None) -> List[Neighbours]:
        """One search for many query vectors: a ``Neighbours`` per vector, in order.

        :param action: only engrams that took this action (one memory per action); None: all.
        """
        return self.nearest_table(vectors, limit, action).as_list()

    def nearest_table(self, vectors: Sequence[Sequence[float]], limit: int,
                      action: Optional[int] = None) -> NeighbourTable:
        """``nearest_many``'s answer as one padded table (the decisions' hot path)."""
        if not isinstance(limit, (int, np.integer)) or not 1 <= limit <= 16384:
            raise EngramError(f"limit {limit!r}: expected a whole number from 1 to 16384")
        if action is not None and (not isinstance(action, (int, np.integer)) or not 0 <= action < self.action_count):
            raise EngramError(f"action {action!r}: expected None or a whole number from 0 to {self.action_count - 1}")
        queries = self._checked_vectors(vectors, what="query vector")
        if self.replica is not None:
            return self._search_replica(queries, int(limit), action)
        return self._search_milvus(queries, int(limit), action)

    def _search_replica(self, queries: np.ndarray, limit: int, action: Optional[int]) -> NeighbourTable:
        self._poll_other_writers()
        rows, distances = self.replica.search(queries, limit, action)
        found = rows >= 0
        rows = np.where(found, rows, 0)
        held = self.replica.rows()
        return NeighbourTable(held.actions[rows], held.outcomes[rows].astype(np.float64),
                              distances.astype(np.float64), found)

    def _search_milvus(self, queries: np.ndarray, limit: int, action: Optional[int]) -> NeighbourTable:
        condition = "" if action is None else f"{FIELD_ACTION} == {int(action)}"
        columns = self._request("searching", lambda: milvus_columns.search(
            self.client, self.name, queries, limit, self._search_params, FIELD_VECTOR, NEIGHBOUR_FIELDS,
            self.consistency, self._timeout, condition))
        if not len(columns.distances):
            return NeighbourTable.from_lists([NO_NEIGHBOURS] * len(queries))
        return NeighbourTable.from_lists([
            Neighbours(hits[FIELD_ACTION].astype(np.int64), hits[FIELD_OUTCOME].astype(np.float64), hits["distance"])
            for hits in milvus_columns.split(columns)])

    def _checked_vectors(self, vectors, what: str) -> np.ndarray:
        try:
            array = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError):
            raise EngramError(f"{what}: expected numbers, got {vectors!r}") from None
        if array.ndim != 2 or array.shape[1] != self.dimension:
            length = array.shape[-1] if array.ndim else "a scalar"
            raise EngramError(f"{what} has length {length}; expected {self.dimension} "
                              "(STATE_VECTOR_SIZE: 8 weighted state dims + 1 success dim)")
        if not np.isfinite(array).all():
            raise EngramError(f"{what} contains NaN or infinity: {array[~np.isfinite(array).all(1)][0]}")
        return array


_open_stores: dict = {}  # embedded data folder (None: a MILVUS_URI server) -> stores of this process not closed


def retried(settings: Settings, what: str, send: Callable[[], T], resend: Optional[Callable[[], T]] = None) -> T:
    """Send a request, and send it again (``resend`` if given) while Milvus is unreachable or
    recovering, with a growing delay, for at most ``MILVUS_RETRY_TIMEOUT`` seconds; then
    ``MilvusUnavailableError`` naming the server."""
    deadline = time.monotonic() + settings.milvus_retry_timeout
    delay = FIRST_RETRY_DELAY_S
    while True:
        try:
            return send()
        except (MilvusException, grpc.RpcError) as error:
            if not settings.milvus_uri:
                raise_if_credential_refused(error, settings.milvus_data_dir)
            if _is_permanent(error):
                raise
            if time.monotonic() + delay > deadline:
                uri = settings.milvus_uri or f"the embedded server on {settings.milvus_data_dir}"
                raise MilvusUnavailableError(
                    f"{what}: Milvus at {uri} did not answer for {settings.milvus_retry_timeout:g} s "
                    f"(MILVUS_RETRY_TIMEOUT); last error: {_error_text(error)}. Check that the server is up "
                    "(the embedded one restarts by itself; see its logs in MILVUS_DATA_DIR/logs).") from None
            if delay == FIRST_RETRY_DELAY_S:
                print(f"Milvus did not answer ({_error_text(error)}); retrying {what} for up to "
                      f"{settings.milvus_retry_timeout:g} s", file=sys.stderr, flush=True)
            time.sleep(delay)
            delay = min(2 * delay, LONGEST_RETRY_DELAY_S)
            send = resend or send


def _now_us() -> int:
    return time.time_ns() // 1000


def _is_permanent(error: Exception) -> bool:
    return isinstance(error, MilvusException) and error.code in PERMANENT_ERROR_CODES


def _error_text(error: Exception) -> str:
    if isinstance(error, grpc.RpcError):
        return f"{error.code().name}: {error.details()}"
    return f"{error.message} (code {error.code})"


def _is_finite_number(value) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and bool(np.isfinite(value))
