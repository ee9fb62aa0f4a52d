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
from typing import Callable, Iterable, List, Optional, Sequence, TypeVar

import grpc
import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException
from pymilvus.client import ts_utils
from pymilvus.client.grpc_handler import _api_level_md
from pymilvus.client.prepare import Prepare
from pymilvus.client.utils import check_status

from config import COLLECTION_NAME, Settings
from milvus_server import embedded_server_token, embedded_server_uri

# The collection's fields: named once here, used by the schema, inserts and searches.
FIELD_ID = "id"
FIELD_VECTOR = "vector"
FIELD_ACTION = "action"
FIELD_OUTCOME = "outcome"
FIELD_TRIAL = "trial"
NEIGHBOUR_FIELDS = [FIELD_ACTION, FIELD_OUTCOME]  # all a decision needs: vectors are not fetched

# What a search waits for. "Session" (the default) sees every insert this client made before it:
# a finished trial's engrams are visible to the very next decision, without paying for "Strong"
# (~400 ms a search here). "Eventually" waits for nothing: inserts show up a server time tick later.
CONSISTENCY_LEVELS = ("Session", "Eventually", "Bounded", "Strong")
MILVUS_LITE_SUFFIX = ".db"
FIRST_RETRY_DELAY_S = 0.5      # a request that failed for want of a server is retried after this,
LONGEST_RETRY_DELAY_S = 8.0    # doubling up to this, until MILVUS_RETRY_TIMEOUT has passed
PERMANENT_ERROR_CODES = {100, 1100}  # Milvus: collection not found, invalid parameter (no retry helps)
ID_RANGE = 2 ** 63 - 1         # engram ids are random positive int64s: unique across processes
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
    """

    vector: tuple
    action: int
    outcome: float
    trial: int = 0
    id: Optional[int] = None


@dataclass(frozen=True)
class Neighbours:
    """The engrams nearest to one query, as arrays (nearest first): the decision's hot path."""

    actions: np.ndarray
    outcomes: np.ndarray
    distances: np.ndarray

    def __len__(self) -> int:
        return len(self.actions)


NO_NEIGHBOURS = Neighbours(np.zeros(0, np.int64), np.zeros(0), np.zeros(0))


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
        raise MilvusUnavailableError(
            f"could not reach Milvus at MILVUS_URI={uri!r} (waited up to {settings.milvus_connect_timeout:g} s: "
            f"{error.message}). Start that server (e.g. `docker compose up -d` in this project), "
            "fix the URI, or unset MILVUS_URI to use the embedded server.") from None


