"""``Trainer``: LunarLander trials that teach an ``EngramBrain`` by leaving engrams in its memory."""
from __future__ import annotations

import math
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Callable, List, Optional

import gymnasium
import numpy as np
import pandas as pd
from tqdm import tqdm

from config import Settings
from credit import step_outcomes, trial_success, value_in_reward_units
from claims import CollectionClaim
from engram import (Engram, EngramError, EngramsNotStoredError, EngramStore, MilvusUnavailableError, connect,
                    retried)
from EngramBrain import EngramBrain
from gym.lander_environment import make_lander, normalise, render_mode_for
from interrupts import StopRequest
from policy import Policy
from revaluation import revalue
from runs import ROLLING_WINDOW, RunFolder, TrialRecord, trial_columns

LANDING_REWARD = 200.0         # LunarLander counts an episode of 200 or more as solved


class MemoryNotFoundError(EngramError):
    """A memory was to be read (evaluate, watch, read-only training) but no collection has its name;
    nothing was created."""


@dataclass
class _Lander:
    """One lander's trial in progress: its environment, hit points and feedback queue."""

    index: int
    env: object
    observation: Optional[np.ndarray] = None
    trial: int = -1
    hit_points: float = 0.0
    total_reward: float = 0.0
    noise: float = 0.0
    epsilon: float = 0.0
    states: List[np.ndarray] = field(default_factory=list)
    actions: List[int] = field(default_factory=list)
    rewards: List[float] = field(default_factory=list)
    distances: List[float] = field(default_factory=list)
    values: List[float] = field(default_factory=list)
    terminated: bool = False

    @property
    def flying(self) -> bool:
        return self.trial >= 0


