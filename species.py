"""A species across processes and machines: many workers, one memory.

Why its own module: a ``Trainer`` flies one process's landers; a species is several such workers
on one collection — on this machine (``--workers N``, which starts N worker processes and watches
them) or joining from another terminal or machine (``--join``, the same command everywhere, with
nothing shared but the Milvus server). Each worker writes its trials' engrams to the one
collection and reads the others' (the replica polls them within ``REPLICA_REFRESH``; the Milvus
backend searches them directly).

- **Trial numbers** are taken from the species ledger in blocks (``milvus_memory.SpeciesLedger``),
  so they are unique across the species and follow its progress (exploration schedules read
  them). **Seeds**: trial ``n`` flies environment seed ``SEED + n`` whoever flies it; worker ``k``'s
  decisions draw from ``numpy.random.default_rng([SEED, k])`` (worker 0: ``SEED``, as one process).
  Which worker flies which trial, and when another's engrams arrive, depend on timing: a species'
  run is reproducible trial by trial, not bit for bit.
- **Aim**: each worker's landers aim at the running mean success of that worker's own trials.
- **The run folder** keeps each worker's rows in its own file (worker 0: ``trials.csv``, worker
  ``k``: ``trials-w<k>.csv``, each row naming its worker), merged for ``summary.json``, the curve,
  ``compare`` and ``--keep``; ``--keep --workers N`` resumes the whole species.
- **Faults**: a worker killed (``kill -9``) loses only its trials in flight; the others go on and
  the species' command reports it, does not restart it, and finishes. A trial whose engrams were
  stored just before the kill but not yet its row is recorded from its engrams (end ``recovered``),
  so the memory and the run folder agree. Ctrl-C stops every worker cleanly. Re-valuation is
  refused with several workers (it would race their writes).
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import numpy as np
import pandas as pd
from pymilvus import MilvusException

from callbacks import trial_line
from claims import CollectionClaim
from config import Settings
from engram import MemoryNotFoundError
from memory import ID_RANGE
from milvus_memory import (HEARTBEAT_S, TRIAL_BLOCK, WORKER_ID_FROM, EngramCollection, MilvusUnavailableError,
                           SpeciesLedger, worker_place)
from population import TrialRecord, trial_columns
from runs import RunFolder

PROJECT = Path(__file__).resolve().parent
WATCH_EVERY_S = 0.5            # how often the species' command reads its workers' rows and exit codes
PR_SET_PDEATHSIG = 1           # prctl option: signal the child when its parent dies
RECOVERED = "recovered"        # the end cause of a trial recorded from its engrams after its worker died


class SpeciesNotTrainingError(MemoryNotFoundError):
    """``--join`` found no species of that instance training (here or in the ledger)."""


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
    """A plain start of an instance whose species trains (on another machine: its workers are alive in
    the ledger) is refused: it would drop or mix into that species' memory.

    :param client: an open Milvus client to share.
    """
    alive = SpeciesLedger(settings, client).alive()
    if alive:
        from claims import CollectionInUseError

        raise CollectionInUseError(
            f"instance {settings.instance_name!r} is being trained by a species ({'; '.join(alive)}); a plain "
            f"start would drop or mix into its memory. Add a worker to it with --join (python main.py --instance "
            f"{settings.instance_name} --join), wait for it to finish, or use another --instance.")


def unrecorded_trials(folder: RunFolder, collection: EngramCollection, settings: Settings) -> Dict[int, List[TrialRecord]]:
    """For each worker of the run folder that did not end cleanly (and whose process is gone): the
    trials whose engrams it stored but whose rows it had not written when it died, as records made
    from the engrams (end ``recovered``); worker -> records. Reads only: see ``recover_unrecorded_trials``."""
    recorded = folder.trials() if folder.path.is_dir() else pd.DataFrame(columns=trial_columns())
    wall_time = float(recorded["wall_time"].max()) if len(recorded) else 0.0
    found = {}
    for worker, writer in folder.unclean_workers().items():
        own = set(recorded.loc[recorded["worker"] == worker, "trial"].astype(int)) if "worker" in recorded else set()
        steps = pd.concat([pd.DataFrame({"trial": page.trial, "reward": page.reward}) for page in
                           collection.pages(f"writer == {writer}", "Strong")] or [pd.DataFrame(columns=["trial", "reward"])])
        missing = steps[~steps["trial"].isin(own)].groupby("trial")["reward"].agg(["sum", "count"])
        found[worker] = [_recovered(int(trial), worker, float(row["sum"]), int(row["count"]), wall_time, settings)
                         for trial, row in missing.iterrows()]
    return found


def recover_unrecorded_trials(folder: RunFolder, collection: EngramCollection, settings: Settings) -> int:
    """Write down ``unrecorded_trials`` and mark those workers clean; returns how many trials. Afterwards
    the memory and the run folder agree, engram for step."""
    recovered = unrecorded_trials(folder, collection, settings)
    for worker, records in recovered.items():
        if records:
            folder.append(records, worker)
        folder.worker_ended(worker)
    return sum(len(records) for records in recovered.values())


def _recovered(trial: int, worker: int, reward: float, length: int, wall_time: float, settings: Settings
               ) -> TrialRecord:
    environment = settings.environment
    return TrialRecord(trial=trial, worker=worker, lander=-1, reward=reward, length=length,
                       solved=environment.solved(reward), end=RECOVERED, success=environment.success(reward),
                       mean_success=float("nan"), engrams=-1, neighbour_distance=float("nan"), noise=float("nan"),
                       epsilon=float("nan"), wall_time=wall_time)


def shares(total: int, parts: int) -> List[int]:
    """``total`` split into ``parts`` whole shares, the first ones one larger where it does not divide."""
    return [total // parts + (1 if part < total % parts else 0) for part in range(parts)]


# --- the species' command: start the memory, start the workers, watch them ---
def train_species(settings: Settings, runs_dir: Path, quiet: bool = False) -> dict:
    """Train one species with ``WORKERS`` processes on this machine: the memory and the run folder are
    started here (afresh: the memory dropped last, as for one process; ``--keep``: resumed, engrams
    kept from an earlier failure stored first), then each worker flies its share of the population
    and of the trials. The command is alive in the species' ledger from before the memory is
    touched until its workers have ended. Returns the run's figures.

    :raises CollectionInUseError: the instance trains already (here, or elsewhere in the ledger).
    """
    from Trainer import open_for_training

    claim = CollectionClaim.take(settings)
    try:
        refuse_if_trained_elsewhere(settings)
        ledger = SpeciesLedger(settings)
        if settings.drop_collection:
            ledger.start_afresh()
        else:
            ledger.create()
        with _Alive(ledger) as alive:
            folder = RunFolder.for_instance(settings.instance_name, runs_dir)
            store, start = open_for_training(settings, folder, search_backend="milvus")
            try:
                if len(start.unstored):
                    store.memory.add(start.unstored, replace=True)
                    folder.forget_unstored()
                first_trial = int(start.earlier["trial"].max()) + 1 if len(start.earlier) else 0
                watch = _SpeciesWatch(settings, folder, start.earlier, store.collection, quiet)
                watch.reserve_workers()
                alive.ready()
                watch.run(first_trial)
                return watch.figures()
            finally:
                store.close()
    finally:
        claim.release()


STARTING = "species command, starting"  # the command's place in the ledger until joiners are welcome


class _Alive:
    """The species' command's own heartbeat in the ledger, every ``HEARTBEAT_S`` from a thread, so that
    the species counts as in training while its workers start (and while a step of theirs is long).
    Until ``ready`` it says the species is starting: a joiner then waits, since the memory may still
    be dropped and the run folder moved aside."""

    def __init__(self, ledger: SpeciesLedger) -> None:
        self.ledger, self.worker_id = ledger, new_worker_id()
        self.place = worker_place(STARTING)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="species-heartbeat")

    def __enter__(self) -> "_Alive":
        self.ledger.heartbeat(self.worker_id, self.place)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self.ledger.leave(self.worker_id)

    def ready(self) -> None:
        """The memory and the run folder are started and the workers' numbers reserved: joiners welcome."""
        self.place = worker_place("species command")
        self.ledger.heartbeat(self.worker_id, self.place)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self.ledger.heartbeat(self.worker_id, self.place)
            except (MilvusUnavailableError, MilvusException):
                pass  # the workers' own requests say what is wrong; the next beat tries again