class EngramStore:
    """The engrams of one instance, in one Milvus collection.

    **Faults.** A request that fails because Milvus is unreachable or recovering (restarted, not
    yet loaded) is retried with a backoff from 0.5 s doubling to 8 s, for ``MILVUS_RETRY_TIMEOUT``
    seconds in all; then ``MilvusUnavailableError`` says so. Each engram is sent with a random id,
    and a retried insert is an upsert of the same ids: an insert that reached the server before the
    connection broke is replaced, never duplicated. Engrams that could not be stored at all come
    back in ``EngramsNotStoredError.engrams``.

    Schema: INT64 ``id`` (random, given by the store), FLOAT_VECTOR ``vector``
    (``STATE_VECTOR_SIZE``), INT16 ``action``, FLOAT ``outcome``, INT64 ``trial``; an IVF_FLAT / L2 index (``INDEX_NLIST`` lists), searched
    with ``SEARCH_NPROBE``.

    Every engram and query is checked before anything is sent: a bad one raises ``EngramError``
    and nothing of the batch is stored. An existing collection with another schema raises
    ``CollectionMismatchError`` and is never dropped, even with ``reset``.

    :param name: the collection's name (letters, digits and ``_``, not starting with a digit).
    :param reset: drop the collection's engrams first (a fresh memory); else keep and extend them.
    :param settings: the run's settings; ``settings.py`` by default.
    :param client: an open client to share; by default one is made from the settings.
    :param consistency: what each search waits for (see ``CONSISTENCY_LEVELS``).
    """

    def __init__(self, name: str, reset: bool = False, settings: Optional[Settings] = None,
                 client: Optional[MilvusClient] = None, consistency: str = "Session") -> None:
        if not isinstance(name, str) or not COLLECTION_NAME.match(name):
            raise EngramError(f"invalid collection name {name!r}: expected letters, digits and '_' "
                              "(at most 255, not starting with a digit), e.g. 'lander3'")
        if consistency not in CONSISTENCY_LEVELS:
            raise EngramError(f"consistency {consistency!r}: expected one of {', '.join(CONSISTENCY_LEVELS)}")
        self.name = name
        self.consistency = consistency
        self.settings = settings or Settings.from_module()
        self.dimension = self.settings.state_vector_size
        self.action_count = self.settings.output_vector_size
        self.client = client or connect(self.settings)
        self._search_params = {"metric_type": self.settings.metric_type,
                               "params": {"nprobe": self.settings.search_nprobe}}
        self.uri = self.settings.milvus_uri or f"the embedded server on {self.settings.milvus_data_dir}"
        self._timeout = self.settings.milvus_retry_timeout  # no single request may hang longer than this
        self._id_source = np.random.default_rng()  # fresh entropy, never the run's seed: ids must not repeat
        self._unsealed = 0
        self._sealing: Optional[threading.Thread] = None
        self._open(reset)

    # --- the collection ---
    def _open(self, reset: bool) -> None:
        if self.client.has_collection(self.name):
            self._check_schema(keep=not reset)
            if not reset:
                self.client.load_collection(self.name)
                return
            self.client.drop_collection(self.name)
        self._create()

    def _create(self) -> None:
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(FIELD_ID, DataType.INT64, is_primary=True)
        schema.add_field(FIELD_VECTOR, DataType.FLOAT_VECTOR, dim=self.dimension)
        schema.add_field(FIELD_ACTION, DataType.INT16)
        schema.add_field(FIELD_OUTCOME, DataType.FLOAT)
        schema.add_field(FIELD_TRIAL, DataType.INT64)
        index = self.client.prepare_index_params()
        index.add_index(field_name=FIELD_VECTOR, index_type=self.settings.index_type,
                        metric_type=self.settings.metric_type, params={"nlist": self.settings.index_nlist})
        self.client.create_collection(self.name, schema=schema, index_params=index)

    def _check_schema(self, keep: bool) -> None:
        description = self.client.describe_collection(self.name)
        fields = {f["name"]: f for f in description["fields"]}
        found_dim = fields.get(FIELD_VECTOR, {}).get("params", {}).get("dim")
        missing = [n for n in (FIELD_VECTOR, FIELD_ACTION, FIELD_OUTCOME, FIELD_TRIAL) if n not in fields]
        if missing or found_dim is None or int(found_dim) != self.dimension:
            raise CollectionMismatchError(
                f"collection {self.name!r} already exists with fields {sorted(fields)} and vector "
                f"dimension {found_dim}; expected fields {FIELD_VECTOR}, {FIELD_ACTION}, {FIELD_OUTCOME}, "
                f"{FIELD_TRIAL} and dimension {self.dimension} (STATE_VECTOR_SIZE). It was left as it is. "
                "Use another instance name, or drop it yourself if it is no longer wanted.")
        if keep and description.get("auto_id"):
            raise CollectionMismatchError(
                f"collection {self.name!r} was made by an earlier version of Resonant Vectors (Milvus draws "
                "its ids), so a retried insert could duplicate engrams; it was left as it is. Train without "
                "--keep (DROP_COLLECTION = True) to start it afresh, or use another instance name.")

    def drop(self) -> None:
        """Delete the collection and every engram in it."""
        self._wait_for_seal()
        self.client.drop_collection(self.name)

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
        rows = self._request("counting engrams", lambda: self.client.query(
            self.name, filter="", output_fields=["count(*)"], consistency_level="Strong", timeout=self._timeout))
        return int(rows[0]["count(*)"])

    # --- faults ---
    def _request(self, what: str, send: Callable[[], T], resend: Optional[Callable[[], T]] = None) -> T:
        """Send a request, and send it again (``resend`` if given) while Milvus is unreachable or
        recovering, with a growing delay, for at most ``MILVUS_RETRY_TIMEOUT`` seconds."""
        deadline = time.monotonic() + self.settings.milvus_retry_timeout
        delay = FIRST_RETRY_DELAY_S
        while True:
            try:
                return send()
            except (MilvusException, grpc.RpcError) as error:
                if _is_permanent(error):
                    raise
                if time.monotonic() + delay > deadline:
                    raise MilvusUnavailableError(
                        f"{what}: Milvus at {self.uri} did not answer for {self.settings.milvus_retry_timeout:g} s "
                        f"(MILVUS_RETRY_TIMEOUT); last error: {_error_text(error)}. Check that the server is up "
                        "(the embedded one restarts by itself; see its logs in MILVUS_DATA_DIR/logs).") from None
                if delay == FIRST_RETRY_DELAY_S:
                    print(f"Milvus did not answer ({_error_text(error)}); retrying {what} for up to "
                          f"{self.settings.milvus_retry_timeout:g} s", file=sys.stderr, flush=True)
                time.sleep(delay)
                delay = min(2 * delay, LONGEST_RETRY_DELAY_S)
                send = resend or send

    # --- writing ---
    def insert(self, engram: Engram) -> int:
        """Store one engram."""
        return self.insert_many([engram])

    def insert_many(self, engrams: Iterable[Engram]) -> int:
        """Store many engrams in one request; all are checked first, so a bad one stores none.

        :return: how many engrams were stored.
        :raises EngramsNotStoredError: Milvus stayed unreachable; the error carries the engrams.
        """
        return self._write(engrams, self.client.insert)

    def upsert_many(self, engrams: Iterable[Engram]) -> int:
        """Store engrams that may already be stored (they carry ids): each id ends up stored once.

        Why: engrams kept after a failed insert (``EngramsNotStoredError``) may have reached the
        server before the connection broke; upserting them cannot duplicate them.
        """
        return self._write(engrams, self.client.upsert)

    def _write(self, engrams: Iterable[Engram], method: Callable) -> int:
        engrams = self._with_ids(list(engrams))
        rows = [self._row(position, engram) for position, engram in enumerate(engrams)]
        if not rows:
            return 0
        try:
            self._request(f"storing {len(rows)} engrams", lambda: method(self.name, rows, timeout=self._timeout),
                          resend=lambda: self.client.upsert(self.name, rows, timeout=self._timeout))
        except MilvusUnavailableError as error:
            raise EngramsNotStoredError(str(error), engrams) from None
        self._unsealed += len(rows)
        self._seal_in_background()
        return len(rows)

    def _with_ids(self, engrams: List[Engram]) -> List[Engram]:
        missing = [i for i, engram in enumerate(engrams) if isinstance(engram, Engram) and engram.id is None]
        ids = self._id_source.integers(1, ID_RANGE, size=len(missing))
        for position, engram_id in zip(missing, ids):
            engrams[position] = replace(engrams[position], id=int(engram_id))
        return engrams

    def _row(self, position: int, engram: Engram) -> dict:
        if not isinstance(engram, Engram):
            raise EngramError(f"item {position} is a {type(engram).__name__}, expected an Engram")
        vector = self._checked_vectors([engram.vector], what=f"engram {position}'s vector")[0]
        action = engram.action
        if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)) \
                or not 0 <= action < self.action_count:
            raise EngramError(f"engram {position}: action {action!r} is outside the action space; "
                              f"expected a whole number from 0 to {self.action_count - 1}")
        if isinstance(engram.id, bool) or not isinstance(engram.id, (int, np.integer)) or not 0 < engram.id <= ID_RANGE:
            raise EngramError(f"engram {position}: id {engram.id!r}: expected a whole number from 1 to 2**63 - 1")
        if not _is_finite_number(engram.outcome):
            raise EngramError(f"engram {position}: outcome {engram.outcome!r}: expected a finite number")
        return {FIELD_ID: int(engram.id), FIELD_VECTOR: vector.tolist(), FIELD_ACTION: int(action),
                FIELD_OUTCOME: float(engram.outcome), FIELD_TRIAL: int(engram.trial)}

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

    def nearest_many(self, vectors: Sequence[Sequence[float]], limit: int) -> list:
        """One search request for many query vectors: a ``Neighbours`` per vector, in order."""
        if not isinstance(limit, (int, np.integer)) or not 1 <= limit <= 16384:
            raise EngramError(f"limit {limit!r}: expected a whole number from 1 to 16384")
        queries = self._checked_vectors(vectors, what="query vector")
        results = self._request("searching", lambda: self._search(queries, int(limit)))
        if not results.fields_data:  # an empty collection answers with no columns at all
            return [NO_NEIGHBOURS] * len(queries)
        return _split_neighbours(results)

    def _search(self, queries: np.ndarray, limit: int):
        """The search's raw result (protobuf), read as arrays by ``_split_neighbours``.

        Why not ``MilvusClient.search``: it builds a dict per hit, which measured 18 ms of the
        48 ms a batched search of 32 x 300 neighbours took; the columns it parses are read here
        in one pass. This uses pymilvus 3.0's request builder and stub (pinned in requirements.txt)
        and keeps the consistency guarantee: with "Session" it waits for this client's own inserts.
        """
        handler = self.client._get_connection()
        context = self.client._generate_call_context()
        options = {"consistency_level": self.consistency}
        default_consistency = ts_utils.construct_guarantee_ts(self.name, options, handler.server_address,
                                                              context.get_db_name())
        request = Prepare.search_requests_with_expr(
            collection_name=self.name, anns_field=FIELD_VECTOR, param=self._search_params, limit=limit,
            data=queries.tolist(), output_fields=NEIGHBOUR_FIELDS,
            use_default_consistency=default_consistency, **options)
        response = handler._stub.Search(request, metadata=_api_level_md(context), timeout=self._timeout)
        check_status(response.status)
        return response.results

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


def _is_permanent(error: Exception) -> bool:
    return isinstance(error, MilvusException) and error.code in PERMANENT_ERROR_CODES


def _error_text(error: Exception) -> str:
    if isinstance(error, grpc.RpcError):
        return f"{error.code().name}: {error.details()}"
    return f"{error.message} (code {error.code})"


def _split_neighbours(results) -> list:
    """One ``Neighbours`` per query from a search's columns (all queries' hits, concatenated)."""
    columns = {field.field_name: field.scalars for field in results.fields_data}
    actions = np.asarray(columns[FIELD_ACTION].int_data.data, dtype=np.int64)
    outcomes = np.asarray(columns[FIELD_OUTCOME].float_data.data, dtype=np.float64)
    distances = np.asarray(results.scores, dtype=np.float64)
    ends = np.cumsum(results.topks)
    return [Neighbours(actions[start:end], outcomes[start:end], distances[start:end])
            for start, end in zip(np.concatenate([[0], ends[:-1]]), ends)]


def _is_finite_number(value) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and bool(np.isfinite(value))