class Trainer:
    """Trains an ``EngramBrain`` on LunarLander-v3 by trial and memory.

    **A trial.** A lander starts with ``HIT_POINTS``; each step it asks the brain for an action
    (aiming at the population's running mean success + ``SUCCESS_MARGIN``), acts, and queues
    (state, action, reward). With ``USE_HIT_POINTS``, each step costs ``reward - METABOLIC_COST``
    hit points and falling below 0 ends the trial as a death. A trial also ends when the lander
    crashes or comes to rest, or after ``MAX_TRIAL_LENGTH`` steps.

    **Memory.** When a trial ends its queue is flushed in one insert: each step becomes an engram
    whose vector carries the trial's success ``s = clip(reward, ±300) / 300`` and whose outcome is
    ``clip(clip(r / OUTCOME_REWARD_SCALE, ±1) · (1 + SUCCESS_WEIGHT · s), ±1)``, where ``r`` is the
    step's reward, or with ``OUTCOME_RULE = "return"`` the discounted return from that step to the
    trial's end (``DISCOUNT``). With ``READ_ONLY`` nothing is stored (and the collection is never
    dropped). ``NOISE_FINAL`` turns the decision noise into a schedule over trial numbers.

    **Population.** ``POPULATION_SIZE`` landers fly at once on one shared memory, each with its own
    trial, hit points and queue; each step makes one search request for all of them. Success
    statistics (the running mean over ``SUCCESS_WINDOW`` trials and the best) are the population's.
    Size 1 is the seed's behaviour: every search sees the previous trial's engrams ("Session").
    A population's searches do not wait for the latest inserts ("Eventually"): a finished trial's
    engrams reach the others a server time tick later. Waiting cost 20% of a population of 32's
    throughput here (704 vs 873 steps/s), and a species does not need the last few milliseconds.

    **Metrics.** ``metrics`` holds a ``TrialRecord`` per finished trial (``metrics_frame()`` gives a
    pandas DataFrame); one line is printed per trial under a progress bar, unless ``quiet``. With a
    ``run_folder``, each trial is appended to its CSV as it finishes and the summary and learning
    curve are written when ``train`` returns (or fails).

    **Faults.** Requests to a Milvus that is down or restarting are retried for
    ``MILVUS_RETRY_TIMEOUT`` seconds (see ``EngramStore``), so a restart costs a pause, not the run.
    If it stays down, ``train`` raises ``MilvusUnavailableError``: the trials in flight are lost, and
    engrams of finished trials that could not be stored are kept (``unstored``, and the run folder's
    ``unstored_engrams.jsonl``) and stored first when training resumes. One Trainer at a time may
    write a collection (``CollectionInUseError`` for a second one on the same machine).

    **Reading never creates.** A read-only Trainer on a collection that does not exist raises
    ``MemoryNotFoundError`` naming the collections that do; nothing is created.

    **Resume.** Keeping the collection (``clear_collection=False``) keeps the memory; with a run
    folder, training continues where it stopped: trial numbers go on after the last trial saved
    there, the success window and best come back from its ``trials.csv``, and ``wall_time`` goes on
    counting. Starting afresh on a run folder that has trials moves them aside (``runs/<name>.1/``)
    and says so, with the number of engrams dropped.

    **Closing.** ``close()`` (or leaving ``with Trainer(...) as trainer:``) seals the engrams,
    closes the environments and frees the collection for another Trainer.

    :param instance_name: names the run and its collection (``INSTANCE_NAME``).
    :param clear_collection: start from an empty memory (``DROP_COLLECTION``).
    :param settings: the run's settings; ``settings.py`` by default.
    :param quiet: print nothing per trial and show no progress bar.
    :param run_folder: where to save the run (see ``runs.py``); nothing is saved without one.
    :param on_step: called after each step of lander 0 with its environment, the action and the
        reward: how ``watch`` records the very flight that ``evaluate`` scores.
    :param render_mode: lander 0's render mode (``"human"``, ``"rgb_array"``); by default a window
        when ``DISPLAY`` is on and there is a display.
    """

    def __init__(self, instance_name: Optional[str] = None, clear_collection: Optional[bool] = None,
                 settings: Optional[Settings] = None, quiet: bool = False,
                 run_folder: Optional[RunFolder] = None,
                 on_step: Optional[Callable[[gymnasium.Env, int, float], None]] = None,
                 render_mode: Optional[str] = None) -> None:
        settings = (settings or Settings.from_module()).replace(
            **{k: v for k, v in (("instance_name", instance_name), ("drop_collection", clear_collection))
               if v is not None})
        self.settings = settings
        self.quiet = quiet
        self.on_step = on_step
        self._claim = None if settings.read_only else CollectionClaim.take(settings)
        try:
            self._start(run_folder, render_mode)
        except BaseException:
            self._abandon()  # a Trainer that failed to start keeps neither the collection nor the server
            raise

    def _start(self, run_folder: Optional[RunFolder], render_mode: Optional[str]) -> None:
        settings = self.settings
        engrams_dropped = self._open_store()
        self.rng = np.random.default_rng(settings.seed)
        self.brain = EngramBrain.from_settings(settings, self.store, self.rng)
        self.policy = Policy(self.brain, settings)
        self._trials_since_revaluation = 0
        render_mode = render_mode or render_mode_for(settings.display)
        self.landers = [_Lander(i, make_lander(settings, render_mode if i == 0 else None))
                        for i in range(settings.population_size)]
        self.metrics: List[TrialRecord] = []
        self.recent_success = deque(maxlen=settings.success_window)
        self.best_success = -math.inf
        self.engram_count = self.store.get_count()
        self.steps_taken = 0
        self.steps_per_s = float("nan")     # of the last train() call: the rate printed and saved
        self.trials_per_min = float("nan")
        self._trained_seconds = 0.0          # wall_time of the trials before this train() call
        self.run_folder = run_folder
        self.unstored: List[Engram] = []
        self._milvus_failed = False
        self.next_trial = 0
        if run_folder is not None:
            self.next_trial = self._resume_from(run_folder, engrams_dropped)
        elif engrams_dropped:
            print(f"{settings.instance_name}: starting afresh, dropped its {engrams_dropped} engrams "
                  "(keep them with clear_collection=False / --keep).", file=sys.stderr)

    def _abandon(self) -> None:
        for lander in getattr(self, "landers", []):
            lander.env.close()
        if hasattr(self, "store"):
            self.store.close()
        self._release_claim()

    def __enter__(self) -> "Trainer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _open_store(self) -> int:
        """Open the collection: a reader only an existing one, a fresh start after emptying it.
        Returns how many engrams a fresh start dropped (counted before they go)."""
        settings = self.settings
        consistency = "Session" if settings.population_size == 1 else "Eventually"
        client = connect(settings)
        exists = retried(settings, "looking for the memory", lambda: client.has_collection(settings.instance_name))
        if settings.read_only and not exists:
            raise MemoryNotFoundError(_no_such_memory(settings, client.list_collections()))
        fresh = settings.drop_collection and not settings.read_only
        self.store = EngramStore(settings.instance_name, reset=fresh, settings=settings, client=client,
                                 consistency=consistency)
        return self.store.engrams_dropped

    def _resume_from(self, run_folder: RunFolder, engrams_dropped: int) -> int:
        """Start the run folder; the number of the first trial to fly. A fresh start moves earlier
        trials aside; a resume restores the success window, best and wall time from them."""
        if self.settings.drop_collection:
            moved = run_folder.start_afresh(self.settings)
            if moved is not None or engrams_dropped:
                kept = f"; its earlier run is kept in {moved}/" if moved is not None else ""
                print(f"{self.settings.instance_name}: starting afresh, dropped its {engrams_dropped} engrams{kept} "
                      "(--keep resumes instead).", file=sys.stderr)
            return 0
        earlier = run_folder.trials() if run_folder.path.is_dir() else pd.DataFrame(columns=trial_columns())
        self.unstored = run_folder.unstored()
        changed = run_folder.start_resume(self.settings)
        if changed:
            print(f"{self.settings.instance_name}: this resume changes the credit rule ({'; '.join(changed)}): "
                  "engrams stored before and after it are credited differently.", file=sys.stderr)
        if earlier.empty:
            return 0
        self.recent_success.extend(earlier["success"].astype(float))  # rows are in finishing order
        self.best_success = float(earlier["success"].max())
        self._trained_seconds = float(earlier["wall_time"].max())
        return int(earlier["trial"].max()) + 1

    @property
    def mean_success(self) -> float:
        """The running mean success of the last ``SUCCESS_WINDOW`` trials (0 before any)."""
        return float(np.mean(self.recent_success)) if self.recent_success else 0.0

    def train(self, trials: int, callback: Optional[Callable[[TrialRecord], Optional[bool]]] = None) -> float:
        """Run ``trials`` trials (counted across the population) and return their mean reward.

        :param callback: called with each finished trial's record; returning ``False`` stops
            training once the trials in flight have finished.
        :raises TrainingInterrupted: on Ctrl-C or SIGTERM, at the next step; the trials in flight
            are dropped, every finished one is stored and saved (a second signal stops at once).
        """
        if not isinstance(trials, int) or isinstance(trials, bool) or trials < 0:
            raise ValueError(f"trials: expected a whole number >= 0, got {trials!r}")
        self._store_unstored()
        first, steps_before = len(self.metrics), self.steps_taken
        to_start = list(range(self.next_trial, self.next_trial + trials))[::-1]
        self._started = time.monotonic()
        self._progress = tqdm(total=trials, unit="trial", disable=self.quiet, leave=False)
        with StopRequest() as stop_request:
            try:
                for lander in self.landers:
                    self._start_trial(lander, to_start)
                while any(lander.flying for lander in self.landers):
                    stop_request.check()
                    finished = self._step_all()
                    stop = self._finish(finished, callback)
                    for lander in finished:
                        self._start_trial(lander, [] if stop else to_start)
                    if stop:
                        to_start.clear()
            except MilvusUnavailableError:
                self._milvus_failed = True  # so that close() does not wait for it once more
                raise
            finally:
                self._progress.close()
                seconds = max(time.monotonic() - self._started, 1e-9)
                self._trained_seconds += seconds
                self.steps_per_s = round((self.steps_taken - steps_before) / seconds, 1)
                self.trials_per_min = round(60 * (len(self.metrics) - first) / seconds, 1)
                if self.run_folder is not None:
                    self.run_folder.write_summary(self.steps_per_s)
        rewards = [record.reward for record in self.metrics[first:]]
        return float(np.mean(rewards)) if rewards else float("nan")

    def metrics_frame(self) -> pd.DataFrame:
        """The finished trials as a pandas DataFrame, one row each."""
        return pd.DataFrame([asdict(record) for record in self.metrics], columns=trial_columns())

    def close(self) -> None:
        """Seal the stored engrams (durable before the embedded server is stopped), close the
        environments and their windows, let another Trainer train this collection, and close the
        store (the last closed store of a process gives up its share of the embedded server)."""
        try:
            if not self.settings.read_only and not self._milvus_failed:
                self.store.flush()
        finally:
            for lander in self.landers:
                lander.env.close()
            self._release_claim()
            self.store.close()

    def _release_claim(self) -> None:
        if self._claim is not None:
            self._claim.release()
            self._claim = None

    def _start_trial(self, lander: _Lander, to_start: List[int]) -> None:
        if not to_start:
            lander.trial = -1
            return
        lander.trial = to_start.pop()
        self.next_trial = lander.trial + 1  # trials start in order, so this is the highest started
        seed = None if self.settings.seed is None else self.settings.seed + lander.trial
        lander.observation, _ = lander.env.reset(seed=seed)
        lander.hit_points = float(self.settings.hit_points)
        lander.total_reward = 0.0
        lander.noise, lander.epsilon = self.policy.exploration(lander.trial)
        for queue in (lander.states, lander.actions, lander.rewards, lander.distances, lander.values):
            queue.clear()

    def _step_all(self) -> List[_Lander]:
        """One decision for every flying lander (one search), one step each; returns those done."""
        flying = [lander for lander in self.landers if lander.flying]
        states = normalise(np.stack([lander.observation for lander in flying]))
        decision = self.policy.act(states, np.array([lander.noise for lander in flying]),
                                   np.array([lander.epsilon for lander in flying]), self.mean_success)
        values = value_in_reward_units(decision.consultation.best_value, decision.query_success, self.settings)
        done = []
        for lander, state, action, distance, value in zip(flying, states, decision.actions,
                                                          decision.consultation.neighbour_distance, values):
            lander.values.append(float(value))
            if self._step(lander, state, int(action), float(distance)):
                done.append(lander)
        self.steps_taken += len(flying)
        return done

    def _step(self, lander: _Lander, state: np.ndarray, action: int, distance: float) -> bool:
        """Act, queue the feedback, and say whether the trial is over."""
        lander.observation, reward, terminated, truncated, _ = lander.env.step(action)
        lander.terminated = bool(terminated)
        lander.states.append(state)
        lander.actions.append(action)
        lander.rewards.append(float(reward))
        lander.distances.append(distance)
        lander.total_reward += float(reward)
        if self.on_step is not None and lander.index == 0:
            self.on_step(lander.env, action, float(reward))
        lander.hit_points += float(reward) - self.settings.metabolic_cost
        return (terminated or truncated or self._died(lander)
                or len(lander.actions) >= self.settings.max_trial_length)

    def _died(self, lander: _Lander) -> bool:
        return self.settings.use_hit_points and lander.hit_points < 0

    def _finish(self, finished: List[_Lander], callback) -> bool:
        """Store the finished trials' engrams in one request, record them; True to stop training."""
        if not finished:
            return False
        successes = [trial_success(lander.total_reward) for lander in finished]
        engrams = [] if self.settings.read_only else [
            engram for lander, s in zip(finished, successes) for engram in self._engrams(lander, s)]
        not_stored = self._store(engrams)
        records = []
        for lander, success in zip(finished, successes):
            self.recent_success.append(success)
            self.best_success = max(self.best_success, success)
            records.append(self._record(lander, success))
        self.metrics.extend(records)
        if self.run_folder is not None:
            self.run_folder.append(records)
        if not_stored is not None:
            raise not_stored
        self._revalue_when_due(len(finished))
        stop = False
        for record in records:
            self._report(record)
            if callback is not None and callback(record) is False:
                stop = True
        return stop

    def _revalue_when_due(self, finished: int) -> None:
        """Every ``REVALUE_EVERY`` finished trials, re-value the memory's outcomes (``revaluation.py``)."""
        if self.settings.read_only or not self.settings.revalue_every:
            return
        self._trials_since_revaluation += finished
        if self._trials_since_revaluation < self.settings.revalue_every:
            return
        self._trials_since_revaluation = 0
        report = revalue(self.store, self.settings, self.settings.revalue_sweeps)
        if not self.quiet:
            tqdm.write(f"re-valued {report.engrams} engrams in {report.seconds:.1f} s "
                       f"(mean change of an outcome {report.mean_change:.4f})")

    def _store(self, engrams: List[Engram]) -> Optional[EngramsNotStoredError]:
        """Store finished trials' engrams; if Milvus stayed down, keep them and return the error."""
        try:
            self.engram_count += self.store.insert_many(engrams)
        except EngramsNotStoredError as failure:
            self.unstored.extend(failure.engrams)
            kept = "Trainer.unstored"
            if self.run_folder is not None:
                kept += f" and {self.run_folder.keep_unstored(failure.engrams)}"
            trials = sorted({engram.trial for engram in failure.engrams})
            return EngramsNotStoredError(f"{failure} The {len(failure.engrams)} engrams of trial(s) {trials} are kept "
                                         f"in {kept}; resuming (--keep) stores them first.", failure.engrams)
        return None

    def _store_unstored(self) -> None:
        """Store engrams kept from an earlier failure: an upsert, since some may have got through."""
        if not self.unstored:
            return
        self.store.upsert_many(self.unstored)
        self.unstored = []
        if self.run_folder is not None:
            self.run_folder.forget_unstored()
        self.engram_count = self.store.get_count()

    def _report(self, record: TrialRecord) -> None:
        if self.quiet:
            return
        tqdm.write(self._line(record))
        recent = self.metrics[-ROLLING_WINDOW:]
        self._progress.set_postfix(mean100=f"{np.mean([r.reward for r in recent]):.1f}",
                                   landed=f"{np.mean([r.landed for r in recent]):.0%}", refresh=False)
        self._progress.update(1)

    def _engrams(self, lander: _Lander, success: float) -> List[Engram]:
        """A trial's engrams; each also keeps its reward, the situation it led to and whether the
        trial ended there (a time limit or a death by hit points is no end: the flight went on)."""
        states = np.vstack([np.stack(lander.states), normalise(lander.observation)[None, :]])
        vectors = self.brain.resonator_factory.make_resonators(states, np.full(len(states), success)).tolist()
        outcomes = step_outcomes(np.array(lander.rewards), success, self.settings, np.array(lander.values))
        last = len(lander.actions) - 1
        return [Engram(tuple(vectors[step]), action, float(outcome), lander.trial, reward=reward,
                       next_vector=tuple(vectors[step + 1]), ended=lander.terminated and step == last)
                for step, (action, outcome, reward) in enumerate(zip(lander.actions, outcomes, lander.rewards))]

    def _record(self, lander: _Lander, success: float) -> TrialRecord:
        distances = [d for d in lander.distances if not math.isnan(d)]
        return TrialRecord(
            trial=lander.trial, lander=lander.index, reward=lander.total_reward, length=len(lander.actions),
            landed=lander.total_reward >= LANDING_REWARD, died=self._died(lander), success=success,
            mean_success=self.mean_success, engrams=self.engram_count,
            neighbour_distance=float(np.mean(distances)) if distances else float("nan"),
            noise=lander.noise, wall_time=self._trained_seconds + time.monotonic() - self._started)

    def _line(self, record: TrialRecord) -> str:
        return (f"trial {record.trial:5d}  reward {record.reward:8.1f}  steps {record.length:4d}"
                f"  {'landed' if record.landed else 'died  ' if record.died else '      '}"
                f"  mean success {record.mean_success:+.3f}  best {self.best_success:+.3f}"
                f"  engrams {record.engrams:8d}  distance {record.neighbour_distance:.3f}")


def _no_such_memory(settings: Settings, collections: List[str]) -> str:
    where = settings.milvus_uri or f"the embedded server in {settings.milvus_data_dir}"
    return (f"no memory named {settings.instance_name!r} on {where}, and reading one never creates it. "
            f"Instances there: {', '.join(sorted(collections)) or 'none yet'}. Check --instance, or train "
            f"it first: python main.py --instance {settings.instance_name}")
