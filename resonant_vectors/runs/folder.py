"""Run folders: where an experiment's settings, per-trial metrics, summary and plots are kept.

Why its own module: saving, reading, summarising and plotting results is one responsibility that
the Trainer, ``main.py`` and notebooks share. A run folder ``runs/<instance>/`` holds

- ``settings.json``  the settings the run started with (lowercase names, as ``config.Settings``);
- ``settings-resume-<n>.json`` the settings of its n-th resume (``--keep``) and the first trial it
                     flew (``first_trial``), so that no run's settings are lost; evaluate and watch
                     read the latest;
- ``trials.csv``     one row per finished trial, appended and flushed as training goes, so a crash
                     leaves everything finished before it (``wall_time``: seconds of training up to
                     the trial's end, counted on across ``train()`` calls and resumes);
- ``summary.json``   trials, mean reward, last-100 mean, solved rate, best, engrams, steps, steps/s;
- ``learning_curve.png``  reward per trial, its rolling mean, and the rolling solved rate;
- ``evaluation.json`` the last deterministic evaluation, when one was made;
- ``tb/``            TensorBoard's events, with ``TENSORBOARD`` on (a species' worker k: ``tb/w<k>``);
- ``unstored_engrams.jsonl`` only after Milvus stayed unreachable: the finished trials' engrams
                     that could not be stored (one JSON object per engram, the keys of
                     ``memory.EngramColumns``), stored first when the run is resumed.

**Nothing is lost by a start that fails.** ``starting`` checks and prepares everything a run folder
needs before the memory is touched, and undoes it if what follows (dropping the memory) fails:
starting afresh where a run is moves it aside — with its memory to ``<name>_<n>/``, an instance of
its own (``runs.keeping``), or, where the memory is dropped, to ``<name>.1/`` (``.2/``, ... if taken)
— and a resume reads and checks every row of ``trials.csv`` before it writes anything.
"""
from __future__ import annotations

import csv
import dataclasses
import fcntl
import io
import itertools
import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np
import pandas as pd

from resonant_vectors.config import Settings, SettingsError
from resonant_vectors.environments.profiles import profile
from resonant_vectors.errors import ResonantVectorsError
from resonant_vectors.memory.seam import COLUMN_NAMES, EngramColumns, next_in_namespace
from resonant_vectors.processes import process_alive, process_start_time
from resonant_vectors.runs.records import TrialRecord, trial_columns

if TYPE_CHECKING:
    import matplotlib.figure

RUNS_DIR = Path("runs")
COMPARISON_PNG = RUNS_DIR / "comparison.png"  # compare's plot by default: generated files stay under runs/
ROLLING_WINDOW = 100   # trials in the learning curve's rolling mean, as LunarLander's "solved" rule
TRIALS_CSV = "trials.csv"
WORKER_TRIALS_CSV = "trials-w{}.csv"   # worker k >= 1 of a species writes its own rows here
WORKERS_DIR = "workers"                # workers/w<k>.json: who worker k is in Milvus, and whether it ended cleanly
TENSORBOARD_DIR = "tb"                 # TensorBoard's events (TENSORBOARD); a species' worker k: tb/w<k>
SETTINGS_JSON = "settings.json"
RESUME_SETTINGS_JSON = "settings-resume-{}.json"
FIRST_TRIAL_KEY = "first_trial"  # in a resume's settings file: the first trial number that resume flew (worker 0)...
TRIALS_BEFORE_KEY = "trials_before"  # ...and how many trials the run had before it
# The settings that decide what an engram's outcome means: a resume that changes one mixes two rules.
CREDIT_SETTINGS = ("outcome_rule", "discount", "bootstrap_steps", "outcome_reward_scale", "success_weight",
                   "novelty_bonus", "novelty_radius")
