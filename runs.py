"""Run folders: where an experiment's settings, per-trial metrics, summary and plots are kept.

Why its own module: saving, reading, summarising and plotting results is one responsibility that
the Trainer, ``main.py`` and notebooks share. A run folder ``runs/<instance>/`` holds

- ``settings.json``  the settings the run started with (lowercase names, as ``config.Settings``);
- ``settings-resume-<n>.json`` the settings of its n-th resume (``--keep``), so that no run's
                     settings are lost; evaluate and watch read the latest;
- ``trials.csv``     one row per finished trial, appended and flushed as training goes, so a crash
                     leaves everything finished before it (``wall_time``: seconds of training up to
                     the trial's end, counted on across ``train()`` calls and resumes);
- ``summary.json``   trials, mean reward, last-100 mean, landing rate, best, engrams, steps/s;
- ``learning_curve.png``  reward per trial, its rolling mean of 100, and the landing rate;
- ``evaluation.json`` the last deterministic evaluation, when one was made;
- ``unstored_engrams.jsonl`` only after Milvus stayed unreachable: the finished trials' engrams
                     that could not be stored, stored first when the run is resumed.

Starting a run afresh where one has trials moves the earlier folder aside to ``<name>.1/``
(``.2/``, ... if taken): nothing is deleted.
"""
from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, List, Optional

import pandas as pd

from config import Settings
from engram import Engram

if TYPE_CHECKING:
    import matplotlib.figure

RUNS_DIR = Path("runs")
COMPARISON_PNG = RUNS_DIR / "comparison.png"  # compare's plot by default: generated files stay under runs/
ROLLING_WINDOW = 100   # trials in the learning curve's rolling mean, as LunarLander's "solved" rule
TRIALS_CSV = "trials.csv"
SETTINGS_JSON = "settings.json"
RESUME_SETTINGS_JSON = "settings-resume-{}.json"
# The settings that decide what an engram's outcome means: a resume that changes one mixes two rules.
CREDIT_SETTINGS = ("outcome_rule", "discount", "bootstrap_steps", "outcome_reward_scale", "success_weight")
SUMMARY_JSON = "summary.json"
CURVE_PNG = "learning_curve.png"
EVALUATION_JSON = "evaluation.json"
UNSTORED_JSONL = "unstored_engrams.jsonl"
SECRET_SETTINGS = ("milvus_token",)  # never written into a run folder


class RunFolderError(ValueError):
    """A run folder is missing or its files cannot be read."""


@dataclass
class TrialRecord:
    """The figures of one finished trial (one row of the run's metrics)."""

    trial: int
    lander: int
    reward: float
    length: int
    landed: bool
    died: bool
    success: float
    mean_success: float
    engrams: int
    neighbour_distance: float
    noise: float
    wall_time: float


def trial_columns() -> List[str]:
    """The columns of ``trials.csv``: the fields of ``TrialRecord``."""
    return [f.name for f in dataclasses.fields(TrialRecord)]


