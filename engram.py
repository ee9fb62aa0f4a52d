"""Engrams and the ``EngramStore``: the memory of nature, kept in a real Milvus.

An engram is one remembered step: the resonator vector of the situation, the action taken and
its outcome. The store keeps one Milvus collection per instance name and answers "which engrams
resonate most with this vector?" by an IVF_FLAT / L2 nearest-neighbour search.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException

from config import Settings
from milvus_server import embedded_server_uri

# The collection's fields: named once here, used by the schema, inserts and searches.
FIELD_ID = "id"
FIELD_VECTOR = "vector"
FIELD_ACTION = "action"
FIELD_OUTCOME = "outcome"
FIELD_TRIAL = "trial"
NEIGHBOUR_FIELDS = [FIELD_ACTION, FIELD_OUTCOME]  # all a decision needs: vectors are not fetched

# Searches see every insert this client made before them ("Session"): a finished trial's
# engrams are visible to the very next decision without paying for "Strong" (~400 ms a search here).
CONSISTENCY = "Session"
COLLECTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")  # Milvus's rule for collection names
MILVUS_LITE_SUFFIX = ".db"


class EngramError(ValueError):
    """An engram, a query vector or a collection name is not what the store expects."""


class CollectionMismatchError(RuntimeError):
    """An existing collection does not have the schema the settings ask for; it is left untouched."""


class MilvusUnavailableError(ConnectionError):
    """The Milvus server at the configured URI could not be reached."""


@dataclass(frozen=True)
class Engram:
    """One remembered step.

    :param vector: the resonator of the situation (normalised, weighted state + trial success).
    :param action: the action taken, an index into the action space.
    :param outcome: how well it went, in [-1, 1] (the step's reward, weighted by the trial's success).
    :param trial: the number of the trial that left it.
    """

    vector: tuple
    action: int
    outcome: float
    trial: int = 0


@dataclass(frozen=True)
class Neighbours:
    """The engrams nearest to one query, as arrays (nearest first): the decision's hot path."""

    actions: np.ndarray
    outcomes: np.ndarray
    distances: np.ndarray

    def __len__(self) -> int:
        return len(self.actions)


def connect(settings: Settings) -> MilvusClient:
    """A client for the configured Milvus: ``MILVUS_URI`` if set, else the embedded server."""
    uri = settings.milvus_uri or embedded_server_uri(settings.milvus_data_dir)
    if uri.endswith(MILVUS_LITE_SUFFIX):
        warnings.warn(f"MILVUS_URI={uri} is Milvus Lite: it works, but its search took ~0.5 s per "
                      "query at 60k engrams here, far too slow for training. Leave MILVUS_URI empty "
                      "for the embedded server.", stacklevel=2)
    try:
        return MilvusClient(uri=uri, token=settings.milvus_token, timeout=settings.milvus_connect_timeout)
    except MilvusException as error:
        raise MilvusUnavailableError(
            f"could not reach Milvus at MILVUS_URI={uri!r} (waited up to {settings.milvus_connect_timeout:g} s: "
            f"{error.message}). Start that server (e.g. `docker compose up -d` in this project), "
            "fix the URI, or unset MILVUS_URI to use the embedded server.") from None


