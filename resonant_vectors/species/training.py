"""A species across processes and machines: many workers, one memory.

Why its own module: a ``Trainer`` flies one process's landers; a species is several such workers
on one collection — on this machine (``--workers N``, which starts N worker processes and watches
them) or joining from another terminal or machine (``--join``, the same command everywhere, with
nothing shared but the Milvus server). Each worker writes its trials' engrams to the one
collection and reads the others' (the replica polls them within ``REPLICA_REFRESH``; the Milvus
backend searches them directly).

- **Trial numbers** need no lock: worker ``k`` numbers its own trials from ``k × WORKER_TRIALS``
  on (``memory.ledger.SpeciesWorker``; worker 0's are those of a training of one process), going
  on after its own earlier ones on ``--keep``; a joiner's ``k`` is drawn at random
  (``ledger.joiner_number``), so joiners on many machines need not agree. **Seeds**: trial ``n`` flies environment seed
  ``SEED + n``, so worker ``k`` flies the same environments at every run; its decisions draw from
  ``numpy.random.default_rng([SEED, k])`` (worker 0: ``SEED``, as one process). **Schedules**
  follow the species' progress: the trials every member has started, read from the ledger at each
  heartbeat. When another's engrams arrive depends on timing: a species' run is reproducible
  trial by trial (worker ``k``'s trial ``n`` is the same environment), not bit for bit.
- **Aim**: each worker's landers aim at the running mean success of that worker's own trials.
- **The run folder** keeps each worker's rows in its own file (worker 0: ``trials.csv``, worker
  ``k``: ``trials-w<k>.csv``, each row naming its worker), merged for ``summary.json``, the curve,
  ``compare`` and ``--keep``; ``--keep --workers N`` resumes the whole species. On several
  machines, each folder takes in the others' rows from the species' book in Milvus
  (``runs.shared_rows``) as its members start and leave, so each holds every trial.
- **Faults**: a worker killed (``kill -9``) loses only its trials in flight; the others go on and
  the species' command reports it, does not restart it, and finishes. A trial whose engrams were
  stored just before the kill but not yet its row is recorded from its engrams (end ``recovered``),
  so the memory and the run folder agree. Ctrl-C stops every worker cleanly. Re-valuation is
  refused with several workers (it would race their writes).
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pandas as pd
from tqdm import tqdm

from resonant_vectors.config import Settings
from resonant_vectors.errors import ResonantVectorsError
from resonant_vectors.loop.callbacks import trial_line
from resonant_vectors.loop.interrupts import TrainingInterrupted
from resonant_vectors.loop.tensorboard import require_writer
from resonant_vectors.loop.trainer import Trainer
from resonant_vectors.memory.book import SpeciesBook
from resonant_vectors.memory.claims import CollectionClaim
from resonant_vectors.memory.ledger import (
    AliveInLedger,
    SpeciesLedger,
    joiner_number,
    new_worker,
    refuse_if_trained_elsewhere,
    trains_alone,
)
from resonant_vectors.memory.lifecycle import InstanceMemory
from resonant_vectors.memory.milvus.collection import MilvusUnavailableError
from resonant_vectors.memory.store import MemoryNotFoundError
from resonant_vectors.processes import module_command, module_environment
from resonant_vectors.runs.folder import RunFolder
from resonant_vectors.runs.records import trial_columns
from resonant_vectors.runs.recovery import RECOVERED, recover_unrecorded_trials
from resonant_vectors.runs.shared_rows import share_on_leaving, share_rows
from resonant_vectors.runs.starts import open_for_training

WORKER_MODULE = "resonant_vectors.species"  # python -m: a worker process
WATCH_EVERY_S = 0.5            # how often the species' command reads its workers' rows and exit codes
PR_SET_PDEATHSIG = 1           # prctl option: signal the child when its parent dies


class SpeciesNotTrainingError(MemoryNotFoundError):
    """``--join`` found no species of that instance training (here or in the ledger)."""


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
    :raises TensorBoardMissingError: ``TENSORBOARD`` is on without its writer (before the memory is touched).
    """
    if settings.tensorboard:
        require_writer()
    claim = CollectionClaim.take(settings)
    try:
        refuse_if_trained_elsewhere(settings)
        ledger = SpeciesLedger(settings)
        ledger.create()
        ledger.forget_earlier_starts()
        with AliveInLedger(ledger, STARTING) as alive:
            refuse_if_trained_elsewhere(settings)  # once more, its own row written (as a training of one process)
            folder = RunFolder.for_instance(settings.instance_name, runs_dir)
            book = SpeciesBook(settings, ledger.client)
            memory, start = open_for_training(settings, folder, search_backend="milvus")
            try:
                if len(start.unstored):
                    memory.store.memory.add(start.unstored, replace=True)
                    folder.forget_unstored()
                share_rows(folder, book)  # the book of this memory (a fresh one's made anew) holds the run's rows
                watch = _SpeciesWatch(settings, folder, book, start.earlier, memory, quiet)
                # the memory and the run folder are started; the run's trials so far count into the
                # species' progress
                alive.relabel(WELCOMING, started=len(start.earlier))
                watch.run()
                return watch.figures()
            finally:
                memory.close()
    finally:
        claim.release()


