"""The species ledger: where the workers of one species meet, in Milvus beside the engrams.

Why its own module: a species' coordination (which workers are alive, how many trials the species
has started) is not the engrams' collection; the trainer, the species' command and a plain start's
refusal all read it, and only through this module.
"""
from __future__ import annotations

import os
import socket
import threading
from typing import Callable, Iterable, Iterator, List, Optional, Tuple, TypeVar

import grpc
import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException

from resonant_vectors.config import SPECIES_SUFFIX, Settings
from resonant_vectors.memory.book import SpeciesBook
from resonant_vectors.memory.claims import CollectionInUseError
from resonant_vectors.memory.milvus.collection import MilvusUnavailableError, connect, create_table, now_us, retried
from resonant_vectors.memory.seam import ID_RANGE, next_in_namespace
from resonant_vectors.processes import process_alive, process_start_time

HEARTBEAT_S = 10.0             # a member says it is alive this often...
ALIVE_S = 45.0                 # ...and counts as alive this long after it last did
PROGRESS_S = 2.0               # a flying worker writes its count of trials started, and reads the species', this often
LEFT_US = 0                    # the seen_us of a worker that left: not alive, its count of trials still the species'
WORKER_ID_FROM = 2 ** 40       # row ids are at least this (an earlier version's ledger also held trial blocks below it)
ONE_PROCESS = "one process"    # the label of a training that is no species (it is not joined)
# A joiner's worker number, drawn at random (from any machine, none need agree on one): past a species'
# own workers, and small enough that its trial numbers stay exact in a float (< 2^53, as a CSV reader reads them).
JOINER_NUMBERS = (1_000, 900_000_000)
T = TypeVar("T")


class SpeciesLedger:
    """Where the members of one species meet, in Milvus beside the engrams (``<instance>_species``):
    which are alive, and how many trials each has started.

    Why in Milvus: the species may span machines with nothing shared but the memory's server, and
    no coordinator of its own (like Optuna's workers on one storage). Why no lock: Milvus has no
    conditional write, so nothing here is claimed. Each member writes only its own row (its random
    id, at ``WORKER_ID_FROM`` or more), again and again:

    - a member seen within ``ALIVE_S`` is alive (a flying worker writes every ``PROGRESS_S``, others
      every ``HEARTBEAT_S``), and an instance with a live member is in training:
      a plain start of it is refused. A training of one process writes such a row too
      (``ONE_PROCESS``), so that a start on another machine is refused as well;
    - its ``started`` is how many trials it has started (the species' command's: the run's trials
      before this start). Their sum is the species' progress, which exploration schedules follow.
      A worker that leaves keeps its row (``seen_us`` = ``LEFT_US``: not alive) so that its trials
      still count, until the species' next start forgets it (``forget_earlier_starts``).

    Trial numbers need no ledger: worker ``k`` numbers its own trials from ``k × WORKER_TRIALS``.

    :param settings: the species' settings (its instance names the ledger).
    :param client: an open client to share.
    """

    def __init__(self, settings: Settings, client: Optional[MilvusClient] = None) -> None:
        self.settings = settings
        self.name = species_ledger_name(settings.instance_name)
        self.client = client or connect(settings)

    def exists(self) -> bool:
        return self._request("looking for the species", lambda: self.client.has_collection(self.name))

    def drop(self) -> None:
        """Delete the ledger, if there is one (with the memory it coordinates, for good)."""
        if self.exists():
            self._request("dropping the species ledger", lambda: self.client.drop_collection(self.name))

    def create(self) -> None:
        """Create the ledger if there is none; one of an earlier version (with trial blocks, without
        counts) is made again, which only a start that found no member alive does."""
        if self.exists():
            if self._is_current():
                return
            self.drop()
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("started", DataType.INT64)
        schema.add_field("seen_us", DataType.INT64)
        schema.add_field("place", DataType.VARCHAR, max_length=255)
        create_table(self.settings, self.client, self.name, schema, "creating the species ledger")

    def _is_current(self) -> bool:
        described = self._request("reading the species ledger", lambda: self.client.describe_collection(self.name))
        return any(field["name"] == "started" for field in described["fields"])

    def forget_earlier_starts(self) -> None:
        """Delete the rows of members that are not alive (those that left, were killed, or ran
        before): a species' start counts its progress from its own rows. Rows of live members stay,
        so a start elsewhere that wrote its row meanwhile is still seen."""
        since = now_us() - int(ALIVE_S * 1e6)
        rows = self._query(f"id >= {WORKER_ID_FROM}", ["id", "seen_us", "place"])
        gone = [row["id"] for row in rows if row["seen_us"] <= since or _ended_here(row["place"])]
        if gone:
            self._request("clearing the species ledger", lambda: self.client.delete(self.name, ids=gone))

    def heartbeat(self, worker: int, place: str, started: int = 0) -> None:
        """Say this member is alive (``place``: where it runs, e.g. host:pid) and how many trials it started."""
        self._write(worker, place, started, now_us())

    def leave(self, worker: int) -> None:
        """Remove a member's row, once: if Milvus does not answer, its heartbeat expires within ``ALIVE_S``."""
        try:
            self.client.delete(self.name, ids=[worker])
        except (MilvusException, grpc.RpcError):
            pass

    def retire(self, worker: int, place: str, started: int) -> None:
        """A worker leaves, its trials still counted in the species' progress (see the class)."""
        try:
            self._write(worker, place, started, LEFT_US)
        except (MilvusUnavailableError, MilvusException, grpc.RpcError):
            pass  # its heartbeat expires within ALIVE_S; only its count is lost

    def species_started(self) -> int:
        """The trials the species has started: every member's count, those that left included."""
        rows = self._query(f"id >= {WORKER_ID_FROM}", ["started"])
        return int(sum(row["started"] for row in rows))

    def alive(self) -> List[str]:
        """Where the members seen within ``ALIVE_S`` run, as ``host:pid (label)`` (none if the ledger
        does not exist); a member of this machine whose process is gone (killed, its pid perhaps
        another's since) is not alive, however recently it was seen."""
        if not self.exists():
            return []
        since = now_us() - int(ALIVE_S * 1e6)
        rows = self._query(f"id >= {WORKER_ID_FROM} and seen_us > {since}", ["place"])
        return sorted(_split_place(row["place"])[0] for row in rows
                      if not gone_from_here(row["place"]))  # nor this process

    def _write(self, row: int, place: str, started: int, seen_us: int) -> None:
        entry = {"id": row, "started": started, "seen_us": seen_us, "place": place[:255], "unused": [0.0, 0.0]}
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
        self.started = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="ledger-heartbeat")

    def __enter__(self) -> "AliveInLedger":
        self.ledger.heartbeat(self.worker_id, self.place)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        if self.started:
            self.ledger.retire(self.worker_id, self.place, self.started)
        else:
            self.ledger.leave(self.worker_id)

    def relabel(self, label: str, started: int = 0) -> None:
        """Say what the process is now, and the trials it counts into the species' progress (a
        species' command: the run's trials before this start; they stay counted after it ends)."""
        self.place, self.started = worker_place(label), started
        self.ledger.heartbeat(self.worker_id, self.place, started)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self.ledger.heartbeat(self.worker_id, self.place, self.started)
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
    return _process_of_here(place) == os.getpid() or _ended_here(place)