class RunFolder:
    """The files of one run. Appending keeps what was there: that is how a run is resumed.

    :param path: the folder, e.g. ``runs/lander3``; created on the first write.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def for_instance(cls, instance_name: str, runs_dir: str | Path = RUNS_DIR) -> "RunFolder":
        return cls(Path(runs_dir) / instance_name)

    def start_afresh(self, settings: Settings) -> Optional[Path]:
        """Begin a new run here with ``settings``. An earlier run with trials is moved aside (the
        path it went to is returned); the leftovers of one without trials are removed."""
        moved = None
        if self._has_trials():
            moved = self._free_sibling()
            self.path.rename(moved)
        elif self.path.is_dir():
            for path in [*self._settings_files(), *(self.path / name for name in (
                    TRIALS_CSV, SUMMARY_JSON, CURVE_PNG, EVALUATION_JSON, UNSTORED_JSONL))]:
                path.unlink(missing_ok=True)
        self.path.mkdir(parents=True, exist_ok=True)
        self._write_settings(self.path / SETTINGS_JSON, settings)
        return moved

    def start_resume(self, settings: Settings) -> List[str]:
        """Keep the settings of this resume beside the earlier ones; return the credit settings it
        changes (``"OUTCOME_RULE 'reward' -> 'return'"``), none if it changes none."""
        self.path.mkdir(parents=True, exist_ok=True)
        earlier = self._settings_files()
        if not earlier:
            self._write_settings(self.path / SETTINGS_JSON, settings)
            return []
        before = self.settings().as_dict()
        self._write_settings(self.path / RESUME_SETTINGS_JSON.format(len(earlier)), settings)
        now = settings.as_dict()
        return [f"{name.upper()} {before[name]!r} -> {now[name]!r}" for name in CREDIT_SETTINGS
                if before[name] != now[name]]

    def _has_trials(self) -> bool:
        """Whether trials.csv has a row past its header (read no further: it may be long, or damaged)."""
        csv_path = self.path / TRIALS_CSV
        if not csv_path.exists():
            return False
        with open(csv_path, errors="replace") as handle:
            return len(list(itertools.islice(handle, 2))) > 1

    def _settings_files(self) -> List[Path]:
        """settings.json, then each resume's, in order."""
        first = [self.path / SETTINGS_JSON] if (self.path / SETTINGS_JSON).exists() else []
        resumes = []
        while (self.path / RESUME_SETTINGS_JSON.format(len(resumes) + 1)).exists():
            resumes.append(self.path / RESUME_SETTINGS_JSON.format(len(resumes) + 1))
        return first + resumes

    def _free_sibling(self) -> Path:
        number = 1
        while self.path.with_name(f"{self.path.name}.{number}").exists():
            number += 1
        return self.path.with_name(f"{self.path.name}.{number}")

    @staticmethod
    def _write_settings(path: Path, settings: Settings) -> None:
        path.write_text(json.dumps(_without_secrets(settings.as_dict()), indent=2))

    def append(self, records: Iterable) -> None:
        """Append trial records to ``trials.csv`` and flush them to disk."""
        csv_path = self.path / TRIALS_CSV
        new_file = not csv_path.exists()
        with open(csv_path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=trial_columns())
            if new_file:
                writer.writeheader()
            writer.writerows(dataclasses.asdict(record) for record in records)

    def trials(self) -> pd.DataFrame:
        """The per-trial metrics so far (empty if none)."""
        csv_path = self.path / TRIALS_CSV
        if not self.path.is_dir():
            raise RunFolderError(f"run folder {self.path} does not exist; train first "
                                 f"(python main.py --instance {self.path.name}) or check the path")
        if not csv_path.exists():
            return pd.DataFrame(columns=trial_columns())
        try:
            frame = pd.read_csv(csv_path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise RunFolderError(f"{csv_path} cannot be read as CSV ({error}); restore it or start the "
                                 "run afresh") from None
        missing = sorted(set(trial_columns()) - set(frame.columns))
        if missing:
            raise RunFolderError(f"{csv_path} lacks the column(s) {', '.join(missing)}; expected the "
                                 f"columns {', '.join(trial_columns())}")
        return frame

    def settings(self) -> Settings:
        """The settings the run last trained with (its latest resume's, else ``settings.json``); a
        setting added since the run was saved takes settings.py's value."""
        saved_files = self._settings_files()
        if not saved_files:
            raise RunFolderError(f"{self.path} has no {SETTINGS_JSON}; is it a run folder?")
        saved = json.loads(saved_files[-1].read_text())
        return Settings.from_dict({**Settings.from_module().as_dict(), **saved})

    def write_summary(self, steps_per_s: Optional[float] = None) -> dict:
        """Summarise ``trials.csv`` into ``summary.json`` and the learning curve into a PNG."""
        frame = self.trials()
        result = summarise(frame)
        if steps_per_s is not None:
            result["steps_per_s"] = round(steps_per_s, 1)
        (self.path / SUMMARY_JSON).write_text(json.dumps(result, indent=2))
        if len(frame):
            figure = plot_learning_curves({self.path.name: frame})
            figure.savefig(self.path / CURVE_PNG, dpi=100)
        return result

    def write_evaluation(self, evaluation: dict) -> None:
        (self.path / EVALUATION_JSON).write_text(json.dumps(evaluation, indent=2))

    def keep_unstored(self, engrams: List[Engram]) -> Path:
        """Save engrams that Milvus did not take (with their ids), flushed to disk at once."""
        path = self.path / UNSTORED_JSONL
        with open(path, "a") as handle:
            for engram in engrams:
                handle.write(json.dumps(dataclasses.asdict(engram)) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return path

    def unstored(self) -> List[Engram]:
        """The engrams saved by ``keep_unstored`` and not yet stored (none if there are none)."""
        path = self.path / UNSTORED_JSONL
        if not path.exists():
            return []
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [Engram(**{**row, "vector": tuple(row["vector"]),
                          "next_vector": None if row.get("next_vector") is None else tuple(row["next_vector"])})
                for row in rows]

    def forget_unstored(self) -> None:
        (self.path / UNSTORED_JSONL).unlink(missing_ok=True)


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
            "landing_rate": round(float(frame["landed"].astype(bool).mean()), 4),
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


def plot_learning_curves(frames: dict):
    """A matplotlib figure: reward per trial with its rolling mean, and the rolling landing rate.

    :param frames: run name -> per-trial metrics; several runs are overlaid.
    """
    figure = new_figure(figsize=(9, 6))
    rewards_axis, landing_axis = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for name, frame in frames.items():
        ordered = frame.sort_values("trial")
        rolling = ordered["reward"].rolling(ROLLING_WINDOW, min_periods=1).mean()
        line, = rewards_axis.plot(ordered["trial"], rolling, label=f"{name} (mean of {ROLLING_WINDOW})")
        if len(frames) == 1:
            rewards_axis.scatter(ordered["trial"], ordered["reward"], s=4, alpha=0.3, color=line.get_color())
        landing_axis.plot(ordered["trial"], ordered["landed"].astype(float).rolling(ROLLING_WINDOW, min_periods=1)
                          .mean(), color=line.get_color())
    rewards_axis.axhline(200, color="grey", linestyle="--", linewidth=0.8)
    rewards_axis.set_ylabel("reward per trial")
    rewards_axis.legend(loc="lower right")
    landing_axis.set_ylabel("landing rate")
    landing_axis.set_xlabel("trial")
    figure.tight_layout()
    return figure


def compare(paths: List[str | Path], plot_path: str | Path) -> pd.DataFrame:
    """A table of several runs' summaries, and one PNG with their learning curves overlaid."""
    folders = [RunFolder(path) for path in paths]
    frames = {folder.path.name: folder.trials() for folder in folders}
    table = pd.DataFrame({name: summarise(frame) for name, frame in frames.items()}).T.convert_dtypes()
    Path(plot_path).parent.mkdir(parents=True, exist_ok=True)
    plot_learning_curves(frames).savefig(plot_path, dpi=100)
    return table