SUMMARY_JSON = "summary.json"
CURVE_PNG = "learning_curve.png"
EVALUATION_JSON = "evaluation.json"
KEPT_JSON = "kept.json"        # in a run kept aside with its memory: the instance it was kept from, and when
UNSTORED_JSONL = "unstored_engrams.jsonl"
SUMMARY_LOCK = ".summary.lock"  # held while summary.json is rewritten (a species' members may end at once)
SHARE_LOCK = ".share.lock"      # held while the species' book and the folder's rows are made to agree
MEMORY_JSON = "memory.json"     # the Milvus id of the memory the folder's trials were flown into (runs.shared_rows)
# What a run writes in its folder (a fresh start clears them, keeping others).
RUN_FILES = (TRIALS_CSV, WORKER_TRIALS_CSV.format("*"), SETTINGS_JSON, RESUME_SETTINGS_JSON.format("*"), SUMMARY_JSON,
             CURVE_PNG, EVALUATION_JSON, UNSTORED_JSONL, KEPT_JSON, MEMORY_JSON, f"{WORKERS_DIR}/*",
             TENSORBOARD_DIR)
SECRET_SETTINGS = ("milvus_token",)  # never written into a run folder
# The columns a resume reads, and what each must hold; the others are shown, not relied on.
INTEGER_COLUMNS = ("trial", "worker", "lander", "length", "engrams")
NUMBER_COLUMNS = ("reward", "success", "mean_success", "neighbour_distance", "noise", "wall_time")
# Figures a row may leave unknown (NaN, written as an empty cell): a trial without neighbours has no
# distance, and one recorded from its engrams after its worker was killed (end "recovered") knows
# neither its aim nor its noise. Empty there is not damage.
MAY_BE_UNKNOWN = ("neighbour_distance", "mean_success", "noise")
REQUIRED_COLUMNS = ("trial", "reward", "length", "success", "engrams", "wall_time")
OLD_COLUMN_NAMES = {"landed": "solved"}  # trials.csv of earlier versions said "landed" for LunarLander's 200


class RunFolderError(ResonantVectorsError, ValueError):
    """A run folder is missing, its files cannot be read, or it cannot be written."""


@dataclass
class Start:
    """What a run folder knew when a run started: its earlier trials (a resume; empty afresh), the
    engrams kept from an earlier failure, and where an earlier run was moved aside."""

    earlier: pd.DataFrame
    unstored: EngramColumns
    moved_to: Optional[Path] = None
    credit_changes: List[str] = field(default_factory=list)  # a resume's changes to the credit rule


