"""The species ledger: where the workers of one species meet, in Milvus beside the engrams.

Why its own module: a species' coordination (which trial numbers each worker takes, which workers
are alive) is not the engrams' collection; the trainer, the species' command and a plain start's
refusal all read it, and only through this module.
"""
from __future__ import annotations

import math
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Tuple, TypeVar

import grpc
import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException

from resonant_vectors.config import Settings
from resonant_vectors.memory.claims import CollectionInUseError
from resonant_vectors.memory.milvus.collection import MilvusUnavailableError, connect, now_us, retried
from resonant_vectors.memory.seam import ID_RANGE
from resonant_vectors.processes import process_alive, process_start_time

SPECIES_SUFFIX = "_species"   # an instance's species ledger is the collection <instance>_species
TRIAL_BLOCK = 32               # trial numbers a worker takes at a time (so a species' numbers follow its progress)
CLAIM_SETTLE_S = 0.5           # a claim is read back this long after it was written (see SpeciesLedger)
HEARTBEAT_S = 10.0             # a worker says it is alive this often...
ALIVE_S = 45.0                 # ...and counts as alive this long after it last did
WORKER_ID_FROM = 2 ** 40       # worker rows' ids are at least this; block rows' are block numbers below it
ONE_PROCESS = "one process"    # the label of a training that is no species (it is not joined)
T = TypeVar("T")


class SpeciesLedger:
    """Where the workers of one species meet, in Milvus beside the engrams (``<instance>_species``):
    which trial numbers each has taken, and which workers are alive.

    Why in Milvus: the species may span machines with nothing shared but the memory's server, and
    no coordinator of its own (like Optuna's workers on one storage). Two kinds of rows:

    - a **block** of ``TRIAL_BLOCK`` trial numbers (block ``b``: trials ``b × TRIAL_BLOCK`` …) is
      taken by writing its row and reading it back ``CLAIM_SETTLE_S`` later: of two workers that
      wrote the same block, the later write wins and the other takes the next block. Two workers
      could both hold a block only if one stalled for longer than that between reading the ledger
      and writing its claim;
    - a **worker** row (its random id, at ``WORKER_ID_FROM`` or more, apart from block numbers) is
      written again every ``HEARTBEAT_S``; a worker seen within ``ALIVE_S`` is alive, and an
      instance with a live worker is in training: a plain start of it is refused. A training of one
      process writes such a row too (``ONE_PROCESS``), so that a start on another machine is refused
      as well.

    :param settings: the species' settings (its instance names the ledger).
    :param client: an open client to share.
    """

    def __init__(self, settings: Settings, client: Optional[MilvusClient] = None) -> None:
        self.settings = settings
        self.name = species_ledger_name(settings.instance_name)
        self.client = client or connect(settings)
        self._seen = -1  # the highest block number read from the ledger so far (blocks only grow)

    def exists(self) -> bool:
        return self._request("looking for the species", lambda: self.client.has_collection(self.name))

    def start_afresh(self) -> None:
        """Drop the ledger (a fresh start of the instance numbers its trials from 0 again) and create it."""
        self.drop()
        self.create()

    def drop(self) -> None:
        """Delete the ledger, if there is one (with the memory it coordinates, for good)."""
        if self.exists():
            self._request("dropping the species ledger", lambda: self.client.drop_collection(self.name))

    def create(self) -> None:
        """Create the ledger if there is none."""
        if self.exists():
            return
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("holder", DataType.INT64)
        schema.add_field("seen_us", DataType.INT64)
        schema.add_field("place", DataType.VARCHAR, max_length=255)
        schema.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field in a collection
        index = self.client.prepare_index_params()
        index.add_index(field_name="unused", index_type="FLAT", metric_type="L2")
        self._request("creating the species ledger", lambda: self.client.create_collection(
            self.name, schema=schema, index_params=index))

    def claim_block(self, worker: int, at_least: int = 0) -> int:
        """Take the next free block of trial numbers (from ``at_least`` on); returns its number."""
        while True:
            block = max(at_least, self._last_block() + 1)
            self._write(block, worker, "block")
            time.sleep(CLAIM_SETTLE_S)
            if self._holder(block) == worker:
                return block
            at_least = block + 1

    def heartbeat(self, worker: int, place: str) -> None:
        """Say this worker is alive (``place``: where it runs, e.g. host:pid)."""
        self._write(worker, worker, place)

    def leave(self, worker: int) -> None:
        """Remove a worker's row, once: if Milvus does not answer, its heartbeat expires within ``ALIVE_S``."""
        try:
            self.client.delete(self.name, ids=[worker])
        except (MilvusException, grpc.RpcError):
            pass

    def alive(self) -> List[str]:
        """Where the workers seen within ``ALIVE_S`` run, as ``host:pid (label)`` (none if the ledger
        does not exist); a worker of this machine whose process is gone (killed, its pid perhaps
        another's since) is not alive, however recently it was seen."""
        if not self.exists():
            return []
        since = now_us() - int(ALIVE_S * 1e6)
        rows = self._query(f"id >= {WORKER_ID_FROM} and seen_us > {since}", ["place"])
        return sorted(_split_place(row["place"])[0] for row in rows
                      if not gone_from_here(row["place"]))  # nor this process

    def _last_block(self) -> int:
        """The highest block taken (-1: none); only blocks from the last one seen are read, so a long
        species' claims stay as cheap as its first."""
        rows = self._query(f"id > {self._seen} and id < {WORKER_ID_FROM}", ["id"])
        self._seen = max([self._seen] + [row["id"] for row in rows])
        return self._seen

    def _holder(self, block: int) -> Optional[int]:
        rows = self._query(f"id == {block}", ["holder"])
        return rows[0]["holder"] if rows else None

    def _write(self, row: int, holder: int, place: str) -> None:
        entry = {"id": row, "holder": holder, "seen_us": now_us(), "place": place[:255], "unused": [0.0, 0.0]}
        self._request("writing the species ledger", lambda: self.client.upsert(self.name, [entry]))

    def _query(self, condition: str, fields: list) -> list:
        return self._request("reading the species ledger", lambda: self.client.query(
            self.name, filter=condition, output_fields=fields, consistency_level="Strong", limit=16384))

    def _request(self, what: str, send: Callable[[], T]) -> T:
        return retried(self.settings, what, send)