class _SpeciesWatch:
    """Starts the workers and follows them: their rows (a line each, one progress bar), their
    deaths (reported, their unrecorded trials recovered), and Ctrl-C (passed on to each, once; a
    second one stops them at once)."""

    def __init__(self, settings: Settings, folder: RunFolder, earlier: pd.DataFrame, collection: EngramCollection,
                 quiet: bool) -> None:
        self.settings, self.folder, self.collection, self.quiet = settings, folder, collection, quiet
        self.earlier_trials = len(earlier)
        self.clock_offset = float(earlier["wall_time"].max()) if len(earlier) else 0.0
        self.processes: Dict[int, subprocess.Popen] = {}
        self.died: Dict[int, str] = {}
        self.interrupted: Optional[str] = None
        self._read: Dict[int, int] = {}

    def reserve_workers(self) -> None:
        """The species' own worker numbers, taken in its run folder: a joiner takes the next free one."""
        for index in range(self.settings.workers):
            self.folder.open_trials_file(index)

    def run(self, first_trial: int) -> None:
        from tqdm import tqdm

        settings = self.settings
        previous = {number: signal.signal(number, self._on_signal) for number in (signal.SIGINT, signal.SIGTERM)}
        self.bar = tqdm(total=settings.trials, unit="trial", disable=self.quiet, leave=False)
        try:
            landers, trials = shares(settings.population_size, settings.workers), shares(settings.trials, settings.workers)
            for index in range(settings.workers):
                if self.interrupted is None:  # a Ctrl-C while they start: the rest are not started
                    self.processes[index] = self._start_worker(index, landers[index], trials[index], first_trial)
            if self.interrupted is not None:  # one started as it came is stopped too
                self._pass_on(signal.SIGINT)
            while any(process.poll() is None for process in self.processes.values()):
                time.sleep(WATCH_EVERY_S)
                self._follow()
            self._follow()
        finally:
            self.bar.close()
            for number, handler in previous.items():
                signal.signal(number, handler)
            for process in self.processes.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()
        recover_unrecorded_trials(self.folder, self.collection, settings)
        self.folder.write_summary(self.steps_per_s())

    def _start_worker(self, index: int, landers: int, trials: int, first_trial: int) -> subprocess.Popen:
        """A worker process in its own session (a terminal's Ctrl-C reaches this command, which passes
        it on), given absolute paths (it runs in the project's folder, wherever this command was typed)."""
        settings = self.settings.replace(population_size=landers, workers=1, drop_collection=False,
                                         milvus_data_dir=str(Path(self.settings.milvus_data_dir).resolve()))
        task = {"settings": settings.as_dict(), "worker": index, "runs_dir": str(self.folder.path.parent.resolve()),
                "trials": trials, "first_trial": first_trial, "clock_offset": self.clock_offset,
                "parent": os.getpid()}
        process = subprocess.Popen([sys.executable, str(PROJECT / "species.py"), "work"], stdin=subprocess.PIPE,
                                   cwd=PROJECT, start_new_session=True)
        process.stdin.write(json.dumps(task).encode())
        process.stdin.close()
        return process

    def _on_signal(self, signum, frame) -> None:
        first = self.interrupted is None
        self.interrupted = self.interrupted or signal.Signals(signum).name
        self._pass_on(signal.SIGINT if first else signal.SIGKILL)

    def _pass_on(self, signum: int) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signum)

    def _follow(self) -> None:
        """Print and count the rows written since the last look; notice workers that died."""
        for index in self.processes:
            records, self._read[index] = self.folder.new_records(index, self._read.get(index, 0))
            for record in records:
                self.bar.update(1)
                if not self.quiet:
                    self.bar.write(f"w{index} " + trial_line(record))
        for index, process in self.processes.items():
            code = process.poll()
            if code is not None and code not in (0, 130) and index not in self.died and self.interrupted is None:
                cause = signal.Signals(-code).name if code < 0 else f"exit code {code}"
                self.died[index] = cause
                print(f"worker {index} (pid {process.pid}) ended by {cause}: its trials in flight are lost, its "
                      f"finished ones are kept; the other workers go on (it is not restarted).", file=sys.stderr)

    def steps_per_s(self) -> float:
        """This run's steps over the time its workers flew (each worker's clock starts with its loop)."""
        trials = self.folder.trials().iloc[self.earlier_trials:] if self.earlier_trials else self.folder.trials()
        flown = trials[trials["end"] != RECOVERED] if "end" in trials else trials
        seconds = float(flown["wall_time"].max()) - self.clock_offset if len(flown) else 0.0
        return float(flown["length"].sum()) / seconds if seconds > 0 else float("nan")

    def figures(self) -> dict:
        frame = self.folder.trials()
        run = frame.iloc[self.earlier_trials:]
        last = frame.tail(100)
        return {"trials": len(run), "mean_reward": float(run["reward"].mean()) if len(run) else float("nan"),
                "last_trials": len(last), "last_mean": float(last["reward"].mean()) if len(last) else float("nan"),
                "last_solved": int(last["solved"].sum()) if len(last) else 0, "steps_per_s": self.steps_per_s(),
                "engrams": self.collection.count(), "died": dict(self.died), "interrupted": self.interrupted,
                "workers": self.settings.workers}


