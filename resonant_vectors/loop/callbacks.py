"""What listens to the population loop: progress, the run folder, re-valuation, signals, and yours.

Why its own module: the loop (``loop.population``) flies trials; saving them, showing them, re-valuing
the memory and stopping on Ctrl-C are each a ``population.TrialCallback`` here, so that training,
evaluation and the instinct experiment are the same loop with other callbacks. A callback of your
own subclasses ``TrialCallback`` (``on_start``, ``on_step``, ``on_trial_end`` — return False to
stop —, ``on_end``), as in Stable-Baselines3.
"""
from __future__ import annotations

import dataclasses
import time
from collections import deque
from typing import Callable, Iterable, List, Optional, Sequence, Tuple, Union

import gymnasium
import numpy as np
from tqdm import tqdm

from resonant_vectors.agent.credit import Flight
from resonant_vectors.agent.revaluation import revalue
from resonant_vectors.loop.interrupts import StopRequest
from resonant_vectors.loop.population import PopulationLoop, TrialCallback
from resonant_vectors.memory.ledger import PROGRESS_S
from resonant_vectors.memory.milvus.collection import MilvusUnavailableError
from resonant_vectors.runs.folder import ROLLING_WINDOW, RunFolder
from resonant_vectors.runs.records import TrialRecord


class StopOnSignal(TrialCallback):
    """The first Ctrl-C or SIGTERM stops the loop at its next step (``TrainingInterrupted``): the
    trials in flight are dropped, every finished one was remembered and recorded."""

    def __init__(self) -> None:
        self._request: Optional[StopRequest] = None

    def on_start(self, loop: PopulationLoop) -> None:
        self._request = StopRequest().__enter__()

    def on_step(self, loop: PopulationLoop, landers, actions, rewards) -> None:
        self._request.check()

    def on_end(self, loop: PopulationLoop) -> None:
        if self._request is not None:
            self._request.__exit__(None, None, None)


class ProgressReport(TrialCallback):
    """A progress bar over the trials to fly, with the rolling mean reward and solved rate of the
    run's last ``ROLLING_WINDOW`` trials (those before a resume included), and one printed line per
    trial, unless ``quiet``.

    :param trials: how many trials this run flies.
    :param earlier: the run's trials before this one (a resume), oldest first: (reward, solved).
    :param lines: print a line per trial (else only the bar).
    :param label: the bar's label.
    """

    def __init__(self, trials: int, earlier: Iterable[tuple] = (), lines: bool = True, label: str = "") -> None:
        self.trials, self.lines, self.label = trials, lines, label
        self.recent = deque(earlier, maxlen=ROLLING_WINDOW)
        self._bar: Optional[tqdm] = None

    def on_start(self, loop: PopulationLoop) -> None:
        unit = "trial" if loop.remember is not None else "episode"
        self._bar = tqdm(total=self.trials, unit=unit, desc=self.label or None, leave=False)

    def on_trial_end(self, loop: PopulationLoop, record: TrialRecord, flight: Flight) -> None:
        self.recent.append((record.reward, record.solved))
        if self.lines:
            tqdm.write(trial_line(record, loop.policy.best_success))
        mean_reward, solved_rate = rolling_figures(self.recent)
        self._bar.set_postfix(mean100=f"{mean_reward:.1f}", solved=f"{solved_rate:.0%}", refresh=False)
        self._bar.update(1)

    def on_end(self, loop: PopulationLoop) -> None:
        self._bar.close()


def rolling_figures(recent: Iterable[tuple]) -> Tuple[float, float]:
    """The mean reward and the solved rate of some trials' (reward, solved): the rolling figures
    the progress bar and TensorBoard show."""
    rewards, solved = zip(*recent)
    return float(np.mean(rewards)), float(np.mean(solved))


def trial_line(record: TrialRecord, best_success: Optional[float] = None) -> str:
    """The line printed for a finished trial (with the best success so far, when known)."""
    best = f"  best {best_success:+.3f}" if best_success is not None else ""
    return (f"trial {record.trial:5d}  reward {record.reward:8.1f}  steps {record.length:4d}"
            f"  {'solved' if record.solved else '      '} {record.end:<9s}"
            f"  mean success {record.mean_success:+.3f}{best}"
            f"  engrams {record.engrams:8d}  distance {record.neighbour_distance:.3f}")


class RunFolderLog(TrialCallback):
    """Each finished trial appended to the run folder's ``trials.csv`` (a species' worker: its own
    file) as it ends; the summary and the learning curve written when the loop stops (however it
    stops), unless ``summarise`` is off (a species' command writes them once its workers end).

    :param worker: whose file the rows go to.
    """

    def __init__(self, folder: RunFolder, worker: int = 0, summarise: bool = True) -> None:
        self.folder, self.worker, self.summarise = folder, worker, summarise

    def on_trial_end(self, loop: PopulationLoop, record: TrialRecord, flight: Flight) -> None:
        self.folder.append([record], self.worker)

    def on_end(self, loop: PopulationLoop) -> None:
        if self.summarise:
            self.folder.write_summary(loop.steps / max(loop.seconds, 1e-9))


