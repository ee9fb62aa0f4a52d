"""``Trainer``: LunarLander trials that teach an ``EngramBrain`` by leaving engrams in its memory."""
from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Callable, List, Optional

import numpy as np

from config import Settings
from engram import Engram, EngramStore
from EngramBrain import EngramBrain
from gym.lander_environment import make_lander, normalise, render_mode_for
from WeightedResonatorFactory import WeightedResonatorFactory

SUCCESS_REWARD_RANGE = 300.0   # trial success = clip(total reward, ±300) / 300
LANDING_REWARD = 200.0         # LunarLander counts an episode of 200 or more as solved


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


@dataclass
class _Lander:
    """One lander's trial in progress: its environment, hit points and feedback queue."""

    index: int
    env: object
    observation: np.ndarray = None
    trial: int = -1
    hit_points: float = 0.0
    total_reward: float = 0.0
    states: List[np.ndarray] = field(default_factory=list)
    actions: List[int] = field(default_factory=list)
    rewards: List[float] = field(default_factory=list)
    distances: List[float] = field(default_factory=list)

    @property
    def flying(self) -> bool:
        return self.trial >= 0


def trial_success(total_reward: float) -> float:
    """A trial's success in [-1, 1]: its total reward clipped to ±300, divided by 300."""
    return float(np.clip(total_reward, -SUCCESS_REWARD_RANGE, SUCCESS_REWARD_RANGE) / SUCCESS_REWARD_RANGE)


def step_outcomes(rewards: np.ndarray, success: float, settings: Settings) -> np.ndarray:
    """The outcome each step's engram stores: its reward scaled and clipped to [-1, 1], weighted
    up by the success of its trial (so good trials leave stronger traces), clipped again."""
    scaled = np.clip(np.asarray(rewards, dtype=np.float64) / settings.outcome_reward_scale, -1.0, 1.0)
    return np.clip(scaled * (1.0 + settings.success_weight * success), -1.0, 1.0)


