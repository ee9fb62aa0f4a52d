"""The population loop: a population of landers flying trials on one memory, as one
``gymnasium.vector`` environment.

Why its own module: training, evaluation, watching and the instinct experiment's newcomers all fly
the same way — decide for every flying lander in one consultation of the memory, step every
environment at once, and at each trial's end hand the finished trial over — and differ only in
what happens around it: whether the trial is remembered, and which callbacks (``loop.callbacks``:
the run folder, progress, re-valuation, stopping on signals) listen. This is that loop, once.

One step::

    states = normalise(observations of the flying landers)
    decision = policy.act(states, each trial's noise and ε)         # one consultation of the memory
    observations, rewards, terminated, truncated = envs.step(actions)
    queue (state, action, reward) per lander, in column buffers
    for each finished trial: remember(flights) (one batch), record it, call back, start the next
"""
from __future__ import annotations

import sys
import time
from typing import Callable, Iterable, Iterator, List, Optional, Sequence

import gymnasium
import numpy as np

from resonant_vectors.agent.credit import Flight, trial_engrams, value_in_reward_units
from resonant_vectors.agent.policy import Policy
from resonant_vectors.agent.resonators import IResonatorFactory
from resonant_vectors.memory.seam import EngramColumns, Memory, NotStoredError
from resonant_vectors.runs.records import TrialRecord

FIRST_CAPACITY = 256   # steps a lander's buffers hold at first; they double as a trial grows
IDLE = -1              # the trial number of a lander with no trial to fly (the population's last trials)


class TrialCallback:
    """Hooks into the loop (the shape of Stable-Baselines3's ``BaseCallback``). Override what you need.

    ``on_step`` or ``on_trial_end`` returning ``False`` stops the loop once the trials in flight have
    finished (no new trial starts), as a Stable-Baselines3 callback's ``False`` stops ``learn``.
    """

    def on_start(self, loop: "PopulationLoop") -> None:
        """Before the first step."""

    def on_step(self, loop: "PopulationLoop", landers: np.ndarray, actions: np.ndarray, rewards: np.ndarray
                ) -> Optional[bool]:
        """After each step: the landers that flew it, their actions and rewards."""
        return None

    def on_trial_end(self, loop: "PopulationLoop", record: TrialRecord, flight: Flight) -> Optional[bool]:
        """After a trial has ended (and was remembered, if the loop remembers)."""
        return None

    def on_end(self, loop: "PopulationLoop") -> None:
        """When the loop stops, however it stops."""


class _Buffers:
    """Every lander's trial in progress, as column arrays (lander × step), appended one step at a
    time for all flying landers at once."""

    def __init__(self, landers: int, state_size: int, capacity: int = FIRST_CAPACITY) -> None:
        self.steps = np.zeros(landers, np.int64)
        self.states = np.zeros((landers, capacity, state_size), np.float32)
        self.actions = np.zeros((landers, capacity), np.int64)
        self.rewards = np.zeros((landers, capacity))
        self.values = np.zeros((landers, capacity))
        self.distances = np.zeros((landers, capacity))

    def append(self, landers: np.ndarray, states, actions, rewards, values, distances) -> None:
        at = self.steps[landers]
        if at.max(initial=0) >= self.actions.shape[1]:
            self._grow()
        for column, values_now in ((self.states, states), (self.actions, actions), (self.rewards, rewards),
                                   (self.values, values), (self.distances, distances)):
            column[landers, at] = values_now
        self.steps[landers] += 1

    def take(self, lander: int) -> dict:
        """A lander's trial so far, copied out; its buffers start afresh."""
        steps = self.steps[lander]
        self.steps[lander] = 0
        return {name: getattr(self, name)[lander, :steps].copy()
                for name in ("states", "actions", "rewards", "values", "distances")}

    def _grow(self) -> None:
        for name in ("states", "actions", "rewards", "values", "distances"):
            column = getattr(self, name)
            setattr(self, name, np.concatenate([column, np.zeros_like(column)], axis=1))