class EngramStore:
    """The engrams of one instance, in one Milvus collection.

    Schema: auto-id INT64 ``id``, FLOAT_VECTOR ``vector`` (``STATE_VECTOR_SIZE``), INT16 ``action``,
    FLOAT ``outcome``, INT64 ``trial``; an IVF_FLAT / L2 index (``INDEX_NLIST`` lists), searched
    with ``SEARCH_NPROBE``.

    Every engram and query is checked before anything is sent: a bad one raises ``EngramError``
    and nothing of the batch is stored. An existing collection with another schema raises
    ``CollectionMismatchError`` and is never dropped, even with ``reset``.

    :param name: the collection's name (letters, digits and ``_``, not starting with a digit).
    :param reset: drop the collection's engrams first (a fresh memory); else keep and extend them.
    :param settings: the run's settings; ``settings.py`` by default.
    :param client: an open client to share; by default one is made from the settings.
    """

    def __init__(self, name: str, reset: bool = False, settings: Optional[Settings] = None,
                 client: Optional[MilvusClient] = None) -> None:
        if not isinstance(name, str) or not COLLECTION_NAME.match(name):
            raise EngramError(f"invalid collection name {name!r}: expected letters, digits and '_' "
                              "(at most 255, not starting with a digit), e.g. 'lander3'")
        self.name = name
        self.settings = settings or Settings.from_module()
        self.dimension = self.settings.state_vector_size
        self.action_count = self.settings.output_vector_size
        self.client = client or connect(self.settings)
        self._search_params = {"metric_type": self.settings.metric_type,
                               "params": {"nprobe": self.settings.search_nprobe}}
        self._open(reset)

    # --- the collection ---
    def _open(self, reset: bool) -> None:
        if self.client.has_collection(self.name):
            self._check_schema()
            if not reset:
                self.client.load_collection(self.name)
                return
            self.client.drop_collection(self.name)
        self._create()

    def _create(self) -> None:
        schema = self.client.create_schema(auto_id=True, enable_dynamic_field=False)
        schema.add_field(FIELD_ID, DataType.INT64, is_primary=True)
        schema.add_field(FIELD_VECTOR, DataType.FLOAT_VECTOR, dim=self.dimension)
        schema.add_field(FIELD_ACTION, DataType.INT16)
        schema.add_field(FIELD_OUTCOME, DataType.FLOAT)
        schema.add_field(FIELD_TRIAL, DataType.INT64)
        index = self.client.prepare_index_params()
        index.add_index(field_name=FIELD_VECTOR, index_type=self.settings.index_type,
                        metric_type=self.settings.metric_type, params={"nlist": self.settings.index_nlist})
        self.client.create_collection(self.name, schema=schema, index_params=index,
                                      consistency_level=CONSISTENCY)

    def _check_schema(self) -> None:
        fields = {f["name"]: f for f in self.client.describe_collection(self.name)["fields"]}
        found_dim = fields.get(FIELD_VECTOR, {}).get("params", {}).get("dim")
        missing = [n for n in (FIELD_VECTOR, FIELD_ACTION, FIELD_OUTCOME, FIELD_TRIAL) if n not in fields]
        if missing or found_dim is None or int(found_dim) != self.dimension:
            raise CollectionMismatchError(
                f"collection {self.name!r} already exists with fields {sorted(fields)} and vector "
                f"dimension {found_dim}; expected fields {FIELD_VECTOR}, {FIELD_ACTION}, {FIELD_OUTCOME}, "
                f"{FIELD_TRIAL} and dimension {self.dimension} (STATE_VECTOR_SIZE). It was left as it is. "
                "Use another instance name, or drop it yourself if it is no longer wanted.")

    def drop(self) -> None:
        """Delete the collection and every engram in it."""
        self.client.drop_collection(self.name)

    def clear(self) -> None:
        """Forget every engram, keeping an empty collection with the same schema."""
        self.drop()
        self._create()

    def flush(self) -> None:
        """Seal what was inserted into durable segments (also lets Milvus build their index)."""
        self.client.flush(self.name)

    def get_count(self) -> int:
        """How many engrams the collection holds now: "Strong", since "Session" misses deletes."""
        rows = self.client.query(self.name, filter="", output_fields=["count(*)"], consistency_level="Strong")
        return int(rows[0]["count(*)"])

    # --- writing ---
    def insert(self, engram: Engram) -> int:
        """Store one engram."""
        return self.insert_many([engram])

    def insert_many(self, engrams: Iterable[Engram]) -> int:
        """Store many engrams in one request; all are checked first, so a bad one stores none.

        :return: how many engrams were stored.
        """
        rows = [self._row(position, engram) for position, engram in enumerate(engrams)]
        if rows:
            self.client.insert(self.name, rows)
        return len(rows)

    def _row(self, position: int, engram: Engram) -> dict:
        if not isinstance(engram, Engram):
            raise EngramError(f"item {position} is a {type(engram).__name__}, expected an Engram")
        vector = self._checked_vectors([engram.vector], what=f"engram {position}'s vector")[0]
        action = engram.action
        if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)) \
                or not 0 <= action < self.action_count:
            raise EngramError(f"engram {position}: action {action!r} is outside the action space; "
                              f"expected a whole number from 0 to {self.action_count - 1}")
        if not _is_finite_number(engram.outcome):
            raise EngramError(f"engram {position}: outcome {engram.outcome!r}: expected a finite number")
        return {FIELD_VECTOR: vector.tolist(), FIELD_ACTION: int(action),
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
        results = self.client.search(self.name, data=queries.tolist(), limit=int(limit),
                                     output_fields=NEIGHBOUR_FIELDS, search_params=self._search_params,
                                     consistency_level=CONSISTENCY)
        return [_neighbours(hits) for hits in results]

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


def _neighbours(hits) -> Neighbours:
    entities = [hit["entity"] for hit in hits]
    return Neighbours(actions=np.fromiter((e[FIELD_ACTION] for e in entities), np.int64, len(entities)),
                      outcomes=np.fromiter((e[FIELD_OUTCOME] for e in entities), np.float64, len(entities)),
                      distances=np.asarray(hits.distances, dtype=np.float64))


def _is_finite_number(value) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and bool(np.isfinite(value))