class Trainer:
    """Trains an ``EngramBrain`` on LunarLander-v3 by trial and memory.

    **A trial.** A lander starts with ``HIT_POINTS``; each step it asks the brain for an action
    (aiming at the population's running mean success + ``SUCCESS_MARGIN``), acts, and queues
    (state, action, reward). With ``USE_HIT_POINTS``, each step costs ``reward - METABOLIC_COST``
    hit points and falling below 0 ends the trial as a death. A trial also ends when the lander
    crashes or comes to rest, or after ``MAX_TRIAL_LENGTH`` steps.

    **Memory.** When a trial ends its queue is flushed in one insert: each step becomes an engram
    whose vector carries the trial's success ``s = clip(reward, ±300) / 300`` and whose outcome is
    ``clip(clip(r / OUTCOME_REWARD_SCALE, ±1) · (1 + SUCCESS_WEIGHT · s), ±1)``. With ``READ_ONLY``
    nothing is stored (and the collection is never dropped).

    **Population.** ``POPULATION_SIZE`` landers fly at once on one shared memory, each with its own
    trial, hit points and queue; each step makes one search request for all of them. Success
    statistics (the running mean over ``SUCCESS_WINDOW`` trials and the best) are the population's.
    Size 1 is the seed's behaviour: every search sees the previous trial's engrams ("Session").
    A population's searches do not wait for the latest inserts ("Eventually"): a finished trial's
    engrams reach the others a server time tick later. Waiting cost 20% of a population of 32's
    throughput here (704 vs 873 steps/s), and a species does not need the last few milliseconds.

    **Metrics.** ``metrics`` holds a ``TrialRecord`` per finished trial; one line is printed per trial
    unless ``quiet``.

    :param instance_name: names the run and its collection (``INSTANCE_NAME``).
    :param clear_collection: start from an empty memory (``DROP_COLLECTION``).
    :param settings: the run's settings; ``settings.py`` by default.
    :param quiet: print nothing per trial.
    """

    def __init__(self, instance_name: Optional[str] = None, clear_collection: Optional[bool] = None,
                 settings: Optional[Settings] = None, quiet: bool = False) -> None:
        settings = (settings or Settings.from_module()).replace(
            **{k: v for k, v in (("instance_name", instance_name), ("drop_collection", clear_collection))
               if v is not None})
        self.settings = settings
        self.quiet = quiet
        self.store = EngramStore(settings.instance_name, reset=settings.drop_collection and not settings.read_only,
                                 settings=settings,
                                 consistency="Session" if settings.population_size == 1 else "Eventually")
        self.rng = np.random.default_rng(settings.seed)
        self.brain = EngramBrain(settings.state_vector_size - 1, settings.output_vector_size, self.store,
                                 WeightedResonatorFactory(settings.vector_component_weights),
                                 noise=settings.noise, neighbours=settings.min_results,
                                 probabilistic_choice=settings.probabilistic_choice, rng=self.rng)
        render_mode = render_mode_for(settings.display)
        self.landers = [_Lander(i, make_lander(settings, render_mode if i == 0 else None))
                        for i in range(settings.population_size)]
        self.metrics: List[TrialRecord] = []
        self.recent_success = deque(maxlen=settings.success_window)
        self.best_success = -math.inf
        self.engram_count = self.store.get_count()
        self.steps_taken = 0

    @property
    def mean_success(self) -> float:
        """The running mean success of the last ``SUCCESS_WINDOW`` trials (0 before any)."""
        return float(np.mean(self.recent_success)) if self.recent_success else 0.0

    def train(self, trials: int, callback: Optional[Callable[[TrialRecord], Optional[bool]]] = None) -> float:
        """Run ``trials`` trials (counted across the population) and return their mean reward.

        :param callback: called with each finished trial's record; returning ``False`` stops
            training once the trials in flight have finished.
        """
        if not isinstance(trials, int) or isinstance(trials, bool) or trials < 0:
            raise ValueError(f"trials: expected a whole number >= 0, got {trials!r}")
        first = len(self.metrics)
        to_start = list(range(self.next_trial_number(), self.next_trial_number() + trials))[::-1]
        self._started = time.monotonic()
        for lander in self.landers:
            self._start_trial(lander, to_start)
        while any(lander.flying for lander in self.landers):
            finished = self._step_all()
            stop = self._finish(finished, callback)
            for lander in finished:
                self._start_trial(lander, [] if stop else to_start)
            if stop:
                to_start.clear()
        rewards = [record.reward for record in self.metrics[first:]]
        return float(np.mean(rewards)) if rewards else float("nan")

    def next_trial_number(self) -> int:
        return self.metrics[-1].trial + 1 if self.metrics else 0

    def close(self) -> None:
        """Close the environments (and their windows)."""
        for lander in self.landers:
            lander.env.close()

    def _start_trial(self, lander: _Lander, to_start: List[int]) -> None:
        if not to_start:
            lander.trial = -1
            return
        lander.trial = to_start.pop()
        seed = None if self.settings.seed is None else self.settings.seed + lander.trial
        lander.observation, _ = lander.env.reset(seed=seed)
        lander.hit_points = float(self.settings.hit_points)
        lander.total_reward = 0.0
        for queue in (lander.states, lander.actions, lander.rewards, lander.distances):
            queue.clear()

    def _step_all(self) -> List[_Lander]:
        """One decision for every flying lander (one search), one step each; returns those done."""
        flying = [lander for lander in self.landers if lander.flying]
        states = normalise(np.stack([lander.observation for lander in flying]))
        query_success = float(np.clip(self.mean_success + self.settings.success_margin, -1.0, 1.0))
        consultation = self.brain.consult(states, query_success)
        actions = self.brain.choose(consultation.scores)
        done = []
        for lander, state, action, distance in zip(flying, states, actions, consultation.neighbour_distance):
            if self._step(lander, state, int(action), float(distance)):
                done.append(lander)
        self.steps_taken += len(flying)
        return done

    def _step(self, lander: _Lander, state: np.ndarray, action: int, distance: float) -> bool:
        """Act, queue the feedback, and say whether the trial is over."""
        lander.observation, reward, terminated, truncated, _ = lander.env.step(action)
        lander.states.append(state)
        lander.actions.append(action)
        lander.rewards.append(float(reward))
        lander.distances.append(distance)
        lander.total_reward += float(reward)
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
        if not self.settings.read_only:
            engrams = [engram for lander, s in zip(finished, successes) for engram in self._engrams(lander, s)]
            self.engram_count += self.store.insert_many(engrams)
        stop = False
        for lander, success in zip(finished, successes):
            self.recent_success.append(success)
            self.best_success = max(self.best_success, success)
            record = self._record(lander, success)
            self.metrics.append(record)
            if not self.quiet:
                print(self._line(record), flush=True)
            if callback is not None and callback(record) is False:
                stop = True
        return stop

    def _engrams(self, lander: _Lander, success: float) -> List[Engram]:
        vectors = self.brain.resonator_factory.make_resonators(np.stack(lander.states),
                                                               np.full(len(lander.states), success))
        outcomes = step_outcomes(np.array(lander.rewards), success, self.settings)
        return [Engram(tuple(vector.tolist()), action, float(outcome), lander.trial)
                for vector, action, outcome in zip(vectors, lander.actions, outcomes)]

    def _record(self, lander: _Lander, success: float) -> TrialRecord:
        distances = [d for d in lander.distances if not math.isnan(d)]
        return TrialRecord(
            trial=lander.trial, lander=lander.index, reward=lander.total_reward, length=len(lander.actions),
            landed=lander.total_reward >= LANDING_REWARD, died=self._died(lander), success=success,
            mean_success=self.mean_success, engrams=self.engram_count,
            neighbour_distance=float(np.mean(distances)) if distances else float("nan"),
            noise=self.settings.noise, wall_time=time.monotonic() - self._started)

    def _line(self, record: TrialRecord) -> str:
        return (f"trial {record.trial:5d}  reward {record.reward:8.1f}  steps {record.length:4d}"
                f"  {'landed' if record.landed else 'died  ' if record.died else '      '}"
                f"  mean success {record.mean_success:+.3f}  best {self.best_success:+.3f}"
                f"  engrams {record.engrams:8d}  distance {record.neighbour_distance:.3f}")

    def metrics_as_dicts(self) -> List[dict]:
        return [asdict(record) for record in self.metrics]