class RunFolder:
    """The files of one run. Appending keeps what was there: that is how a run is resumed.

    :param path: the folder, e.g. ``runs/lander3``; created when a run starts in it.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def for_instance(cls, instance_name: str, runs_dir: str | Path = RUNS_DIR) -> "RunFolder":
        return cls(Path(runs_dir) / instance_name)

    # --- starting a run ---
    @contextmanager
    def starting(self, settings: Settings, afresh: bool, recovered: Optional[dict] = None,
                 keep_as: Optional[str] = None) -> Iterator[Start]:
        """Prepare this folder for a run, around the one step that changes the memory.

        Before the ``with`` body runs, everything that can fail has been checked: the folder can be
        written, and for a resume every row of ``trials.csv`` and the kept engrams can be read.
        Afresh, the new run's settings are written (to a file of its own in the folder) and the
        earlier run is moved aside: to the sibling ``keep_as`` (made, where there was no folder),
        or, without one, a run with trials to ``<name>.<n>/``. If the body raises (the memory could
        not be set aside or dropped), all of that is undone: the folder is exactly as it was. Only once
        the body succeeded is the new run put in place; a resume then writes its settings, and the
        ``recovered`` trials, which ``Start.earlier`` already counts.

        :param keep_as: afresh, the name the earlier run (and its memory) is kept as.
        :param recovered: a resume's trials that a stopped worker stored but did not write down,
            worker -> records (``species.unrecorded_trials``).
        :raises RunFolderError: the folder cannot be written or read; nothing was changed.
        """
        if afresh:
            with self._starting_afresh(settings, keep_as) as start:
                yield start
            return
        recovered = recovered or {}
        earlier = self._earlier_trials()
        extra = [dataclasses.asdict(record) for records in recovered.values() for record in records]
        if extra:
            earlier = pd.concat([earlier, pd.DataFrame(extra, columns=trial_columns())], ignore_index=True)
        start = Start(earlier, self.unstored(settings.resonator_size))
        yield start
        try:
            for worker, records in recovered.items():
                self.append(records, worker)
                self.worker_ended(worker)
        except OSError as error:
            raise RunFolderError(f"cannot write the run folder {self.path} ({error.strerror or error}); the memory "
                                 "is as it was, and the recovered trials are recovered again at the next resume. "
                                 "Make the folder writable and resume again.") from None
        start.credit_changes = self._write_resume_settings(settings, start)

    @contextmanager
    def _starting_afresh(self, settings: Settings, keep_as: Optional[str]) -> Iterator[Start]:
        pending = self.path / f".{SETTINGS_JSON}.{os.getpid()}"
        created = not self.path.exists()
        aside = self.path.with_name(keep_as) if keep_as else self._free_sibling() if self.has_trials() else None
        made_aside = aside is not None and created  # for a memory that had no run folder
        try:
            if made_aside:
                aside.mkdir(parents=True)
            elif aside is not None:
                self.path.rename(aside)
                created = True
            self.path.mkdir(parents=True, exist_ok=True)
            self._write_settings(pending, settings)
        except OSError as error:
            self._undo_start(pending, created, aside, made_aside)
            raise RunFolderError(f"cannot write the run folder {self.path} ({error.strerror or error}); nothing was "
                                 "changed: the memory and the folder are as they were. Train with --runs-dir on a "
                                 "writable disk, or make it writable.") from None
        try:
            yield Start(pd.DataFrame(columns=trial_columns()), EngramColumns.empty(settings.resonator_size), aside)
        except BaseException:
            self._undo_start(pending, created, aside, made_aside)
            raise
        try:
            for name in RUN_FILES:  # what a run without trials left (its other files stay)
                for path in self.path.glob(name):
                    if path.is_dir():
                        shutil.rmtree(path)
                    else:
                        path.unlink()
            os.replace(pending, self.path / SETTINGS_JSON)
            if keep_as:
                (aside / KEPT_JSON).write_text(json.dumps({"kept_from": self.path.name,
                                                           "kept_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))
        except OSError as error:
            raise RunFolderError(f"the memory was started afresh, but the run folder {self.path} could not be "
                                 f"finished ({error.strerror or error}); its settings are in {pending}. Make the "
                                 "folder writable and train afresh again.") from None

    def _undo_start(self, pending: Path, created: bool, aside: Optional[Path], made_aside: bool) -> None:
        """Put the folder back as it was before ``_starting_afresh`` (what never got written is not
        removed: on a read-only file system even that would fail)."""
        if pending.exists():
            pending.unlink()
        if created and self.path.is_dir():
            shutil.rmtree(self.path)
        if aside is not None and aside.exists():
            if made_aside:
                shutil.rmtree(aside)
            else:
                aside.rename(self.path)

    def _earlier_trials(self) -> pd.DataFrame:
        if not self.path.is_dir():
            return pd.DataFrame(columns=trial_columns())
        return self.trials()

    def _write_resume_settings(self, settings: Settings, start: Start) -> List[str]:
        """Keep the settings of this resume beside the earlier ones (the first run's, if the folder
        had none); return the credit settings it changes (``"OUTCOME_RULE 'reward' -> 'return'"``)."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            earlier = self._settings_files()
            if not earlier:
                self._write_settings(self.path / SETTINGS_JSON, settings)
                return []
            before = self.settings().as_dict()
            first_trial = next_in_namespace(0, start.earlier["trial"].astype(int))
            self._write_settings(self.path / RESUME_SETTINGS_JSON.format(len(earlier)), settings,
                                 {FIRST_TRIAL_KEY: first_trial, TRIALS_BEFORE_KEY: len(start.earlier)})
        except OSError as error:
            raise RunFolderError(f"cannot write the run folder {self.path} ({error.strerror or error}); the "
                                 "memory is as it was. Make the folder writable and resume again.") from None
        now = settings.as_dict()
        return [f"{name.upper()} {before[name]!r} -> {now[name]!r}" for name in CREDIT_SETTINGS
                if before[name] != now[name]]

    def has_trials(self) -> bool:
        """Whether a trials file has a row past its header (read no further: it may be long, or damaged)."""
        for csv_path in self.trial_files():
            with open(csv_path, errors="replace") as handle:
                if len(list(itertools.islice(handle, 2))) > 1:
                    return True
        return False

    def kept_from(self) -> Optional[str]:
        """The instance this run was kept aside from by a fresh start (None: a run of its own)."""
        try:
            return json.loads((self.path / KEPT_JSON).read_text()).get("kept_from")
        except (OSError, ValueError, AttributeError):
            return None

    def trial_files(self) -> List[Path]:
        """trials.csv and each worker's, those that exist."""
        found = [self.path / TRIALS_CSV] if (self.path / TRIALS_CSV).exists() else []
        return found + sorted(self.path.glob(WORKER_TRIALS_CSV.format("*")), key=lambda path: path.name)

    def trials_file(self, worker: int) -> Path:
        """Where worker ``worker`` appends its rows (worker 0: trials.csv)."""
        return self.path / (TRIALS_CSV if worker == 0 else WORKER_TRIALS_CSV.format(worker))

    def new_records(self, worker: int, offset: int) -> Tuple[List[TrialRecord], int]:
        """The rows a worker's file got past byte ``offset`` (whole lines only) as records, and the
        offset after them: how a species' command follows its workers."""
        path = self.trials_file(worker)
        if not path.exists():
            return [], offset
        with open(path, "rb") as handle:
            handle.seek(offset)
            text = handle.read()
        complete = text[:text.rfind(b"\n") + 1]
        lines = [line for line in complete.decode().splitlines() if line and not line.startswith("trial,")]
        return [_record_of(row) for row in csv.DictReader(lines, fieldnames=trial_columns())], offset + len(complete)

    def reserve_worker(self, first: int) -> int:
        """``first``, or the next number after it that no other worker of this folder has: its trials
        file is made, exclusively."""
        self.path.mkdir(parents=True, exist_ok=True)
        worker = first
        while True:
            try:
                with open(self.trials_file(worker), "x", newline="") as handle:
                    csv.DictWriter(handle, fieldnames=trial_columns()).writeheader()
                return worker
            except FileExistsError:
                worker += 1

    @contextmanager
    def sharing(self) -> Iterator[None]:
        """Held while the folder's rows and the species' book are made to agree: two members of one
        machine leaving at once then never take in the same rows twice."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / SHARE_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def memory_of_rows(self) -> Optional[int]:
        """The Milvus id of the memory this folder's trials were flown into, as noted by every start
        of a training and every share with a species' book (None: a folder of a version before)."""
        path = self.path / MEMORY_JSON
        return int(json.loads(path.read_text())["memory"]) if path.exists() else None

    def note_memory_of_rows(self, memory_id: int) -> None:
        _replace_whole(self.path / MEMORY_JSON, lambda path: path.write_text(json.dumps({"memory": memory_id})))

    def events_dir(self, worker: Optional[int] = None) -> Path:
        """Where a training writes its TensorBoard events: ``tb/`` (a species' worker k: ``tb/w<k>``, so
        that the workers' streams never clash and TensorBoard shows each as a run)."""
        return self.path / TENSORBOARD_DIR if worker is None else self.path / TENSORBOARD_DIR / f"w{worker}"

    def worker_started(self, worker: int, writer: int) -> None:
        """Note who worker ``worker`` is in Milvus (its writer stamp), until it ends cleanly."""
        (self.path / WORKERS_DIR).mkdir(exist_ok=True)
        (self.path / WORKERS_DIR / f"w{worker}.json").write_text(json.dumps({"writer": writer, "pid": os.getpid(),
                                                                              "started": process_start_time(),
                                                                              "clean": False}))

    def worker_ended(self, worker: int) -> None:
        path = self.path / WORKERS_DIR / f"w{worker}.json"
        if path.exists():
            path.write_text(json.dumps({**json.loads(path.read_text()), "clean": True}))

    def unclean_workers(self) -> dict:
        """Worker -> writer stamp of each worker that did not end cleanly and whose process is gone
        (killed, say; a worker still flying, a joiner of this machine, is not one)."""
        found = {}
        for path in sorted((self.path / WORKERS_DIR).glob("w*.json")):
            state = json.loads(path.read_text())
            if not state.get("clean") and not process_alive(state.get("pid"), state.get("started")):
                found[int(path.stem[1:])] = int(state["writer"])
        return found

    def _settings_files(self) -> List[Path]:
        """settings.json, then each resume's, in order."""
        first = [self.path / SETTINGS_JSON] if (self.path / SETTINGS_JSON).exists() else []
        resumes = []
        while (self.path / RESUME_SETTINGS_JSON.format(len(resumes) + 1)).exists():
            resumes.append(self.path / RESUME_SETTINGS_JSON.format(len(resumes) + 1))
        return first + resumes

    def saved_settings(self) -> Dict[str, str]:
        """The run's settings files, name -> text (what a run folder on another machine needs to go
        on with the run's settings)."""
        return {path.name: path.read_text() for path in self._settings_files()}

    def take_in_settings(self, files: Dict[str, str]) -> None:
        """Write the run's settings files this folder lacks (one it has is never overwritten)."""
        for name, text in files.items():
            path = self.path / name
            if not path.exists():
                _replace_whole(path, lambda pending, text=text: pending.write_text(text))

    def move_aside(self) -> Optional[Path]:
        """Move whatever is here aside (to ``<name>.<n>/``, as a fresh start moves a run) so that a
        new run of another memory starts here; returns where it went (None: nothing was here)."""
        if not self.path.exists():
            return None
        aside = self._free_sibling()
        try:
            self.path.rename(aside)
        except OSError as error:
            raise RunFolderError(f"cannot move {self.path} aside to {aside} ({error.strerror or error}); it is as it "
                                 "was. Move or rename it yourself, or use another --runs-dir.") from None
        return aside

    def _free_sibling(self) -> Path:
        number = 1
        while self.path.with_name(f"{self.path.name}.{number}").exists():
            number += 1
        return self.path.with_name(f"{self.path.name}.{number}")

    @staticmethod
    def _write_settings(path: Path, settings: Settings, extra: Optional[dict] = None) -> None:
        path.write_text(json.dumps({**_without_secrets(settings.as_dict()), **(extra or {})}, indent=2))

    # --- writing as it goes ---
    def append(self, records: Iterable[TrialRecord], worker: int = 0) -> None:
        """Append trial records to ``trials.csv`` (a worker's to its own file) and flush them to disk."""
        csv_path = self.trials_file(worker)
        new_file = not csv_path.exists()
        with open(csv_path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=trial_columns())
            if new_file:
                writer.writeheader()
            writer.writerows(dataclasses.asdict(record) for record in records)

    def take_in(self, records: Iterable[TrialRecord], worker: int) -> None:
        """Add rows flown elsewhere (a species' book's) to a worker's file, whole or not at all: the
        file is written again beside itself and put in place, so a kill midway leaves it as it was.
        (An append of thousands of rows is many writes, and a kill can cut one; no worker of this
        machine appends to the file meanwhile, for its rows are in its file before the book.)"""
        csv_path = self.trials_file(worker)
        earlier = csv_path.read_text() if csv_path.exists() else ""
        added = io.StringIO()
        writer = csv.DictWriter(added, fieldnames=trial_columns())
        if not earlier:
            writer.writeheader()
        writer.writerows(dataclasses.asdict(record) for record in records)
        _replace_whole(csv_path, lambda pending: pending.write_text(earlier + added.getvalue()))

    def write_summary(self, steps_per_s: Optional[float] = None, engrams: Optional[int] = None) -> dict:
        """Summarise every trial row (all workers' files) into ``summary.json`` and the learning curve
        into a PNG. One writer at a time, each reading the rows once it holds the folder's summary
        lock, and each file replaced whole: of a species' members leaving at once, the last to write
        has read the most rows, and no reader sees half a file.

        :param engrams: the memory's count now (a species' rows each hold what their worker knew then).
        """
        with open(self.path / SUMMARY_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            frame = self.trials()
            result = summarise(frame)
            if steps_per_s is not None:
                result["steps_per_s"] = round(steps_per_s, 1)
            if engrams is not None and len(frame):
                result["engrams"] = int(engrams)
            _replace_whole(self.path / SUMMARY_JSON, lambda path: path.write_text(json.dumps(result, indent=2)))
            if len(frame):
                figure = plot_learning_curves({self.path.name: frame}, self.resume_starts(), self._solved_at())
                _replace_whole(self.path / CURVE_PNG, lambda path: figure.savefig(path, dpi=100, format="png"))
        return result

    def write_evaluation(self, evaluation: dict) -> None:
        (self.path / EVALUATION_JSON).write_text(json.dumps(evaluation, indent=2))

    def keep_unstored(self, engrams: EngramColumns) -> Path:
        """Save engrams that Milvus did not take (with their ids), flushed to disk at once."""
        path = self.path / UNSTORED_JSONL
        with open(path, "a") as handle:
            for row in zip(*(values.tolist() for values in engrams.as_dict().values())):
                handle.write(json.dumps(dict(zip(COLUMN_NAMES, row))) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return path

    def forget_unstored(self) -> None:
        (self.path / UNSTORED_JSONL).unlink(missing_ok=True)

    # --- reading ---
    def trials(self) -> pd.DataFrame:
        """The per-trial metrics so far of every worker (empty if none), in the order they finished,
        every value checked.

        :raises RunFolderError: the folder does not exist, or a row is damaged (the message names it).
        """
        if not self.path.is_dir():
            raise RunFolderError(f"run folder {self.path} does not exist. {_runs_beside(self.path)}")
        frames = [self._trials_of(csv_path) for csv_path in self.trial_files()]
        frames = [frame for frame in frames if len(frame)]
        if not frames:
            return pd.DataFrame(columns=trial_columns())
        if len(frames) == 1:
            return frames[0]
        return pd.concat(frames, ignore_index=True).sort_values(["wall_time", "trial"], kind="stable",
                                                               ignore_index=True)

    def _trials_of(self, csv_path: Path) -> pd.DataFrame:
        try:
            frame = pd.read_csv(csv_path).rename(columns=OLD_COLUMN_NAMES)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise RunFolderError(f"{csv_path} cannot be read as CSV ({error}); restore it, or train afresh "
                                 "(without --keep: this run is then moved aside, not deleted)") from None
        missing = sorted(set(REQUIRED_COLUMNS) - set(frame.columns))
        if missing:
            raise RunFolderError(f"{csv_path} lacks the column(s) {', '.join(missing)}; expected the "
                                 f"columns {', '.join(trial_columns())}")
        return _checked_values(frame, csv_path)

    def unstored(self, dimension: int) -> EngramColumns:
        """The engrams saved by ``keep_unstored`` and not yet stored (none if there are none).

        :param dimension: the resonators' length (of an empty answer).
        :raises RunFolderError: a line of the file is damaged.
        """
        path = self.path / UNSTORED_JSONL
        if not path.exists():
            return EngramColumns.empty(dimension)
        try:
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            columns = {name: [row[name] for row in rows] for name in COLUMN_NAMES}
            columns["next_vector"] = [vector or [0.0] * len(row["vector"]) for vector, row in
                                      zip(columns["next_vector"], rows)]
            return EngramColumns.of(**columns)
        except (ValueError, KeyError, TypeError) as error:
            raise RunFolderError(f"{path} is damaged ({type(error).__name__}: {error}); it holds engrams Milvus "
                                 "did not take. Restore it, or move it aside to resume without them.") from None

    def settings(self) -> Settings:
        """The settings the run last trained with (its latest resume's, else ``settings.json``); a
        setting added since the run was saved takes settings.py's value."""
        saved_files = self._settings_files()
        if not saved_files:
            raise RunFolderError(f"{self.path} has no {SETTINGS_JSON}; is it a run folder?")
        saved = json.loads(saved_files[-1].read_text())
        saved.pop(FIRST_TRIAL_KEY, None)
        saved.pop(TRIALS_BEFORE_KEY, None)
        return Settings.from_dict({**Settings.from_module().as_dict(), **saved})

    def latest_start(self) -> int:
        """How many trials the run had before its latest start (0, or its latest resume's): the rows of
        ``trials()`` from there on are that start's."""
        starts = self.resume_starts()
        return starts[-1] if starts else 0

    def resume_starts(self) -> List[int]:
        """How many trials the run had before each resume (the learning curve's marks). A resume of a
        version before trial namespaces said only its first trial number, which was that count when
        one process trained."""
        starts = []
        for path in self._settings_files()[1:]:
            saved = json.loads(path.read_text())
            before = saved.get(TRIALS_BEFORE_KEY, saved.get(FIRST_TRIAL_KEY))
            if isinstance(before, int):
                starts.append(before)
        return starts

    def _solved_at(self) -> Optional[float]:
        try:
            return self.settings().environment.solved_at
        except (RunFolderError, SettingsError, ValueError):
            return None


def _replace_whole(path: Path, write) -> None:
    """Write a file beside ``path`` and put it in place in one step."""
    pending = path.with_name(f".{path.name}.{os.getpid()}")
    write(pending)
    os.replace(pending, path)


def _record_of(row: dict) -> TrialRecord:
    """A row of a trials file back as a record."""
    kinds = {f.name: f.type for f in dataclasses.fields(TrialRecord)}
    read = {"int": lambda text: int(float(text)), "float": float, "bool": lambda text: text == "True", "str": str}
    return TrialRecord(**{name: read[kinds[name]](row[name]) for name in trial_columns()})


def _checked_values(frame: pd.DataFrame, csv_path: Path) -> pd.DataFrame:
    """Every number where a number belongs, or the first damaged row named."""
    for name in INTEGER_COLUMNS + NUMBER_COLUMNS:
        if name not in frame.columns:
            continue
        numbers = pd.to_numeric(frame[name], errors="coerce")
        bad = numbers.isna() & frame[name].notna() if name in MAY_BE_UNKNOWN else numbers.isna()
        if name in INTEGER_COLUMNS:
            bad |= numbers.notna() & (numbers != numbers.round())
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            kind = "a whole number" if name in INTEGER_COLUMNS else "a number"
            raise RunFolderError(f"{csv_path}, row {row + 1} (line {row + 2}): {name} is {frame[name].iloc[row]!r}, "
                                 f"expected {kind}. Restore the file, or train afresh (without --keep: this run "
                                 "is then moved aside, not deleted).")
        frame[name] = numbers.astype(np.int64) if name in INTEGER_COLUMNS else numbers.astype(float)
    if "solved" in frame.columns:
        frame["solved"] = frame["solved"].astype(str).str.lower().isin(("true", "1"))
    return frame


def _runs_beside(path: Path) -> str:
    """A hint naming the run folders that do exist beside a missing one."""
    parent = path.parent if path.parent.is_dir() else None
    runs = sorted(child.name for child in parent.iterdir() if (child / TRIALS_CSV).exists()) if parent else []
    if runs:
        return (f"Run folders in {path.parent}: {', '.join(runs)}; e.g. "
                f"python main.py compare {path.parent / runs[0]}")
    return f"Train one first (python main.py --instance {path.name}), or check the path."


def _without_secrets(values: dict) -> dict:
    """Settings as saved: a Milvus token is a password, so it stays out of the run folder (reading
    the run back takes the token from settings.py / the environment)."""
    return {name: value for name, value in values.items() if name not in SECRET_SETTINGS}


def summarise(frame: pd.DataFrame) -> dict:
    """The headline figures of a run's trials."""
    if frame.empty:
        return {"trials": 0}
    rewards = frame["reward"].astype(float)
    return {"trials": int(len(frame)), "mean_reward": round(float(rewards.mean()), 2),
            "last100_mean": round(float(rewards.tail(ROLLING_WINDOW).mean()), 2),
            "solved_rate": round(float(frame["solved"].astype(bool).mean()), 4) if "solved" in frame else None,
            "best": round(float(rewards.max()), 2), "engrams": int(frame["engrams"].max()),
            "steps": int(frame["length"].sum())}


def new_figure(**options) -> "matplotlib.figure.Figure":
    """A figure drawn to files by Agg, outside pyplot.

    Why: ``matplotlib.use`` or pyplot would switch or register with the backend of the whole
    process, which a notebook user notices; a ``Figure`` with its own Agg canvas leaves it alone,
    works headless, and is freed like any object (no ``plt.close``).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(**options)
    FigureCanvasAgg(figure)
    return figure


def plot_learning_curves(frames: dict, resume_starts: Iterable[int] = (), solved_at: Optional[float] = 200.0):
    """A matplotlib figure: reward per trial with its rolling mean, and the rolling solved rate.

    :param frames: run name -> per-trial metrics; several runs are overlaid.
    :param frames: run name -> per-trial metrics in the order they finished; several runs are overlaid.
    :param resume_starts: how many trials each resume came after (marked with a dotted line).
    :param solved_at: the environment's "solved" threshold (drawn; None: none).
    """
    figure = new_figure(figsize=(9, 6))
    rewards_axis, solved_axis = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    draw_learning_curves(rewards_axis, solved_axis, frames, resume_starts, solved_at)
    rewards_axis.set_title(f"{' vs '.join(frames)}: reward per trial")
    figure.tight_layout()
    return figure


def draw_learning_curves(rewards_axis, solved_axis, frames: dict, resume_starts: Iterable[int] = (),
                         solved_at: Optional[float] = None) -> None:
    """Draw runs' curves on a pair of axes: the rewards above, the rolling solved rate below (see
    ``plot_learning_curves``); a single run also shows each trial's reward."""
    for name, frame in frames.items():
        ordered = frame.reset_index(drop=True)  # as they finished (trials()): a species' workers' trials interleaved
        finished = ordered.index.to_numpy()
        rolling = ordered["reward"].rolling(ROLLING_WINDOW, min_periods=1).mean()
        line, = rewards_axis.plot(finished, rolling, label=f"{name} (mean of up to {ROLLING_WINDOW} trials)")
        if len(frames) == 1:
            rewards_axis.scatter(finished, ordered["reward"], s=4, alpha=0.3, color=line.get_color())
        solved = ordered["solved"].astype(float) if "solved" in ordered else pd.Series(0.0, index=ordered.index)
        solved_axis.plot(finished, solved.rolling(ROLLING_WINDOW, min_periods=1).mean(), color=line.get_color())
    if solved_at is not None:
        rewards_axis.axhline(solved_at, color="grey", linestyle="--", linewidth=0.8, label=f"solved ({solved_at:g})")
    for number, first in enumerate(resume_starts):
        for axis in (rewards_axis, solved_axis):
            axis.axvline(first - 0.5, color="black", linestyle=":", linewidth=0.8,
                         label="resumed (--keep)" if number == 0 and axis is rewards_axis else None)
    rewards_axis.set_ylabel("reward per trial")
    rewards_axis.legend(loc="lower right")
    solved_axis.set_ylabel(f"solved rate\n(up to {ROLLING_WINDOW})")
    solved_axis.set_xlabel("trials finished")


@dataclass
class Comparison:
    """What ``compare`` found, for a notebook as for the command: runs of one environment only are
    ranked together, so there is a table per environment, and a panel per environment in one PNG.

    :param tables: environment id -> a row per run (its summary), in the order the runs were given.
    :param solved_at: environment id -> its "solved" threshold (None: it names none).
    :param figure: the figure written: per environment a column, the rewards above the solved rate.
    :param plot_path: where the figure was written.
    """

    tables: Dict[str, pd.DataFrame]
    solved_at: Dict[str, Optional[float]]
    figure: "matplotlib.figure.Figure"
    plot_path: Path


def compare(paths: List[str | Path], plot_path: str | Path) -> Comparison:
    """Several runs' summaries and learning curves, grouped by the environment each trained
    (its settings' ``ENV_ID``): a table per environment and one PNG with a panel per environment,
    each with that environment's own "solved" line (``gymnasium``'s ``spec.reward_threshold``)."""
    groups: Dict[str, Dict[str, pd.DataFrame]] = {}
    for folder in (RunFolder(path) for path in paths):
        trials = folder.trials()
        groups.setdefault(folder.settings().env_id, {})[folder.path.name] = trials
    tables = {env_id: pd.DataFrame({name: summarise(frame) for name, frame in frames.items()}).T.convert_dtypes()
              for env_id, frames in groups.items()}
    solved_at = {env_id: profile(env_id).solved_at for env_id in groups}
    figure = plot_comparison(groups, solved_at)
    Path(plot_path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(plot_path, dpi=100)
    return Comparison(tables, solved_at, figure, Path(plot_path))


def plot_comparison(groups: Dict[str, Dict[str, pd.DataFrame]], solved_at: Dict[str, Optional[float]]):
    """A column of panels per environment (its runs overlaid), titled with the environment's id."""
    figure = new_figure(figsize=(7 * len(groups), 6))
    axes = figure.subplots(2, len(groups), squeeze=False, gridspec_kw={"height_ratios": [3, 1]})
    for column, (env_id, frames) in enumerate(groups.items()):
        rewards_axis, solved_axis = axes[0][column], axes[1][column]
        solved_axis.sharex(rewards_axis)
        draw_learning_curves(rewards_axis, solved_axis, frames, solved_at=solved_at[env_id])
        rewards_axis.set_title(env_id)
    figure.tight_layout()
    return figure
