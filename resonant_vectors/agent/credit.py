"""The credit rules: what each remembered step is credited with, and the exploration schedules.

Why its own module: the learning rule is what a reader of this project looks for first; here it
is in one place, apart from the trial loop (``loop.population``, ``Trainer``) that applies it and the
decision (``EngramBrain``, ``policy.Policy``) that reads it back. ``agent.revaluation`` holds the rule
that re-values stored outcomes afterwards. A trial's success (what its engrams' vectors carry) is
the environment's (``environments.profiles``: for LunarLander the seed's ``clip(reward, ±300) / 300``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from resonant_vectors.agent.resonators import IResonatorFactory
from resonant_vectors.config import Settings
from resonant_vectors.memory.seam import EngramColumns, new_ids


def discounted_returns(rewards: np.ndarray, discount: float) -> np.ndarray:
    """For each step, the rewards from it to the trial's end, each discounted by ``discount`` per step."""
    returns = np.empty(len(rewards))
    following = 0.0
    for step in range(len(rewards) - 1, -1, -1):
        following = rewards[step] + discount * following
        returns[step] = following
    return returns


def n_step_returns(rewards: np.ndarray, discount: float, steps: int, values: np.ndarray) -> np.ndarray:
    """For each step t, the discounted rewards of steps t .. t+N-1 plus the discounted value of the
    state at t+N (nothing past the trial's end): the N-step return of Pritzel et al. (2017).

    Why: a full return credits a step with everything a still-clumsy lander did afterwards; the
    N-step return trusts the memory's estimate from N steps on, so good endings spread back faster.

    :param values: the value of each step's state in reward units (the best the memory expected
        there); NaN where the memory knew nothing, and then the return itself stands in for it.
    """
    full = discounted_returns(rewards, discount)
    values = np.asarray(values, dtype=np.float64)
    later = np.arange(len(rewards)) + steps
    inside = later < len(rewards)
    inside[inside] = np.isfinite(values[later[inside]])
    tail = np.zeros(len(rewards))
    tail[inside] = full[later[inside]] - values[later[inside]]
    return full - discount ** steps * tail


def value_in_reward_units(values: np.ndarray, query_success: float, settings: Settings) -> np.ndarray:
    """The memory's values (outcomes: scaled, and weighted by ``1 + SUCCESS_WEIGHT · success``) back
    in reward units, for an N-step return. The neighbours were found aiming at ``query_success``,
    so that is the success whose weighting is undone."""
    return np.asarray(values, dtype=np.float64) * settings.outcome_reward_scale / \
        (1.0 + settings.success_weight * query_success)


def novelty(distances: np.ndarray, settings: Settings) -> np.ndarray:
    """How new each step's situation was to the memory when the lander met it: the distance to its
    nearest engrams ÷ ``NOVELTY_RADIUS``, at most 1, and 1 where the memory held none.

    Why: a situation whose neighbours are far has not been lived; the kNN distance is the novelty
    of episodic-novelty methods ("Never Give Up", Badia et al. 2020), here against the whole memory,
    so it fades as the memory covers the space instead of with a trial schedule.

    :param distances: each step's mean squared L2 distance to its neighbours (NaN: none), as
        ``Consultation.neighbour_distance`` says.
    """
    distance = np.sqrt(np.maximum(np.asarray(distances, dtype=np.float64), 0.0))
    return np.where(np.isfinite(distance), np.minimum(1.0, distance / settings.novelty_radius), 1.0)


def credited_rewards(rewards: np.ndarray, settings: Settings, values: Optional[np.ndarray] = None) -> np.ndarray:
    """What each step is credited with, in reward units, by ``OUTCOME_RULE`` and ``BOOTSTRAP_STEPS``.

    :param rewards: the steps' rewards, with any novelty bonus (``novelty``) already added.
    :param values: each step's state value in reward units (see ``n_step_returns``).
    """
    if settings.outcome_rule == "reward":
        return rewards
    if settings.bootstrap_steps == 0 or values is None:
        return discounted_returns(rewards, settings.discount)
    return n_step_returns(rewards, settings.discount, settings.bootstrap_steps, values)


