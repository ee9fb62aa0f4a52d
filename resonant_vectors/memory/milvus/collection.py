"""The memory in Milvus: one collection of engrams, and the two memories built on it.

Why its own module: everything that speaks to Milvus lives here (with ``memory.milvus.columns`` for the
columnar requests and ``resonant_vectors.server`` for the embedded server), so that nothing else touches
a pymilvus client:

- ``EngramCollection``: one Milvus collection of engrams — its schema (derived from
  ``memory.EngramColumns``), opening, starting afresh, writing, searching, paging, sealing, and
  retrying while Milvus is down;
- ``MilvusMemory``: a ``memory.Memory`` that asks Milvus for every search (the seed's path);
- ``ReplicatedMemory``: a ``memory.Memory`` that writes Milvus first and answers from an in-process
  FAISS copy (``replica.EngramReplica``) polled for other writers' engrams.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Callable, Iterator, Optional, TypeVar

import grpc
import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException
from tqdm import tqdm

from resonant_vectors.config import COLLECTION_NAME, Settings
from resonant_vectors.errors import ResonantVectorsError
from resonant_vectors.memory.milvus import columns as milvus_columns
from resonant_vectors.memory.replica import EngramReplica
from resonant_vectors.memory.seam import (
    COLUMN_NAMES,
    COLUMNS,
    ID_RANGE,
    STAMP_COLUMNS,
    EngramColumns,
    EngramError,
    Memory,
    NeighbourTable,
    NotStoredError,
)
from resonant_vectors.server.credential import raise_if_credential_refused
from resonant_vectors.server.supervision import embedded_server_token, embedded_server_uri, release_embedded_server

FIELDS = {**COLUMNS, **STAMP_COLUMNS}      # the collection's fields, in order
FIELD_KINDS = {name: getattr(DataType, field["kind"]) for name, field in FIELDS.items()}
NEIGHBOUR_FIELDS = ["action", "outcome"]   # all a decision needs: vectors are not fetched
ESSENTIAL_FIELDS = ("vector", "action", "outcome", "trial")  # the seed-era collection's fields
# What a search waits for. "Session" (the default) sees every insert this client made before it:
# a finished trial's engrams are visible to the very next decision, without paying for "Strong"
# (hundreds of ms a search on Milvus 2.3). "Eventually" waits for nothing: inserts show up a server
# time tick later.
CONSISTENCY_LEVELS = ("Session", "Eventually", "Bounded", "Strong")
MILVUS_LITE_SUFFIX = ".db"
FIRST_RETRY_DELAY_S = 0.5      # a request that failed for want of a server is retried after this,
LONGEST_RETRY_DELAY_S = 8.0    # doubling up to this, until MILVUS_RETRY_TIMEOUT has passed
PERMANENT_ERROR_CODES = {100, 1100}  # Milvus: collection not found, invalid parameter (no retry helps)
PAGE = 20_000                  # engrams per request when a replica loads or polls
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


class CollectionMismatchError(ResonantVectorsError, RuntimeError):
    """An existing collection does not have the schema the settings ask for; it is left untouched."""


class MilvusUnavailableError(ResonantVectorsError, ConnectionError):
    """The Milvus server at the configured URI could not be reached."""


class EngramsNotStoredError(MilvusUnavailableError, NotStoredError):
    """Milvus stayed unreachable while engrams were being stored; ``engrams`` holds them (columns),
    with the ids they were sent with, so that storing them again (an upsert) cannot duplicate any."""

    def __init__(self, message: str, engrams: EngramColumns) -> None:
        NotStoredError.__init__(self, message, engrams)


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
                      "query at 60k engrams, far too slow for training. Leave MILVUS_URI empty "
                      "for the embedded server.", stacklevel=2)
    try:
        return MilvusClient(uri=uri, token=token, timeout=settings.milvus_connect_timeout,
                            grpc_options=GRPC_OPTIONS)
    except MilvusException as error:
        if not settings.milvus_uri:
            raise_if_credential_refused(error, settings.milvus_data_dir)
            raise MilvusUnavailableError(
                f"could not reach the embedded Milvus on {settings.milvus_data_dir} at {uri} (waited up to "
                f"{settings.milvus_connect_timeout:g} s: {error.message}). See its logs in "
                f"{settings.milvus_data_dir}/logs; run again (its keeper restarts it).") from None
        raise MilvusUnavailableError(
            f"could not reach Milvus at MILVUS_URI={uri!r} (waited up to {settings.milvus_connect_timeout:g} s: "
            f"{error.message}). Start that server (e.g. `docker compose up -d` in this project), "
            "fix the URI, or unset MILVUS_URI to use the embedded server.") from None


def create_table(settings: Settings, client: MilvusClient, name: str, schema, what: str) -> None:
    """Create a collection used as a small table of rows (a species' ledger, its book) from a schema
    of its own fields. Why the unused vector: Milvus wants a vector field, indexed, in every collection."""
    schema.add_field("unused", DataType.FLOAT_VECTOR, dim=2)
    index = client.prepare_index_params()
    index.add_index(field_name="unused", index_type="FLAT", metric_type="L2")
    retried(settings, what, lambda: client.create_collection(name, schema=schema, index_params=index))


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


class EngramCollection:
    """One Milvus collection of engrams.

    Opening one changes nothing: an existing collection's schema is checked (another dimension or
    missing fields raise ``CollectionMismatchError``, and it is never dropped), and its engrams can
    be counted. Only then does ``start_afresh`` drop and recreate it, or ``open_kept`` load it.

    Schema (``memory.EngramColumns`` and the stamps): INT64 ``id`` (primary, random), FLOAT_VECTOR
    ``vector``, INT16 ``action``, FLOAT ``outcome``, INT64 ``trial``, FLOAT ``reward``, ARRAY of FLOAT
    ``next_vector``, BOOL ``ended``, INT64 ``stored_at`` and ``writer``; an ``INDEX_TYPE`` / L2 index
    of ``INDEX_NLIST`` lists, searched with ``SEARCH_NPROBE``. Where Milvus answers the searches, every
    ``SEAL_EVERY`` engrams written are sealed in the background so that it indexes them
    (``seal_now_and_then``).

    :param name: the collection's name (letters, digits and ``_``, not starting with a digit).
    :param settings: the run's settings.
    :param client: an open client to share; by default one is made from the settings.
    """

    def __init__(self, name: str, settings: Settings, client: Optional[MilvusClient] = None) -> None:
        if not isinstance(name, str) or not COLLECTION_NAME.match(name):
            raise EngramError(f"invalid collection name {name!r}: expected letters, digits and '_' "
                                        "(at most 255, not starting with a digit), e.g. 'lander3'")
        self.name = name
        self.settings = settings
        self.dimension = settings.resonator_size
        self.client = client or connect(settings)
        self.writer = int(np.random.default_rng().integers(1, ID_RANGE))  # this process's stamp on what it writes
        self._timeout = settings.milvus_retry_timeout  # no single request may hang longer than this
        self._search_params = {"metric_type": settings.metric_type, "params": {"nprobe": settings.search_nprobe}}
        self._unsealed = 0
        self._sealing: Optional[threading.Thread] = None
        self.exists = self._request("opening the collection", lambda: self.client.has_collection(name))
        self.earlier_version = self._check_schema() if self.exists else None

    # --- opening ---
    def start_afresh(self) -> int:
        """Drop the collection (if any) and create it empty; returns how many engrams it held."""
        dropped = self.drop_counting()
        self._create()
        return dropped

    def drop_counting(self) -> int:
        """Drop the collection, if there is one; returns how many engrams it held. (``open_kept``
        then creates it empty.)"""
        if not self.exists:
            return 0
        dropped = self.count_held()
        self.drop()
        return dropped

    def open_kept(self) -> None:
        """Load the collection with its engrams (create it if there is none)."""
        if not self.exists:
            self._create()
            return
        if self.earlier_version:
            raise CollectionMismatchError(
                f"collection {self.name!r} was made by an earlier version of Resonant Vectors "
                f"({self.earlier_version}), which this version cannot extend without losing what its engrams "
                "mean; it was left as it is. Train without --keep (DROP_COLLECTION = True) to start it afresh, "
                "or use another instance name.")
        self._request("loading the collection", lambda: self.client.load_collection(self.name))

    def _check_schema(self) -> Optional[str]:
        """Refuse a collection of another shape; say how an earlier version's differs (None: ours)."""
        description = self._request("reading the collection's schema", lambda: self.client.describe_collection(self.name))
        fields = {f["name"]: f for f in description["fields"]}
        found_dim = fields.get("vector", {}).get("params", {}).get("dim")
        missing = [n for n in ESSENTIAL_FIELDS if n not in fields]
        if missing or found_dim is None or int(found_dim) != self.dimension:
            raise CollectionMismatchError(
                f"collection {self.name!r} already exists with fields {sorted(fields)} and vector "
                f"dimension {found_dim}; expected fields {', '.join(ESSENTIAL_FIELDS)} and dimension "
                f"{self.dimension} (the resonators of {self.settings.env_id}: STATE_VECTOR_SIZE). It was left as it is. "
                "Use another instance name, or drop it yourself if it is no longer wanted.")
        if description.get("auto_id"):
            return "Milvus draws its ids"
        older = [name for name in FIELDS if name not in fields]
        return f"no fields {', '.join(older)}" if older else None

    def count_held(self) -> int:
        """How many engrams the collection holds, loaded or not (for the user to read: what a start
        keeps or drops): the live count where the collection is loaded, else Milvus's row statistics
        once its rows are sealed (they also count rows an upsert replaced): a collection another
        program released, a kept one, or one left by a run killed before it loaded it, cannot be
        queried, and waiting would not help."""
        state = self._request("reading the collection's load state", lambda: self.client.get_load_state(self.name))
        if getattr(state.get("state"), "name", "") == "Loaded":
            return self.count()
        self._request("sealing engrams", lambda: self.client.flush(self.name, timeout=self._timeout))  # stats count sealed rows
        return int(self._request("reading the collection's statistics",
                                 lambda: self.client.get_collection_stats(self.name))["row_count"])

    def _create(self) -> None:
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        for name, kind in FIELD_KINDS.items():
            shape = {"is_primary": True} if FIELDS[name]["primary"] else {}
            if kind == DataType.FLOAT_VECTOR:
                shape = {"dim": self.dimension}
            elif kind == DataType.ARRAY:
                shape = {"element_type": DataType.FLOAT, "max_capacity": self.dimension}
            schema.add_field(name, kind, **shape)
        index = self.client.prepare_index_params()
        index.add_index(field_name="vector", index_type=self.settings.index_type,
                        metric_type=self.settings.metric_type, params={"nlist": self.settings.index_nlist})
        self._request("creating the collection", lambda: self.client.create_collection(self.name, schema=schema))
        self._index_when_known(index)
        self._request("loading the collection", lambda: self.client.load_collection(self.name))
        self.exists, self.earlier_version = True, None

    def _index_when_known(self, index) -> None:
        """Index the new collection. Why the wait: a Milvus 2.3 that has just started, with two
        programs creating collections at once, answered "collection not found" to the index request
        that followed a collection's creation; a moment later it knows the collection."""
        deadline = time.monotonic() + self.settings.milvus_connect_timeout
        while True:
            try:
                self.client.create_index(self.name, index)
                return
            except MilvusException as error:
                if "collection not found" not in str(error.message) or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def drop(self) -> None:
        """Delete the collection and every engram in it."""
        self._wait_for_seal()
        self._request("dropping the collection", lambda: self.client.drop_collection(self.name))
        self.exists, self.earlier_version = False, None

    def set_aside_as(self, new_name: str) -> None:
        """Give the collection, with its engrams and index, another name (Milvus renames in place:
        nothing is copied), and release it: a kept memory costs the server no RAM until it is read
        (reading loads it). Why: a fresh start keeps the earlier run's memory instead of dropping it."""
        if not COLLECTION_NAME.match(new_name):
            raise EngramError(f"invalid collection name {new_name!r}: expected letters, digits and '_'")
        self._wait_for_seal()
        self._request("renaming the collection", lambda: self.client.rename_collection(self.name, new_name))
        self._request("releasing the kept collection", lambda: self.client.release_collection(new_name))
        self.exists, self.earlier_version = False, None

    def names_on_server(self) -> list:
        """Every collection on this Milvus (the instances, and the species' ledgers)."""
        return sorted(self._request("listing the collections", self.client.list_collections))

    # --- writing ---
    def write(self, engrams: EngramColumns, upsert: bool = False) -> None:
        """Store engrams (acknowledged by Milvus when this returns), each stamped with this writer
        and the time its request is sent. A retried request is an upsert of the same ids, so an
        insert that reached the server before the connection broke is replaced, never duplicated.

        :raises EngramsNotStoredError: Milvus stayed unreachable; the error carries the engrams.
        """
        def send(as_upsert: bool) -> Callable[[], None]:
            return lambda: milvus_columns.write(self.client, self.name, self._stamped(engrams), FIELD_KINDS,
                                                as_upsert, self._timeout)
        try:
            self._request(f"storing {len(engrams)} engrams", send(upsert), resend=send(True))
        except MilvusUnavailableError as error:
            raise EngramsNotStoredError(str(error), engrams) from None
        self._unsealed += len(engrams)

    def _stamped(self, engrams: EngramColumns) -> dict:
        columns = engrams.as_dict()
        columns["action"] = columns["action"].astype(np.int64)
        return {**columns, "stored_at": np.full(len(engrams), now_us(), np.int64),
                "writer": np.full(len(engrams), self.writer, np.int64)}

    def flush(self) -> None:
        """Seal what was written into durable segments and wait (also lets Milvus index them)."""
        self._wait_for_seal()
        self._request("sealing engrams", lambda: self.client.flush(self.name, timeout=self._timeout))
        self._unsealed = 0

    def _wait_for_seal(self) -> None:
        if self._sealing is not None:
            self._sealing.join()

    def seal_now_and_then(self) -> None:
        """Seal once ``SEAL_EVERY`` engrams were written since the last seal, without blocking the writer.

        Why: Milvus searches unsealed (growing) engrams by brute force, and seals by size only at
        about two million of these small rows; a batch of searches over 100k unsealed engrams took
        over thirty times as long as over 300k sealed, indexed ones. ``flush`` blocks for a second
        or more, so it runs in a thread; Milvus's compaction merges the small segments later.
        Only a memory that Milvus searches calls it: each seal makes a small segment to index and
        later merge, which took half of the server's CPU while a replica trained (its searches never
        reach Milvus, and ``flush`` seals its engrams when the training ends).
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

    # --- reading ---
    def count(self, condition: str = "", consistency: str = "Strong") -> int:
        """How many engrams match ``condition`` (all by default); "Strong", since "Session" misses deletes."""
        rows = self._request("counting engrams", lambda: self.client.query(
            self.name, filter=condition, output_fields=["count(*)"], consistency_level=consistency,
            timeout=self._timeout))
        return int(rows[0]["count(*)"])

    def pages(self, condition: str, consistency: str, progress: str = "") -> Iterator[EngramColumns]:
        """Every engram matching ``condition``, as columns, in pages of about ``PAGE`` engrams cut along
        the id range (ids are random), so that no answer grows with the memory.

        :param progress: a progress bar's label, shown for big memories.
        """
        count = self.count(condition, consistency)
        pages = max(1, -(-count // PAGE))
        edges = [i * (ID_RANGE // pages) for i in range(pages)] + [ID_RANGE]
        with tqdm(total=count, unit="engram", desc=progress, leave=False,
                  disable=not progress or count < LOAD_PROGRESS_FROM) as bar:
            for low, high in zip(edges[:-1], edges[1:]) if count else ():
                page = f"id > {low} and id <= {high}"
                found = self._query_columns(f"({condition}) and {page}" if condition else page, consistency)
                bar.update(len(found))
                yield found

    def _query_columns(self, condition: str, consistency: str) -> EngramColumns:
        columns = self._request("reading engrams", lambda: milvus_columns.query(
            self.client, self.name, condition, list(COLUMN_NAMES), consistency, self._timeout))
        if not len(columns["id"]):
            return EngramColumns.empty(self.dimension)
        for name in ("vector", "next_vector"):
            columns[name] = np.asarray(columns[name], np.float32).reshape(-1, self.dimension)
        return EngramColumns.of(**columns)

    def stored_by_others_since(self, since_us: int) -> str:
        """The condition of engrams other writers stamped after ``since_us``."""
        return f"stored_at > {since_us} and writer != {self.writer}"

    def search(self, queries: np.ndarray, limit: int, action: Optional[int], consistency: str) -> NeighbourTable:
        """One search request for every query (of one action's engrams, or all)."""
        condition = "" if action is None else f"action == {int(action)}"
        hits = self._request("searching", lambda: milvus_columns.search(
            self.client, self.name, queries, limit, self._search_params, "vector", NEIGHBOUR_FIELDS,
            consistency, self._timeout, condition))
        if not len(hits.distances):
            return NeighbourTable.empty(len(queries))
        return NeighbourTable.from_hits(hits.fields["action"], hits.fields["outcome"], hits.distances, hits.counts)

    def pending_index_rows(self) -> int:
        """Engrams sealed but not yet indexed (searched by brute force until they are)."""
        return int(self._request("describing the index", lambda: self.client.describe_index(self.name, "vector"))
                   ["pending_index_rows"])

    def rows_where(self, condition: str, fields: list, limit: int) -> list:
        """Rows as Milvus returns them (dicts): for a look at the collection, not for training."""
        return self._request("querying", lambda: self.client.query(
            self.name, filter=condition, output_fields=fields, limit=limit, consistency_level="Strong"))

    def delete(self, ids: list) -> None:
        """Delete engrams by id (training never does: a memory only grows)."""
        self._request("deleting engrams", lambda: self.client.delete(self.name, ids=ids))

    def _request(self, what: str, send: Callable[[], T], resend: Optional[Callable[[], T]] = None) -> T:
        return retried(self.settings, what, send, resend)


class MilvusMemory(Memory):
    """A memory whose every search is a Milvus request (``SEARCH_BACKEND = "milvus"``: the seed's path).

    :param collection: the opened collection.
    :param consistency: what each search waits for (see ``CONSISTENCY_LEVELS``).
    """

    def __init__(self, collection: EngramCollection, consistency: str = "Session") -> None:
        self.collection = collection
        self.dimension = collection.dimension
        self.consistency = consistency

    def nearest(self, queries: np.ndarray, limit: int, action: Optional[int] = None) -> NeighbourTable:
        return self.collection.search(queries, limit, action, self.consistency)

    def add(self, engrams: EngramColumns, replace: bool = False) -> int:
        if len(engrams):
            self.collection.write(engrams, upsert=replace)
            self.collection.seal_now_and_then()
        return len(engrams)

    def count(self) -> int:
        return self.collection.count()


class ReplicatedMemory(Memory):
    """A memory kept in Milvus (the store of record) and answered by an in-process FAISS copy
    (``SEARCH_BACKEND = "replica"``).

    The copy is loaded from the collection when opened (a progress bar for big memories; in the
    engrams' content order, so that a memory read twice is searched alike), extended
    only with what Milvus acknowledged, and every ``REPLICA_REFRESH`` seconds of searching it polls
    Milvus for engrams other writers (other processes or machines) stored meanwhile. Why a stamp and
    a writer field: Milvus cannot list "rows added since", so every engram carries the time its
    writer sent it; a poll asks for other writers' engrams stamped since the previous poll (less
    ``POLL_LOOKBACK_US`` for inserts in flight, a time tick of staleness and clock differences
    between machines), waits for nothing ("Eventually": what it misses, the next poll's lookback
    finds), and the copy keeps each id once. It does not seal what it writes every ``SEAL_EVERY``
    engrams: Milvus answers none of its searches, and ``flush`` seals them when training ends.

    :param collection: the opened collection.
    """

    def __init__(self, collection: EngramCollection) -> None:
        settings = collection.settings
        self.collection = collection
        self.dimension = collection.dimension
        self.replica = EngramReplica(self.dimension, settings.search_nprobe, settings.index_type == "FLAT",
                                     settings.spread_weights)
        self._refresh_s = settings.replica_refresh
        self._polled_until_us = now_us()  # engrams stored from now on are found by polling
        self._next_poll = time.monotonic() + self._refresh_s
        held = list(collection.pages("", "Strong", f"loading {collection.name} into the replica"))
        self.replica.add(EngramColumns.concatenate(held, self.dimension).in_content_order())

    def nearest(self, queries: np.ndarray, limit: int, action: Optional[int] = None) -> NeighbourTable:
        self._poll_other_writers()
        return self.replica.nearest(queries, limit, action)

    def add(self, engrams: EngramColumns, replace: bool = False) -> int:
        if len(engrams):
            self.collection.write(engrams, upsert=replace)
            self.replica.add(engrams)  # only now: the copy never serves what Milvus did not take
        return len(engrams)

    def count(self) -> int:
        return self.collection.count()

    def known(self) -> Optional[int]:
        return len(self.replica)

    def engrams(self) -> EngramColumns:
        return self.replica.rows()

    def set_outcomes(self, rows: np.ndarray, outcomes: np.ndarray) -> None:
        """In Milvus first (an upsert of the same ids: the count does not change), then in the copy,
        page by page as Milvus acknowledges them."""
        rows = np.asarray(rows, np.int64)
        outcomes = np.asarray(outcomes, np.float32)
        held = self.replica.rows()
        for start in range(0, len(rows), PAGE):
            chunk, new = rows[start:start + PAGE], outcomes[start:start + PAGE]
            revalued = held.select(chunk)
            revalued.outcome = new
            self.collection.write(revalued, upsert=True)
            self.replica.set_outcomes(chunk, new)

    def _poll_other_writers(self) -> None:
        """At most every ``REPLICA_REFRESH`` seconds, add what other writers stored since the last poll."""
        if time.monotonic() < self._next_poll:
            return
        started = now_us()
        condition = self.collection.stored_by_others_since(self._polled_until_us - POLL_LOOKBACK_US)
        for page in self.collection.pages(condition, "Eventually"):
            self.replica.add(page)
        self._polled_until_us = started
        self._next_poll = time.monotonic() + self._refresh_s


def open_memory(collection: EngramCollection, search_backend: str, consistency: str = "Session") -> Memory:
    """The memory of an opened collection, searched as ``search_backend`` says."""
    if search_backend == "replica":
        return ReplicatedMemory(collection)
    return MilvusMemory(collection, consistency)


_open_uses: dict = {}  # embedded data folder (None: a MILVUS_URI server) -> users of this process not yet closed


def use_server(settings: Settings) -> Callable[[], None]:
    """Count a user of the settings' server in this process; the function returned ends that use.
    When the last use of the embedded server ends, the process gives up its share of it (its keeper
    stops it once no program uses it, after ``MILVUS_IDLE_GRACE``): a notebook need not exit to let
    the server go."""
    folder = _server_folder(settings)
    _open_uses[folder] = _open_uses.get(folder, 0) + 1
    ended = []

    def end() -> None:
        if ended:
            return
        ended.append(True)
        _open_uses[folder] -= 1
        if folder is not None and _open_uses[folder] == 0:
            release_embedded_server(folder)
    return end


def release_unused_server(settings: Settings) -> None:
    """Give up this process's share of the embedded server if no store of it is open: a start that
    failed after connecting (a missing memory, a mismatched collection) keeps the server for nobody."""
    folder = _server_folder(settings)
    if folder is not None and not _open_uses.get(folder):
        release_embedded_server(folder)


def _server_folder(settings: Settings) -> Optional[str]:
    """The embedded server's data folder (None: a ``MILVUS_URI`` server)."""
    return None if settings.milvus_uri else str(Path(settings.milvus_data_dir).resolve())


def now_us() -> int:
    return time.time_ns() // 1000


def _is_permanent(error: Exception) -> bool:
    return isinstance(error, MilvusException) and error.code in PERMANENT_ERROR_CODES


def _error_text(error: Exception) -> str:
    if isinstance(error, grpc.RpcError):
        return f"{error.code().name}: {error.details()}"
    return f"{error.message} (code {error.code})"
