"""Searches, queries and inserts as columns: the one place that uses pymilvus internals, with a
public fallback.

Why: the public ``MilvusClient`` works in rows, one Python dict per engram. Reading a search's
hits as dicts took over a third of a batched search of 32 x 300 neighbours, packing a trial's
engrams into dicts over half of its insert, and loading a memory of 1,000,000 engrams through
dicts was the slowest part of opening it; building and reading the requests' columns directly
avoids all three. That needs pymilvus's request builder, protobuf
types and gRPC stub, which are not public API, so they are used only when the installed pymilvus
is a version they were checked against (``CHECKED_PYMILVUS``) and importable; otherwise — or with
``use_internals(False)`` — the public ``MilvusClient.search`` / ``insert`` / ``upsert`` serve,
slower but with the same results. Both paths are tested.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

import numpy as np
import pymilvus
from pymilvus import DataType, MilvusClient

CHECKED_PYMILVUS = ("3.0.",)   # pymilvus versions whose internals this module was written against


@dataclass(frozen=True)
class SearchColumns:
    """All queries' hits concatenated: ``fields`` (name -> array), ``distances``, and ``counts``
    (hits per query, in query order)."""

    fields: Dict[str, np.ndarray]
    distances: np.ndarray
    counts: np.ndarray


def _load_internals():
    """pymilvus's request builder, stub metadata, consistency and status helpers, if usable here."""
    if not pymilvus.__version__.startswith(CHECKED_PYMILVUS):
        return None
    try:
        from pymilvus.client import ts_utils
        from pymilvus.client.grpc_handler import _api_level_md
        from pymilvus.client.prepare import Prepare
        from pymilvus.client.utils import check_status
        from pymilvus.grpc_gen import milvus_pb2, schema_pb2
    except ImportError:
        return None
    return ts_utils, _api_level_md, Prepare, check_status, milvus_pb2, schema_pb2


_internals = _load_internals()
_use_internals = _internals is not None


def use_internals(enabled: bool) -> bool:
    """Turn the fast path on or off (it stays off where it is not usable); returns whether it is on."""
    global _use_internals
    _use_internals = enabled and _internals is not None
    return _use_internals


def search(client: MilvusClient, collection: str, queries: np.ndarray, limit: int, search_params: dict,
           vector_field: str, output_fields: List[str], consistency: str, timeout: float,
           filter: str = "") -> SearchColumns:
    """One search request for every query; the hits' ``output_fields`` as columns."""
    if _use_internals:
        return _search_with_internals(client, collection, queries, limit, search_params, vector_field,
                                      output_fields, consistency, timeout, filter)
    hits = client.search(collection, data=queries.tolist(), limit=limit, search_params=search_params,
                         anns_field=vector_field, output_fields=output_fields, consistency_level=consistency,
                         timeout=timeout, filter=filter)
    flat = [hit for query_hits in hits for hit in query_hits]
    return SearchColumns({name: np.asarray([hit["entity"][name] for hit in flat]) for name in output_fields},
                         np.asarray([hit["distance"] for hit in flat], dtype=np.float64),
                         np.asarray([len(query_hits) for query_hits in hits], dtype=np.int64))


def _search_with_internals(client: MilvusClient, collection: str, queries: np.ndarray, limit: int,
                           search_params: dict, vector_field: str, output_fields: List[str], consistency: str,
                           timeout: float, filter: str) -> SearchColumns:
    """The same request ``MilvusClient.search`` sends (consistency included: with "Session" it
    waits for this client's own inserts), its response read column by column."""
    _, api_level_md, prepare, check_status, _, _ = _internals
    handler, context, options, default_consistency = _read_request(client, collection, consistency)
    request = prepare.search_requests_with_expr(
        collection_name=collection, anns_field=vector_field, param=search_params, limit=limit,
        data=queries.tolist(), output_fields=output_fields, expr=filter or None,
        use_default_consistency=default_consistency, **options)
    response = handler._stub.Search(request, metadata=api_level_md(context), timeout=timeout)
    check_status(response.status)
    results = response.results
    counts = np.asarray(results.topks, dtype=np.int64)
    if not results.fields_data:  # an empty collection answers with no columns at all
        return SearchColumns({name: np.zeros(0) for name in output_fields}, np.zeros(0), np.zeros(len(queries), np.int64))
    return SearchColumns({field.field_name: _scalar_column(field) for field in results.fields_data},
                         np.asarray(results.scores, dtype=np.float64), counts)


def query(client: MilvusClient, collection: str, condition: str, output_fields: List[str], consistency: str,
          timeout: float) -> Dict[str, np.ndarray]:
    """Every entity matching ``condition``: its ``output_fields`` as columns (vectors and arrays as
    2-D arrays), in one request."""
    if _use_internals:
        return _query_with_internals(client, collection, condition, output_fields, consistency, timeout)
    rows = client.query(collection, filter=condition, output_fields=output_fields, consistency_level=consistency,
                        timeout=timeout)
    return {name: np.asarray([row[name] for row in rows]) for name in output_fields}