STARTING = "species command, starting"  # the command's label in the ledger until joiners are welcome...
WELCOMING = "species command"            # ...and from then on


class _SpeciesWatch:
    """Starts the workers and follows them: their rows (a line each, one progress bar), their
    deaths (reported, their unrecorded trials recovered), and Ctrl-C (passed on to each, once; a
    second one stops them at once)."""

    def __init__(self, settings: Settings, folder: RunFolder, book: SpeciesBook, earlier: pd.DataFrame,
                 memory: InstanceMemory, quiet: bool) -> None:
        self.settings, self.folder, self.book, self.memory, self.quiet = settings, folder, book, memory, quiet
        self.clock_offset = float(earlier["wall_time"].max()) if len(earlier) else 0.0
        self.processes: Dict[int, subprocess.Popen] = {}
        self.died: Dict[int, str] = {}
        self.interrupted: Optional[str] = None
        self._read: Dict[int, int] = {}

    def run(self) -> None:
        settings = self.settings
        previous = {number: signal.signal(number, self._on_signal) for number in (signal.SIGINT, signal.SIGTERM)}
        self.bar = tqdm(total=settings.trials, unit="trial", disable=self.quiet, leave=False)
        try:
            landers, trials = shares(settings.population_size, settings.workers), shares(settings.trials, settings.workers)
            for index in range(settings.workers):
                if self.interrupted is None:  # a Ctrl-C while they start: the rest are not started
                    self.processes[index] = self._start_worker(index, landers[index], trials[index])
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
        recover_unrecorded_trials(self.folder, self.memory, settings)
        share_rows(self.folder, self.book)  # joiners' rows, from any machine, and the recovered ones
        write_species_summary(self.folder, self.memory)

    def _start_worker(self, index: int, landers: int, trials: int) -> subprocess.Popen:
        """A worker process in its own session (a terminal's Ctrl-C reaches this command, which passes
        it on), given absolute paths (it may run in another folder than this command)."""
        settings = self.settings.replace(population_size=landers, workers=1, drop_collection=False,
                                         milvus_data_dir=str(Path(self.settings.milvus_data_dir).resolve()))
        task = {"settings": settings.as_dict(), "worker": index, "runs_dir": str(self.folder.path.parent.resolve()),
                "trials": trials, "clock_offset": self.clock_offset,
                "parent": os.getpid()}
        process = subprocess.Popen(module_command(WORKER_MODULE, "work"), stdin=subprocess.PIPE,
                                   env=module_environment(), start_new_session=True)
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

    def figures(self) -> dict:
        return {**species_figures(self.folder), "engrams": self.memory.count(), "died": dict(self.died),
                "interrupted": self.interrupted}


def this_run(folder: RunFolder) -> Tuple[pd.DataFrame, float]:
    """The rows of the species' latest start (every worker's, a joiner's included) and the training
    seconds before it (each worker's clock goes on from there)."""
    frame = folder.trials()
    before = frame.iloc[:folder.latest_start()]  # trials() are in finishing order, the earlier start's first
    return frame.iloc[len(before):], float(before["wall_time"].max()) if len(before) else 0.0


def species_figures(folder: RunFolder) -> dict:
    """What the species' latest start did, from every trial row: its trials, the workers who flew
    them, its steps per second over the time its workers flew, and the run's last 100."""
    run, clock_offset = this_run(folder)
    flown = run[run["end"] != RECOVERED] if "end" in run else run
    seconds = float(flown["wall_time"].max()) - clock_offset if len(flown) else 0.0
    last = folder.trials().tail(100)
    return {"trials": len(run), "workers": int(flown["worker"].nunique()) if len(flown) else 0,
            "steps": int(run["length"].sum()) if len(run) else 0,
            "steps_per_s": float(flown["length"].sum()) / seconds if seconds > 0 else float("nan"),
            "mean_reward": float(run["reward"].mean()) if len(run) else float("nan"),
            "last_trials": len(last), "last_mean": float(last["reward"].mean()) if len(last) else float("nan"),
            "last_solved": int(last["solved"].sum()) if len(last) else 0}


def write_species_summary(folder: RunFolder, memory: InstanceMemory) -> None:
    """Rewrite ``summary.json`` from every trial row, with the memory's count: each member of a species
    does as it leaves (the command, each worker, a joiner), so the last to leave leaves it whole. A
    Milvus that is down leaves the rows' count (its own error is what the member reports)."""
    try:
        engrams = memory.count()
    except MilvusUnavailableError:
        engrams = None
    folder.write_summary(species_figures(folder)["steps_per_s"], engrams)