# --- a worker ---
def join_species(settings: Settings, runs_dir: Path, quiet: bool = False):
    """This process joins a species already training (from another terminal, or another machine on
    the same Milvus): it never drops or resets the memory; it flies ``TRIALS`` trials with
    ``POPULATION_SIZE`` landers and takes the next free worker number of its run folder.

    :raises SpeciesNotTrainingError: no species of the instance is training.
    """
    from Trainer import Trainer

    ledger = SpeciesLedger(settings)
    alive = ledger.alive()
    if alive and all(place.endswith(f"({STARTING})") for place in alive):
        raise SpeciesNotTrainingError(
            f"the species of {settings.instance_name!r} is starting ({alive[0]}): its memory may still be "
            f"started afresh. Join it once its workers fly: run the same command again in a few seconds.")
    if not alive:
        raise SpeciesNotTrainingError(
            f"no species of {settings.instance_name!r} is training (on this machine, or anywhere its ledger "
            f"{ledger.name} knows of) to join; start one: python main.py --instance {settings.instance_name} "
            f"--workers 2 (a training of one process is not joined: wait for it, or resume it with --keep "
            f"--workers 2)")
    folder = RunFolder.for_instance(settings.instance_name, runs_dir)
    earlier = folder.trials() if folder.path.is_dir() else pd.DataFrame(columns=trial_columns())
    worker = new_worker(folder.reserve_worker(), settings,
                        int(earlier["trial"].max()) + 1 if len(earlier) else 0)
    trainer = Trainer(settings=settings.replace(drop_collection=False, workers=1), quiet=quiet, run_folder=folder,
                      species=worker)
    return trainer