def _query_with_internals(client: MilvusClient, collection: str, condition: str, output_fields: List[str],
                          consistency: str, timeout: float) -> Dict[str, np.ndarray]:
    """The request ``MilvusClient.query`` sends, its response read column by column."""
    _, api_level_md, prepare, check_status, _, _ = _internals
    handler, context, options, default_consistency = _read_request(client, collection, consistency)
    request = prepare.query_request(collection, condition, output_fields, [],
                                    use_default_consistency=default_consistency, **options)
    response = handler._stub.Query(request, timeout=timeout, metadata=api_level_md(context))
    check_status(response.status)
    columns = {field.field_name: _column(field) for field in response.fields_data}
    return {name: columns.get(name, np.zeros(0)) for name in output_fields}


def _column(field) -> np.ndarray:
    """One returned field as an array: scalars flat, vectors and arrays one row per entity."""
    if field.HasField("vectors"):
        return np.asarray(field.vectors.float_vector.data, np.float32).reshape(-1, field.vectors.dim)
    if field.scalars.WhichOneof("data") == "array_data":
        return np.asarray([row.float_data.data for row in field.scalars.array_data.data], np.float32)
    return _scalar_column(field)


def _read_request(client: MilvusClient, collection: str, consistency: str) -> tuple:
    """What a search or query request is built with, as ``MilvusClient`` builds it: the connection,
    the call context, the consistency options, and the guarantee timestamp they ask for."""
    ts_utils = _internals[0]
    handler = client._get_connection()
    context = client._generate_call_context()
    options = {"consistency_level": consistency}
    default_consistency = ts_utils.construct_guarantee_ts(collection, options, handler.server_address,
                                                          context.get_db_name())
    return handler, context, options, default_consistency


def _scalar_column(field) -> np.ndarray:
    scalars = field.scalars
    kind = scalars.WhichOneof("data")
    return np.asarray(getattr(scalars, kind).data) if kind else np.zeros(0)  # no hits: an empty column


def write(client: MilvusClient, collection: str, columns: Dict[str, np.ndarray], kinds: Dict[str, DataType],
          upsert: bool, timeout: float) -> None:
    """Insert (or upsert) rows given as columns (name -> array, one row each; vectors and arrays as
    2-D arrays) of the field types ``kinds``; acknowledged by Milvus when this returns."""
    if _use_internals:
        _write_with_internals(client, collection, columns, kinds, upsert, timeout)
        return
    names = list(columns)
    rows = [dict(zip(names, values)) for values in zip(*(columns[name].tolist() for name in names))]
    (client.upsert if upsert else client.insert)(collection, rows, timeout=timeout)


def _write_with_internals(client: MilvusClient, collection: str, columns: Dict[str, np.ndarray],
                          kinds: Dict[str, DataType], upsert: bool, timeout: float) -> None:
    """The request ``MilvusClient.insert`` sends, built from the columns; it records the write's
    timestamp as pymilvus does, so that "Session" searches wait for it."""
    ts_utils, api_level_md, _, check_status, milvus_pb2, schema_pb2 = _internals
    handler = client._get_connection()
    context = client._generate_call_context()
    fields = [_field_data(schema_pb2, name, kinds[name], values) for name, values in columns.items()]
    request_type = milvus_pb2.UpsertRequest if upsert else milvus_pb2.InsertRequest
    request = request_type(collection_name=collection, db_name=context.get_db_name() or "", fields_data=fields,
                           num_rows=len(next(iter(columns.values()))))
    send = handler._stub.Upsert if upsert else handler._stub.Insert
    response = send(request, timeout=timeout, metadata=api_level_md(context))
    check_status(response.status)
    ts_utils.update_collection_ts(collection, response.timestamp, handler.server_address, context.get_db_name())


def _field_data(schema_pb2, name: str, kind: DataType, values: np.ndarray):
    """One column as Milvus's ``FieldData``."""
    field = schema_pb2.FieldData(field_name=name, type=kind)
    if kind == DataType.FLOAT_VECTOR:
        field.vectors.dim = values.shape[1]
        field.vectors.float_vector.data.extend(values.ravel().tolist())
    elif kind == DataType.ARRAY:
        field.scalars.array_data.element_type = DataType.FLOAT
        field.scalars.array_data.data.extend(schema_pb2.ScalarField(float_data=schema_pb2.FloatArray(data=row))
                                             for row in values.tolist())
    else:
        getattr(field.scalars, SCALAR_KINDS[kind]).data.extend(values.tolist())
    return field


SCALAR_KINDS = {DataType.INT64: "long_data", DataType.INT16: "int_data", DataType.FLOAT: "float_data",
                DataType.BOOL: "bool_data"}  # the protobuf column of each scalar type the engrams use