def step_outcomes(rewards: np.ndarray, success: float, settings: Settings,
                  values: Optional[np.ndarray] = None, distances: Optional[np.ndarray] = None) -> np.ndarray:
    """The outcome each step's engram stores: what the step is credited with (its reward; with
    ``OUTCOME_RULE = "return"`` the discounted return that followed it, or with ``BOOTSTRAP_STEPS``
    the N-step return, given each state's ``values`` in reward units) scaled and clipped to
    [-1, 1], weighted up by the success of its trial (so good trials leave stronger traces),
    clipped again.

    With ``NOVELTY_BONUS``, each step's reward is credited ``NOVELTY_BONUS × novelty`` more (from its
    neighbours' ``distances``): under the "return" rule the steps that led somewhere new share it, so
    the decisions that reach the unknown are the ones the memory favours next time. The engram's
    ``reward`` stays the environment's, so re-valuation (``agent.revaluation``) credits none.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    if settings.novelty_bonus and distances is not None:
        rewards = rewards + settings.novelty_bonus * novelty(distances, settings)
    scaled = np.clip(credited_rewards(rewards, settings, values) / settings.outcome_reward_scale, -1.0, 1.0)
    return np.clip(scaled * (1.0 + settings.success_weight * success), -1.0, 1.0)


def trial_engrams(flight: "Flight", success: float, factory: IResonatorFactory, settings: Settings) -> EngramColumns:
    """A finished trial's engrams, one per step: the resonator of its state at the trial's
    ``success``, the action, the outcome ``step_outcomes`` credits it with, the step's reward, the
    resonator of the situation it led to, and whether the trial ended there (only the environment's
    own end: after a time limit or a death by hit points the flight would have gone on)."""
    states = np.vstack([flight.states, flight.final_state[None, :]])
    vectors = factory.make_resonators(states, np.full(len(states), success))
    steps = flight.length
    ended = np.zeros(steps, bool)
    ended[-1] = flight.terminated
    return EngramColumns.of(id=new_ids(steps), vector=vectors[:-1], action=flight.actions,
                            outcome=step_outcomes(flight.rewards, success, settings, flight.values, flight.distances),
                            trial=np.full(steps, flight.trial), reward=flight.rewards, next_vector=vectors[1:],
                            ended=ended)


def linear_schedule(start: float, final: Optional[float], decay_trials: int, trial: int) -> float:
    """``start``, or with ``final`` set, falling (or rising) linearly from ``start`` to ``final``
    over the first ``decay_trials`` trials, then ``final``: explore first, exploit later."""
    if final is None:
        return start
    return start + (final - start) * min(1.0, trial / decay_trials)


def trial_noise(trial: int, settings: Settings) -> float:
    """The noise std of a trial (``NOISE``, ``NOISE_FINAL``, ``NOISE_DECAY_TRIALS``)."""
    return linear_schedule(settings.noise, settings.noise_final, settings.noise_decay_trials, trial)


def trial_epsilon(trial: int, settings: Settings) -> float:
    """The chance of a random action in a trial (``EPSILON``, ``EPSILON_FINAL``, ``EPSILON_DECAY_TRIALS``)."""
    return linear_schedule(settings.epsilon, settings.epsilon_final, settings.epsilon_decay_trials, trial)


@dataclass
class Flight:
    """One finished trial, as columns: what the memory is taught from.

    :param success: the trial's success in [-1, 1] (the environment's, from its total reward).
    :param states: the normalised state at each decision, shape ``(steps, state_size)``.
    :param values: the memory's best value of each state, in reward units (NaN where it knew nothing,
        and where nothing reads it: only N-step credit, ``BOOTSTRAP_STEPS``, does).
    :param final_state: the normalised state the last step led to.
    :param terminated: the environment ended the trial (not a time limit or a death).
    :param progress: its place in the run as its exploration schedules read it (the trials started
        before it: the run's, or the species'; see ``PopulationLoop.run``).
    """

    trial: int
    lander: int
    noise: float
    epsilon: float
    success: float
    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    values: np.ndarray
    distances: np.ndarray
    final_state: np.ndarray
    terminated: bool
    end: str
    progress: int = 0

    @property
    def reward(self) -> float:
        return float(self.rewards.sum())

    @property
    def length(self) -> int:
        return len(self.actions)