class Heartbeat(TrialCallback):
    """A species' worker says it is alive in the species ledger every ``PROGRESS_S`` (and when it
    starts), with its count of trials started, and reads the species' count there; when the loop
    stops it leaves, its count kept (``memory.ledger.SpeciesWorker``)."""

    def __init__(self, worker) -> None:
        self.worker, self.every_s = worker, PROGRESS_S
        self._next = 0.0

    def on_start(self, loop: PopulationLoop) -> None:
        self._beat()

    def on_step(self, loop: PopulationLoop, landers, actions, rewards) -> None:
        if time.monotonic() >= self._next:
            self._beat()

    def on_end(self, loop: PopulationLoop) -> None:
        self.worker.leave()

    def _beat(self) -> None:
        self.worker.beat()
        self._next = time.monotonic() + self.every_s


class BookLog(TrialCallback):
    """A species' worker writes its finished trials' rows into the species' book as well
    (``memory.book``), every ``PROGRESS_S`` and as it stops, for its other machines to read. Why
    behind its run folder, in batches: a row a kill loses here is still in the folder, which gives
    it to the book when its species next shares (``runs.shared_rows``), and one request per beat
    costs the server less than one per trial."""

    def __init__(self, book, every_s: float = PROGRESS_S) -> None:
        self.book, self.every_s = book, every_s
        self._rows: List[dict] = []
        self._next = 0.0

    def on_trial_end(self, loop: PopulationLoop, record: TrialRecord, flight: Flight) -> None:
        self._rows.append(dataclasses.asdict(record))

    def on_step(self, loop: PopulationLoop, landers, actions, rewards) -> None:
        if self._rows and time.monotonic() >= self._next:
            self._write()

    def on_end(self, loop: PopulationLoop) -> None:
        try:
            self._write()
        except MilvusUnavailableError:
            pass  # the rows are in the run folder, which gives them to the book at the next share

    def _write(self) -> None:
        rows, self._rows = self._rows, []
        self.book.add(rows)
        self._next = time.monotonic() + self.every_s


class Revaluation(TrialCallback):
    """Every ``REVALUE_EVERY`` finished trials, re-value the memory's outcomes (``agent.revaluation``)."""

    def __init__(self, memory, settings, quiet: bool) -> None:
        self.memory, self.settings, self.quiet = memory, settings, quiet
        self._since = 0

    def on_trial_end(self, loop: PopulationLoop, record: TrialRecord, flight: Flight) -> None:
        self._since += 1
        if self._since < self.settings.revalue_every:
            return
        self._since = 0
        report = revalue(self.memory, self.settings, self.settings.revalue_sweeps)
        if not self.quiet:
            tqdm.write(f"re-valued {report.engrams} engrams in {report.seconds:.1f} s "
                       f"(mean change of an outcome {report.mean_change:.4f})")


class EachTrial(TrialCallback):
    """Calls ``function(record)`` after each trial; its returning False stops the loop (the
    ``callback`` of ``Trainer.train``)."""

    def __init__(self, function: Callable[[TrialRecord], Optional[bool]]) -> None:
        self.function = function

    def on_trial_end(self, loop: PopulationLoop, record: TrialRecord, flight: Flight) -> Optional[bool]:
        return self.function(record)


class FollowLander(TrialCallback):
    """Calls ``function(env, action, reward)`` after each step of one lander (while it flies a
    trial): how ``watch`` records the very flight ``evaluate`` scores.

    :param lander: which lander to follow (0: the one that renders).
    """

    def __init__(self, function: Callable[[gymnasium.Env, int, float], None], lander: int = 0) -> None:
        self.function, self.lander = function, lander

    def on_step(self, loop: PopulationLoop, landers: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        position = np.flatnonzero(landers == self.lander)
        if len(position):
            self.function(loop.envs.envs[self.lander], int(actions[position[0]]), float(rewards[position[0]]))


TrainCallback = Union[Callable[[TrialRecord], Optional[bool]], TrialCallback,
                      Sequence[Union[Callable[[TrialRecord], Optional[bool]], TrialCallback]], None]


def as_callbacks(callback: TrainCallback) -> List[TrialCallback]:
    """``Trainer.train``'s ``callback`` as the loop's listeners: a function of each trial's record, a
    ``TrialCallback``, or a list of either (as Stable-Baselines3's ``learn`` takes them)."""
    if callback is None:
        return []
    if isinstance(callback, TrialCallback):
        return [callback]
    if callable(callback):
        return [EachTrial(callback)]
    if isinstance(callback, (list, tuple)):
        return [listener for each in callback for listener in as_callbacks(each)]
    raise TypeError(f"callback: expected a function of a TrialRecord, a TrialCallback or a list of them, "
                    f"got {callback!r}")