@contextmanager
def summarised_on_leaving(trainer: Trainer) -> Iterator[Trainer]:
    """A species' worker or joiner, closed as it leaves, first sharing its run folder's rows with the
    species' book (so that its machine holds every trial so far) and rewriting the species' summary."""
    with trainer:
        try:
            yield trainer
        finally:
            share_on_leaving(trainer.run_folder, trainer.species.book)
            write_species_summary(trainer.run_folder, trainer.memory)


# --- a worker ---
def refuse_unless_a_species_trains(settings: Settings) -> None:
    """A join needs a species of the instance in training (its workers flying), not one starting nor
    a training of one process.

    :raises SpeciesNotTrainingError: no species of the instance is training.
    """
    ledger = SpeciesLedger(settings)
    alive = ledger.alive()
    if alive and all(place.endswith(f"({STARTING})") for place in alive):
        raise SpeciesNotTrainingError(
            f"the species of {settings.instance_name!r} is starting ({alive[0]}): its memory may still be "
            f"started afresh. Join it once its workers fly: run the same command again in a few seconds.")
    if alive and all(map(trains_alone, alive)):
        raise SpeciesNotTrainingError(
            f"{settings.instance_name!r} is trained by one process ({alive[0]}), not by a species, and a training "
            f"of one process is not joined: wait for it, then resume it as a species with --keep --workers 2, or "
            f"train another --instance.")
    if not alive:
        raise SpeciesNotTrainingError(
            f"no species of {settings.instance_name!r} is training (on this machine, or anywhere its ledger "
            f"{ledger.name} knows of) to join; start one: python main.py --instance {settings.instance_name} "
            f"--workers 2 (a training of one process is not joined: wait for it, or resume it with --keep "
            f"--workers 2)")


def join_species(settings: Settings, runs_dir: Path, quiet: bool = False):
    """This process joins a species already training (from another terminal, or another machine on
    the same Milvus): it never drops or resets the memory; it flies ``TRIALS`` trials with
    ``POPULATION_SIZE`` landers under a worker number drawn at random (``ledger.joiner_number``: no
    machine need agree on one). Its run folder should hold the species' rows and settings first
    (``take_in_species``, which its settings are read after).

    :raises SpeciesNotTrainingError: no species of the instance is training.
    """
    refuse_unless_a_species_trains(settings)
    folder = RunFolder.for_instance(settings.instance_name, runs_dir)
    earlier = folder.trials() if folder.path.is_dir() else pd.DataFrame(columns=trial_columns())
    worker = new_worker(folder.reserve_worker(joiner_number()), settings, earlier["trial"].astype(int))
    clock_offset = float(earlier["wall_time"].max()) if len(earlier) else 0.0  # its rows follow the species'
    trainer = Trainer(settings=settings.replace(drop_collection=False, workers=1), quiet=quiet, run_folder=folder,
                      species=worker, clock_offset=clock_offset)
    return summarised_on_leaving(trainer)


def take_in_species(settings: Settings, runs_dir: Path) -> int:
    """The instance's run folder here takes in the rows and settings its species flew on any machine
    (``runs.shared_rows``; nothing where it has no memory or no book of it, and nothing for a join
    that is refused); returns how many rows. A joiner's command does so before it reads the run's
    settings, so that on another machine it joins with the species' own.

    :raises SpeciesNotTrainingError: no species of the instance is training (nothing is taken in).
    """
    refuse_unless_a_species_trains(settings)
    return share_rows(RunFolder.for_instance(settings.instance_name, runs_dir), SpeciesBook(settings), create=False)


def work() -> int:
    """A species' worker process (started by ``train_species``): its task arrives on stdin as JSON.
    It stops cleanly (SIGTERM) if the species' command dies."""
    task = json.loads(sys.stdin.read())
    _stop_with(task["parent"])
    settings = Settings.from_dict(task["settings"])
    try:
        folder = RunFolder.for_instance(settings.instance_name, task["runs_dir"])
        worker = new_worker(task["worker"], settings, folder.trials()["trial"].astype(int))
        with summarised_on_leaving(Trainer(settings=settings, quiet=True, run_folder=folder, species=worker,
                                           clock_offset=task["clock_offset"])) as trainer:
            trainer.train(task["trials"])
    except (TrainingInterrupted, KeyboardInterrupt):  # Ctrl-C passed on, between steps or while starting
        return 130
    except ResonantVectorsError as error:
        print(f"error (worker {task['worker']}): {error}", file=sys.stderr)
        return 2
    return 0


def _stop_with(parent: int) -> None:
    """SIGTERM (a clean stop) when the species' command ``parent`` dies (Linux's parent-death
    signal); if it died already, stop now."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        sys.exit(130)

