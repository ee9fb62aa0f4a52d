"""``TensorBoardLog``: each finished trial as TensorBoard scalars, for a live view of training.

Why its own module: TensorBoard is an optional extra (``pip install -e ".[tensorboard]"``), so the
one module that imports its writer (``tensorboardX``) is the one that needs it; the Trainer only
adds this callback when ``TENSORBOARD`` is on. The events go beside ``trials.csv`` in the run
folder (``runs/<instance>/tb/``; a species' worker k: ``tb/w<k>``), so ``tensorboard --logdir runs``
shows every run, and a run kept aside takes its events with it.
"""
from __future__ import annotations

import math
from collections import Counter, deque
from pathlib import Path
from typing import Iterable, Optional

from resonant_vectors.agent.credit import Flight
from resonant_vectors.config import Settings
from resonant_vectors.environments.profiles import END_CAUSES
from resonant_vectors.errors import ResonantVectorsError
from resonant_vectors.loop.callbacks import rolling_figures
from resonant_vectors.loop.population import PopulationLoop, TrialCallback
from resonant_vectors.runs.folder import ROLLING_WINDOW, SECRET_SETTINGS
from resonant_vectors.runs.records import TrialRecord

try:
    from tensorboardX import SummaryWriter
    from tensorboardX.summary import hparams
except ImportError:  # the optional extra is not installed: require_writer says how to install it
    SummaryWriter = hparams = None

FLUSH_EVERY_S = 5  # the live view lags training by at most this (tensorboardX's default is 2 minutes)
INSTALL_COMMAND = 'python -m pip install -e ".[tensorboard]"'
# Scalars the hparams dashboard shows beside each run's settings (their last values).
HPARAM_METRICS = ("train/rolling_mean_reward", "train/solved_rate")


class TensorBoardMissingError(ResonantVectorsError, ImportError):
    """``TENSORBOARD`` is on, and its writer (``tensorboardX``) is not installed."""


def require_writer() -> None:
    """Refuse ``TENSORBOARD`` without its writer before a training touches the memory.

    :raises TensorBoardMissingError: naming what is missing and the command that installs it.
    """
    if SummaryWriter is None:
        raise TensorBoardMissingError(
            f"--tensorboard (TENSORBOARD = True) needs the package tensorboardX, which is not installed. "
            f"Install the extra: {INSTALL_COMMAND} (or: python -m pip install tensorboardX tensorboard), "
            "or train without it (--no-tensorboard).")


class TensorBoardLog(TrialCallback):
    """Writes each finished trial as scalars at step = its place in the run (its trial number in a run
    of one process started once; a species: the species' trials started before it), and the run's settings as
    hyperparameters (the HPARAMS tab), into one event stream of the run folder.

    - ``train/reward``, ``train/length``, ``train/success``, ``train/solved`` (0 or 1): the trial's own;
    - ``train/rolling_mean_reward``, ``train/solved_rate``: of the run's last ``ROLLING_WINDOW`` trials
      (those before a resume included), as the progress bar shows them;
    - ``memory/engrams``, ``memory/neighbour_distance``: the memory once the trial was stored, and how
      near its decisions' neighbours were (none written for a trial that had none);
    - ``speed/steps_per_s``: decisions per second since this training started;
    - ``ends/<cause>``: how many trials of this training ended so (``environments.profiles.END_CAUSES``).

    :param events: the stream's folder (``RunFolder.events_dir``).
    :param earlier: the run's trials before this training (a resume), oldest first: (reward, solved).
    """

    def __init__(self, events: Path, settings: Settings, earlier: Iterable[tuple] = ()) -> None:
        require_writer()
        self.events, self.settings = Path(events), settings
        self.recent = deque(earlier, maxlen=ROLLING_WINDOW)
        self.ends: Counter = Counter()
        self._writer: Optional[SummaryWriter] = None
        self._session_end = None

    def on_start(self, loop: PopulationLoop) -> None:
        self._writer = SummaryWriter(logdir=str(self.events), flush_secs=FLUSH_EVERY_S)
        experiment, session_start, self._session_end = hparams(hparam_values(self.settings),
                                                               dict.fromkeys(HPARAM_METRICS, 0.0))
        self._writer.file_writer.add_summary(experiment)
        self._writer.file_writer.add_summary(session_start)

    def on_trial_end(self, loop: PopulationLoop, record: TrialRecord, flight: Flight) -> None:
        self.recent.append((record.reward, record.solved))
        self.ends[record.end] += 1
        mean_reward, solved_rate = rolling_figures(self.recent)
        seconds = loop.wall_time - loop.clock_offset
        scalars = {"train/reward": record.reward, "train/length": record.length, "train/success": record.success,
                   "train/solved": float(record.solved), "train/rolling_mean_reward": mean_reward,
                   "train/solved_rate": solved_rate, "memory/engrams": record.engrams,
                   "memory/neighbour_distance": record.neighbour_distance,
                   "speed/steps_per_s": loop.steps / max(seconds, 1e-9),
                   **{f"ends/{cause}": self.ends[cause] for cause in END_CAUSES}}
        for tag, value in scalars.items():
            if math.isfinite(value):  # a figure the trial does not know (no neighbours: no distance) is left out
                self._writer.add_scalar(tag, value, flight.progress)

    def on_end(self, loop: PopulationLoop) -> None:
        if self._writer is not None:
            self._writer.file_writer.add_summary(self._session_end)
            self._writer.close()


def hparam_values(settings: Settings) -> dict:
    """The settings as the hparams dashboard takes them (numbers, strings, booleans): None and lists
    as their text, so that every setting shows; a Milvus token never."""
    return {name: value if isinstance(value, (bool, int, float, str)) else str(value)
            for name, value in settings.as_dict().items() if name not in SECRET_SETTINGS}