def _ended_here(place: str) -> bool:
    """Whether a ledger's worker ran on this machine in a process that is gone (see ``gone_from_here``)."""
    pid = _process_of_here(place)
    return pid is not None and not process_alive(pid, _split_place(place)[1])


def _process_of_here(place: str) -> Optional[int]:
    """The pid of a ledger's worker that runs on this machine (None: another machine's, or no pid)."""
    host, _, rest = _split_place(place)[0].partition(":")
    pid = rest.split(" ", 1)[0]
    return int(pid) if host == socket.gethostname() and pid.isdigit() else None


def trains_alone(place: str) -> bool:
    """Whether a live place (as ``alive`` lists it) is a training of one process, not a species'."""
    return place.endswith(f"({ONE_PROCESS})")


def species_ledger_name(instance_name: str) -> str:
    """The ledger collection of an instance's species."""
    return f"{instance_name}{SPECIES_SUFFIX}"


class SpeciesWorker:
    """One worker of a species: its number in the run folder, its own namespace of trial numbers,
    its row in the ledger, and what it knows of the species' progress.

    Why a namespace: trial numbers then need no lock, however many workers and joiners fly at once.
    Worker ``k`` numbers its trials ``k × WORKER_TRIALS`` on, going on after its own earlier ones
    (worker 0's are a training of one process's), and flies trial ``n`` on environment seed
    ``SEED + n``, as one process does. The species' progress (every member's count of trials
    started, read from the ledger every ``PROGRESS_S``, plus its own since) is what its exploration
    schedules follow.

    :param index: 0 … N−1 for a species' own workers; a joiner's is drawn at random (``joiner_number``).
    :param next_trial: the first trial number this worker flies.
    """

    def __init__(self, index: int, ledger: SpeciesLedger, next_trial: int) -> None:
        self.index, self.ledger, self.worker_id = index, ledger, new_worker_id()
        self.book = SpeciesBook(ledger.settings, ledger.client)  # where its rows go for the other machines
        self.next_trial = next_trial
        self.started = 0              # trials this worker started
        self._species_started = 0     # the species' count at the last look, and this worker's then
        self._own_then = 0

    @property
    def place(self) -> str:
        return worker_place(f"worker {self.index}")

    def trial_numbers(self, count: int) -> Iterator[int]:
        """The next ``count`` numbers of this worker's namespace (each counted as started when taken)."""
        for _ in range(count):
            trial, self.next_trial = self.next_trial, self.next_trial + 1
            self.started += 1
            yield trial

    def progress(self, trial: int) -> int:
        """The species' count of trials started before this one, as far as this worker knows it."""
        return self._species_started + (self.started - 1 - self._own_then)

    def beat(self) -> None:
        """Say it is alive with its count, and read the species' count."""
        self.ledger.heartbeat(self.worker_id, self.place, self.started)
        self._species_started, self._own_then = self.ledger.species_started(), self.started

    def leave(self) -> None:
        self.ledger.retire(self.worker_id, self.place, self.started)


def new_worker(index: int, settings: Settings, earlier_trials: Iterable[int]) -> SpeciesWorker:
    """Worker ``index`` of a species whose run folder holds these trial numbers."""
    return SpeciesWorker(index, SpeciesLedger(settings), next_in_namespace(index, earlier_trials))


def joiner_number() -> int:
    """A joiner's worker number, and so its namespace of trial numbers: at random in
    ``JOINER_NUMBERS`` (one in 9 × 10^8), so that joiners on many machines need not agree on one."""
    return int(np.random.default_rng().integers(*JOINER_NUMBERS))


def new_worker_id() -> int:
    """A member's row in the ledger: random (one in 2^63), so that members of many machines need not agree on one."""
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