class AliveInLedger:
    """A process's heartbeat in a ledger, every ``HEARTBEAT_S`` from a thread, for as long as it is
    entered: a process counts as training while a step of its own is long, and while it starts.

    :param label: what the process is (``ONE_PROCESS``, a species' command); ``relabel`` changes it.
    """

    def __init__(self, ledger: SpeciesLedger, label: str) -> None:
        self.ledger, self.worker_id = ledger, new_worker_id()
        self.place = worker_place(label)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="ledger-heartbeat")

    def __enter__(self) -> "AliveInLedger":
        self.ledger.heartbeat(self.worker_id, self.place)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self.ledger.leave(self.worker_id)

    def relabel(self, label: str) -> None:
        self.place = worker_place(label)
        self.ledger.heartbeat(self.worker_id, self.place)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self.ledger.heartbeat(self.worker_id, self.place)
            except (MilvusUnavailableError, MilvusException, grpc.RpcError):
                pass  # the process's own requests say what is wrong; the next beat tries again


def worker_place(label: str) -> str:
    """How a process is named in the ledger: ``host:pid (label) @start time``; the start time tells
    it from a later process given the same pid."""
    return f"{socket.gethostname()}:{os.getpid()} ({label}) @{process_start_time():.2f}"


def _split_place(place: str) -> Tuple[str, Optional[float]]:
    """A ledger place's ``host:pid (label)`` and its process's start time (None in a place written by
    a version before start times)."""
    where, marked, started = place.rpartition(" @")
    return (where, float(started)) if marked else (place, None)


def gone_from_here(place: str) -> bool:
    """Whether a ledger's worker ran on this machine in a process that no longer exists, or whose pid
    a newer process has since (or that is this process: its own heartbeat is no other trainer)."""
    where, started = _split_place(place)
    host, _, rest = where.partition(":")
    pid = rest.split(" ", 1)[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return int(pid) == os.getpid() or not process_alive(int(pid), started)


def trains_alone(place: str) -> bool:
    """Whether a live place (as ``alive`` lists it) is a training of one process, not a species'."""
    return place.endswith(f"({ONE_PROCESS})")


def species_ledger_name(instance_name: str) -> str:
    """The ledger collection of an instance's species."""
    return f"{instance_name}{SPECIES_SUFFIX}"


@dataclass
class SpeciesWorker:
    """One worker of a species: its number in the run folder, its ledger and id there.

    :param index: 0 … N−1 for a species' own workers; a joiner takes the next free number.
    :param first_block: blocks of trial numbers are taken from this one on (after a resumed run's).
    """

    index: int
    ledger: SpeciesLedger
    worker_id: int
    first_block: int = 0

    @property
    def place(self) -> str:
        return worker_place(f"worker {self.index}")

    def trial_numbers(self, count: int) -> Iterator[int]:
        """``count`` trial numbers from blocks taken from the ledger; the next block is taken while
        this one is flown, so a worker never waits for a claim to settle."""
        pool = ThreadPoolExecutor(1, thread_name_prefix="species-ledger")
        try:
            upcoming = pool.submit(self.ledger.claim_block, self.worker_id, self.first_block)
            given = 0
            while given < count:
                block = upcoming.result()
                upcoming = pool.submit(self.ledger.claim_block, self.worker_id, block + 1)
                for trial in range(block * TRIAL_BLOCK, (block + 1) * TRIAL_BLOCK):
                    if given == count:
                        break
                    given += 1
                    yield trial
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # a claim in flight ends before the process may


def new_worker(index: int, settings: Settings, first_trial: int) -> SpeciesWorker:
    return SpeciesWorker(index, SpeciesLedger(settings), new_worker_id(), math.ceil(first_trial / TRIAL_BLOCK))


def new_worker_id() -> int:
    """A worker's row in the ledger: random, so that workers of many machines need not agree on one."""
    return int(np.random.default_rng().integers(WORKER_ID_FROM, ID_RANGE))


def refuse_if_trained_elsewhere(settings: Settings, client=None) -> None:
    """A plain start of an instance that trains elsewhere (another process, here or on another
    machine, is alive in its ledger: a species' worker, or a training of one process) is refused:
    it would drop or mix into that training's memory.

    :param client: an open Milvus client to share.
    """
    alive = SpeciesLedger(settings, client).alive()
    if not alive:
        return
    name = settings.instance_name
    join = "" if all(map(trains_alone, alive)) else \
        f" add a worker to its species with --join (python main.py --instance {name} --join),"
    raise CollectionInUseError(
        f"instance {name!r} is being trained by {'; '.join(alive)}; a plain start would drop or mix into its memory. "
        f"Wait for it to finish,{join} or use another --instance.")