class PopulationLoop:
    """Flies trials with a population of landers on one memory (see the module's docstring).

    **Seeds.** Trial ``n`` resets its environment with seed ``first_seed + n`` (None: fresh entropy),
    so a trial flies the same way whichever lander flies it; the policy's random generator is seeded
    by the caller.

    **Aim.** Decisions aim at the policy's running mean success + ``SUCCESS_MARGIN``; each finished
    trial's success goes into that window before the next decision.

    :param envs: the population, a ``gymnasium.vector`` environment without autoreset
        (``gym.environments.make_population``).
    :param policy: how the landers decide (``policy.Policy``).
    :param settings: the trial rules and the environment's profile.
    :param first_seed: trial ``n`` uses environment seed ``first_seed + n``; None: fresh entropy.
    :param remember: stores finished trials in the memory and returns its engram count after them
        (None: the loop only reads the memory).
    :param callbacks: ``TrialCallback`` s, called in order.
    :param clock_offset: seconds of earlier training, added to each record's ``wall_time``.
    :param engrams: the memory's engram count before the first trial (records carry the count).
    :param records: the list each finished trial's record is appended to, as it finishes (a new one
        by default).
    :param worker: the worker of the species this loop flies for (its records say so).
    """

    def __init__(self, envs: gymnasium.vector.VectorEnv, policy: Policy, settings, first_seed: Optional[int],
                 remember: Optional[Callable[[List[Flight]], int]] = None,
                 callbacks: Sequence[TrialCallback] = (), clock_offset: float = 0.0, engrams: int = 0,
                 records: Optional[List[TrialRecord]] = None, worker: int = 0) -> None:
        self.envs, self.policy, self.settings = envs, policy, settings
        self.environment = settings.environment
        self.first_seed, self.remember, self.callbacks = first_seed, remember, list(callbacks)
        self.clock_offset = clock_offset
        self.worker = worker
        self.engrams = engrams        # the memory's engram count, as the last remembered trial left it
        self.steps = 0                # decisions flown by trials, an engram each (idle landers' not counted; with
                                      # ACTION_REPEAT a decision is that many frames)
        self.frames = 0               # the environment frames those decisions were held for (DQN's and PPO's unit)
        self.seconds = 0.0            # seconds the last run() took
        self.records: List[TrialRecord] = [] if records is None else records
        self.next_trial = 0           # one past the highest trial number started
        self._trials = np.full(envs.num_envs, IDLE, np.int64)
        self._exploration = np.zeros((envs.num_envs, 2))  # each lander's trial: noise, epsilon
        self._progress = np.zeros(envs.num_envs, np.int64)  # ...and its place in the run (see run)
        self._buffers = _Buffers(envs.num_envs, self.environment.state_size)
        self._bootstrapping = settings.outcome_rule == "return" and settings.bootstrap_steps > 0  # reads values
        self._no_values = np.full(envs.num_envs, np.nan)
        self._started = time.monotonic()

    @property
    def wall_time(self) -> float:
        return self.clock_offset + time.monotonic() - self._started

    def run(self, trial_numbers: Iterable[int], progress: Optional[Callable[[int], int]] = None
            ) -> List[TrialRecord]:
        """Fly the trials with these numbers (started in this order; they finish in any order) and
        return their records in finishing order.

        :param progress: a trial's place in its run as its exploration schedules read it, asked as it
            starts (by default its number; a resume or a species counts its trials started).
        """
        self._progress_of = progress or (lambda trial: trial)
        to_fly = iter(trial_numbers)
        records_before, self._started = len(self.records), time.monotonic()
        started: List[TrialCallback] = []
        try:
            for callback in self.callbacks:
                callback.on_start(self)
                started.append(callback)
            observations = self._reset(np.ones(self.envs.num_envs, bool), to_fly)
            while (self._trials != IDLE).any():
                observations, done, stop = self._step(observations)
                if stop:
                    to_fly = iter(())
                if done.any():  # their next trials, or a throwaway episode for a lander left idle
                    observations = self._reset(done, to_fly, observations)
        finally:
            self.seconds = time.monotonic() - self._started
            self.clock_offset += self.seconds
            self._end(started)
        return self.records[records_before:]

    def _end(self, started: List[TrialCallback]) -> None:
        """Every started callback's ``on_end``, each even if another failed; the first failure goes on
        (unless the loop itself is failing: then that error is the one to see)."""
        failure = None
        for callback in started:
            try:
                callback.on_end(self)
            except Exception as error:  # noqa: BLE001 (re-raised below)
                failure = failure or error
        if failure is not None and sys.exc_info()[0] is None:
            raise failure

    def _reset(self, landers: np.ndarray, to_fly: Iterator[int], observations: Optional[np.ndarray] = None
               ) -> np.ndarray:
        """Start the next trials on these landers (in lander order); a lander left without one idles."""
        seeds: list = [None] * self.envs.num_envs
        for lander in np.flatnonzero(landers):
            trial = next(to_fly, IDLE)
            self._trials[lander] = trial
            if trial != IDLE:
                self.next_trial = max(self.next_trial, trial + 1)
                seeds[lander] = None if self.first_seed is None else self.first_seed + trial
                self._progress[lander] = self._progress_of(trial)
                self._exploration[lander] = self.policy.exploration(int(self._progress[lander]))
        fresh, _ = self.envs.reset(seed=seeds, options={"reset_mask": landers})
        if observations is None:
            return fresh
        observations = observations.copy()
        observations[landers] = fresh[landers]
        return observations

    def _step(self, observations: np.ndarray):
        """One decision for every flying lander (one consultation), one step of every environment;
        the trials that ended are remembered and recorded. Returns the observations, which
        environments' episodes ended, and whether a callback asked to stop."""
        flying = np.flatnonzero(self._trials != IDLE)
        states = self.environment.normalise(observations[flying])
        decision = self.policy.act(states, self._exploration[flying, 0], self._exploration[flying, 1])
        values = value_in_reward_units(decision.consultation.best_value, decision.query_success, self.settings) \
            if self._bootstrapping else self._no_values[:len(flying)]
        actions = np.zeros(self.envs.num_envs, np.int64)
        actions[flying] = decision.actions
        observations, rewards, terminated, truncated, infos = self.envs.step(actions + self.environment.action_start)
        self._buffers.append(flying, states, decision.actions, rewards[flying], values,
                             decision.consultation.neighbour_distance)
        self.steps += len(flying)
        self.frames += int(infos["frames"][flying].sum()) if "frames" in infos else len(flying)
        answers = [callback.on_step(self, flying, decision.actions, rewards[flying]) for callback in self.callbacks]
        stop = any(answer is False for answer in answers)
        done = terminated | truncated
        ended = [lander for lander in flying if done[lander]]
        if not ended:
            return observations, done, stop
        flights = [self._flight(lander, observations[lander], bool(terminated[lander]), infos) for lander in ended]
        return observations, done, self._finish(flights) or stop

    def _flight(self, lander: int, observation: np.ndarray, terminated: bool, infos: dict) -> Flight:
        columns = self._buffers.take(lander)
        end = infos["end"][lander] if "end" in infos and infos["_end"][lander] else ""
        noise, epsilon = self._exploration[lander]
        return Flight(int(self._trials[lander]), int(lander), float(noise), float(epsilon),
                      self.environment.success(float(columns["rewards"].sum())), **columns,
                      final_state=self.environment.normalise(observation), terminated=terminated, end=str(end),
                      progress=int(self._progress[lander]))

    def _finish(self, flights: List[Flight]) -> bool:
        """Remember the finished trials (one batch), record them, call back; True to stop."""
        failure = None
        if self.remember is not None:
            try:
                self.engrams = self.remember(flights)
            except NotStoredError as error:  # the trials still count; the error goes on once they are recorded
                failure = error
        stop = False
        for flight in flights:
            record = self._record(flight)
            self.records.append(record)
            for callback in self.callbacks:
                if callback.on_trial_end(self, record, flight) is False:
                    stop = True
        if failure is not None:
            raise failure
        return stop

    def _record(self, flight: Flight) -> TrialRecord:
        success = flight.success
        self.policy.record_success(success)
        distances = flight.distances[np.isfinite(flight.distances)]
        return TrialRecord(
            trial=flight.trial, worker=self.worker, lander=flight.lander, reward=flight.reward, length=flight.length,
            solved=self.environment.solved(flight.reward), end=flight.end, success=success,
            mean_success=self.policy.mean_success, engrams=self.engrams,
            neighbour_distance=float(distances.mean()) if len(distances) else float("nan"),
            noise=float(flight.noise), epsilon=float(flight.epsilon), wall_time=self.wall_time)


def remembering(memory: Memory, factory: IResonatorFactory, settings,
                held: Optional[int] = None) -> Callable[[List[Flight]], int]:
    """A loop's ``remember`` that teaches ``memory``: the finished trials' engrams
    (``credit.trial_engrams``), added in one batch; it returns how many engrams the memory then holds
    (counted here, not asked of Milvus at every trial; an in-process copy's own size where there is
    one, so that other workers' engrams count too).

    :param held: the memory's count now, if known (else it is asked).
    """
    held = [memory.count() if held is None else held]

    def remember(flights: List[Flight]) -> int:
        engrams = EngramColumns.concatenate([trial_engrams(flight, flight.success, factory, settings)
                                             for flight in flights], settings.resonator_size)
        held[0] += memory.add(engrams)
        known = memory.known()  # a copy in this process also holds what other writers stored
        return held[0] if known is None else known
    return remember