def _work() -> int:
    """A species' worker process (started by ``train_species``): its task arrives on stdin as JSON.
    It stops cleanly (SIGTERM) if the species' command dies."""
    from cli import USER_ERRORS
    from interrupts import TrainingInterrupted
    from Trainer import Trainer

    task = json.loads(sys.stdin.read())
    _stop_with(task["parent"])
    settings = Settings.from_dict(task["settings"])
    worker = new_worker(task["worker"], settings, task["first_trial"])
    try:
        with Trainer(settings=settings, quiet=True, run_folder=RunFolder.for_instance(settings.instance_name,
                                                                                       task["runs_dir"]),
                     species=worker, clock_offset=task["clock_offset"]) as trainer:
            trainer.train(task["trials"])
    except (TrainingInterrupted, KeyboardInterrupt):  # Ctrl-C passed on, between steps or while starting
        return 130
    except USER_ERRORS as error:
        print(f"error (worker {task['worker']}): {error}", file=sys.stderr)
        return 2
    return 0


def _stop_with(parent: int) -> None:
    """SIGTERM (a clean stop) when the species' command ``parent`` dies (Linux's parent-death
    signal); if it died already, stop now."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        sys.exit(130)


if __name__ == "__main__":
    if sys.argv[1:] != ["work"]:
        sys.exit("usage: python species.py work  (started by `python main.py --workers N`, not by hand)")
    sys.exit(_work())
