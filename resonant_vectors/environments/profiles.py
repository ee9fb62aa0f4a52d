"""The environments a memory can learn: their observation scales, what success means in each, the
trial rules as wrappers, and a population as a ``gymnasium.vector`` environment.

Why its own module: the trial loop, the resonators and the credit rules work on any Gymnasium
environment with a ``Box`` observation and a ``Discrete`` action space; what differs between
environments (how to bring an observation to about [-1, 1], the range of a trial's return, what
"solved" means) is a row of ``PROFILES`` here, and nowhere else.

+-----------------+------------------------------------------------+----------------+------------+
| environment     | observation ÷ (after subtracting the centre)   | success range  | solved at  |
+=================+================================================+================+============+
| LunarLander-v3  | x, y ÷1.5 · vx, vy ÷5 · angle ÷π · ang.vel ÷5 · | −300 … 300     | 200        |
|                 | legs 0/1                                        | (the seed's)   |            |
| CartPole-v1     | x ÷2.4 · v ÷3 · angle ÷0.21 · ang.vel ÷3.5      | 0 … 500        | 475        |
| Acrobot-v1      | cos, sin ÷1 · ang.vel 1 ÷4π · ang.vel 2 ÷9π      | −500 … 0       | −100       |
| MountainCar-v0  | (x + 0.3) ÷0.9 · v ÷0.07                        | −200 … 0       | −110       |
| any other       | finite bounds: centre and half-width; else the | −300 … 300     | its spec's |
|                 | mean and std of 5,000 random steps (seed 0)    |                | threshold  |
+-----------------+------------------------------------------------+----------------+------------+

A trial's success is its total reward mapped linearly from the success range to [−1, 1] and
clipped: for LunarLander that is the seed's ``clip(reward, ±300) / 300``. "Solved" is the
environment's own ``spec.reward_threshold``. A trial ends at the environment's own end, at
``MAX_TRIAL_LENGTH`` steps (None: the environment's own limit, except LunarLander's 400, the
seed's), or, with ``USE_HIT_POINTS``, when hit points fall below 0 (each step
``hp += reward − METABOLIC_COST``, in the environment's reward units: with the defaults, a
CartPole, Acrobot or MountainCar trial never dies before its time limit).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Optional, Tuple

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode

from resonant_vectors.environments.display import draw_frames_off_screen
from resonant_vectors.errors import ResonantVectorsError

DEFAULT_ENV_ID = "LunarLander-v3"   # the seed's environment (its LunarLander-v2 was removed from Gymnasium)
UNBOUNDED = 1e6                 # a bound this large says nothing about an observation's scale
STANDARDISE_STEPS = 5000        # random steps whose observations scale an unknown environment's
FALLBACK_SUCCESS_RANGE = (-300.0, 300.0)  # an unknown environment's trial success: the seed's range
# A trial's end cause (LunarLander's own ends are told apart, since each asks for another remedy).
TIMED_OUT, DIED, ENDED = "timed_out", "died", "ended"
END_CAUSES = ("at_rest", "crashed", "flew_off", ENDED, TIMED_OUT, DIED)
LANDER_ARGUMENTS = ("gravity", "enable_wind", "wind_power", "turbulence_power")  # LunarLander-v3's own arguments
LANDER_ONLY = (*LANDER_ARGUMENTS, "lander_mass")  # settings refused on another environment


@dataclass(frozen=True)
class EnvironmentProfile:
    """What the memory needs to know of one environment.

    :param env_id: its Gymnasium id.
    :param centre: subtracted from each observation component...
    :param scale: ...which is then divided by this, bringing it to about [-1, 1].
    :param success_range: the total rewards mapped to success −1 and +1.
    :param solved_at: ``spec.reward_threshold`` (None: the environment names none).
    :param actions: the number of discrete actions.
    :param action_start: the first action's number (``Discrete.start``).
    :param trial_length: steps per trial when ``MAX_TRIAL_LENGTH`` is None (None: no limit).
    """

    env_id: str
    centre: np.ndarray
    scale: np.ndarray
    success_range: Tuple[float, float]
    solved_at: Optional[float]
    actions: int
    action_start: int
    trial_length: Optional[int]

    @property
    def state_size(self) -> int:
        return len(self.scale)

    @property
    def is_lunar_lander(self) -> bool:
        return self.env_id.startswith("LunarLander")

    def normalise(self, observations: np.ndarray) -> np.ndarray:
        """Observations (one per row, or one flat) brought to about [-1, 1]."""
        return ((np.asarray(observations, dtype=np.float32) - self.centre) / self.scale).astype(np.float32)

    def success(self, total_reward: float) -> float:
        """A trial's success in [-1, 1]: its total reward mapped linearly from the success range."""
        low, high = self.success_range
        return float(np.clip(2.0 * (total_reward - low) / (high - low) - 1.0, -1.0, 1.0))

    def solved(self, total_reward: float) -> bool:
        return self.solved_at is not None and total_reward >= self.solved_at


# The documented scales (see the table above); centre 0 unless given.
KNOWN_SCALES = {
    "LunarLander-v3": (np.zeros(8), [1.5, 1.5, 5.0, 5.0, math.pi, 5.0, 1.0, 1.0], (-300.0, 300.0), 400),
    "CartPole-v1": (np.zeros(4), [2.4, 3.0, 0.21, 3.5], (0.0, 500.0), None),
    "Acrobot-v1": (np.zeros(6), [1.0, 1.0, 1.0, 1.0, 4 * math.pi, 9 * math.pi], (-500.0, 0.0), None),
    "MountainCar-v0": (np.array([-0.3, 0.0]), [0.9, 0.07], (-200.0, 0.0), None),
}


class UnsupportedEnvironmentError(ResonantVectorsError, ValueError):
    """An environment the memory cannot learn (not registered, or not Box observations and Discrete actions)."""


@lru_cache(maxsize=None)
def profile(env_id: str) -> EnvironmentProfile:
    """The profile of a registered environment (made once, to read its spaces).

    :raises UnsupportedEnvironmentError: unknown id, or spaces the memory cannot use.
    """
    try:
        spec = gymnasium.spec(env_id)
    except gymnasium.error.Error as error:
        known = ", ".join(sorted(KNOWN_SCALES))
        raise UnsupportedEnvironmentError(f"{env_id!r} is not a registered Gymnasium environment ({error}); "
                                f"e.g. {known}") from None
    env = gymnasium.make(env_id)
    try:
        observation, action = env.observation_space, env.action_space
        if not isinstance(observation, gymnasium.spaces.Box) or len(observation.shape) != 1:
            raise UnsupportedEnvironmentError(f"{env_id}: its observations are {observation}; expected a flat Box of numbers")
        if not isinstance(action, gymnasium.spaces.Discrete):
            raise UnsupportedEnvironmentError(f"{env_id}: its actions are {action}; expected Discrete actions")
        if env_id in KNOWN_SCALES:
            centre, scale, success_range, trial_length = KNOWN_SCALES[env_id]
        else:
            centre, scale = _scales_of(env, observation)
            success_range, trial_length = FALLBACK_SUCCESS_RANGE, None
        return EnvironmentProfile(env_id, np.asarray(centre, np.float32), np.asarray(scale, np.float32),
                                  success_range, spec.reward_threshold, int(action.n), int(action.start),
                                  trial_length or spec.max_episode_steps)
    finally:
        env.close()


def _scales_of(env: gymnasium.Env, space: gymnasium.spaces.Box) -> Tuple[np.ndarray, np.ndarray]:
    """An unknown environment's centre and scale: from its bounds where they are finite and
    meaningful, else from the observations of ``STANDARDISE_STEPS`` random steps (seed 0, so the
    same every time: a memory must be read with the scales it was written with)."""
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    bounded = np.isfinite(low) & np.isfinite(high) & (np.abs(low) < UNBOUNDED) & (np.abs(high) < UNBOUNDED)
    centre, scale = (high + low) / 2, (high - low) / 2
    if not bounded.all():
        seen = _random_observations(env, STANDARDISE_STEPS)
        centre[~bounded] = seen.mean(axis=0)[~bounded]
        scale[~bounded] = seen.std(axis=0)[~bounded]
    return centre, np.where(scale > 0, scale, 1.0)


def _random_observations(env: gymnasium.Env, steps: int) -> np.ndarray:
    observation, _ = env.reset(seed=0)
    env.action_space.seed(0)
    seen = []
    for _ in range(steps):
        seen.append(observation)
        observation, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            observation, _ = env.reset()
    return np.asarray(seen, np.float64)


class TrialRules(gymnasium.Wrapper):
    """A trial's rules on one environment: hit points (a death is a truncation: the flight was cut,
    not ended by the environment), and each episode's end cause in ``info["end"]`` when it ends
    (``at_rest``, ``crashed``, ``flew_off`` for LunarLander, ``ended`` for another environment's
    own end, ``timed_out``, ``died``).

    :param hit_points: the hit points a trial starts with; None: no hit points.
    :param metabolic_cost: hit points lost each step on top of the step's reward.
    """

    def __init__(self, env: gymnasium.Env, hit_points: Optional[float], metabolic_cost: float) -> None:
        super().__init__(env)
        self.start_hit_points, self.metabolic_cost = hit_points, metabolic_cost
        self.hit_points = hit_points

    def reset(self, **kwargs):
        self.hit_points = self.start_hit_points
        return self.env.reset(**kwargs)

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        died = False
        if self.hit_points is not None:
            self.hit_points += float(reward) - self.metabolic_cost
            died = self.hit_points < 0 and not terminated
        if terminated:
            info["end"] = self._end_of(observation)
        elif died:
            truncated, info["end"] = True, DIED
        elif truncated:
            info["end"] = TIMED_OUT
        return observation, reward, terminated, truncated, info

    def _end_of(self, observation: np.ndarray) -> str:
        """Why LunarLander ended the episode (its own attributes, read where it sets them); another
        environment's own end is just ``ended``."""
        lander = self.env.unwrapped
        if not hasattr(lander, "game_over") or not hasattr(lander, "lander"):
            return ENDED
        if abs(float(observation[0])) >= 1.0:
            return "flew_off"
        if lander.game_over:
            return "crashed"
        return "at_rest" if not lander.lander.awake else ENDED


class ActionRepeat(gymnasium.Wrapper):
    """Each decision's action held for ``repeat`` frames, their rewards summed; the episode's end
    (or the trial's: a time limit, a death) stops it early.

    Why: at 50 frames a second a lander's situation barely changes from one frame to the next, so a
    decision per frame resonates with near-identical situations and its credit is spread over tiny
    steps; a decision held a few frames sees its consequences (``ACTION_REPEAT``).
    """

    def __init__(self, env: gymnasium.Env, repeat: int) -> None:
        super().__init__(env)
        self.repeat = repeat

    def step(self, action):
        """One decision: the frames it was held for are in ``info["frames"]``."""
        total = 0.0
        for frames in range(1, self.repeat + 1):
            observation, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return observation, total, terminated, truncated, {**info, "frames": frames}


class LanderMass(gymnasium.Wrapper):
    """A lander whose body is ``factor`` times as heavy as LunarLander's (its legs unchanged), from
    each reset on (``LANDER_MASS``).

    Why: a kind of another build. Gravity pulls a heavier lander down as fast, but its engines' fixed
    impulses move it less, so the same firing lands it otherwise. (LunarLander builds a new lander at
    each reset, and its reset's one settling step flies the usual mass.)
    """

    def __init__(self, env: gymnasium.Env, factor: float) -> None:
        super().__init__(env)
        self.factor = factor

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        body = self.env.unwrapped.lander
        for fixture in body.fixtures:
            fixture.density *= self.factor
        body.ResetMassData()
        return observation, info


class ActionMap(gymnasium.ActionWrapper):
    """The brain's action ``a`` fires the environment's action ``mapping[a]`` (``ACTION_MAP``).

    Why: a kind whose controls are wired otherwise. Its situations are the usual ones, but what each
    action does in them is not, so a memory of the usual wiring should give it nothing.
    """

    def __init__(self, env: gymnasium.Env, mapping: Tuple[int, ...]) -> None:
        super().__init__(env)
        self.mapping = mapping

    def action(self, action):
        return self.mapping[int(action)]


def make_env(settings, render_mode: Optional[str] = None) -> gymnasium.Env:
    """One environment of the settings (``ENV_ID``; LunarLander with its gravity, wind and mass), its
    actions wired by ``ACTION_MAP``, ended by the trial rules (``MAX_TRIAL_LENGTH`` frames, hit
    points), each action held ``ACTION_REPEAT`` frames.

    :param render_mode: ``None``, ``"human"`` (a window) or ``"rgb_array"`` (frames, for videos).
    """
    environment = settings.environment
    if render_mode == "rgb_array":
        draw_frames_off_screen()
    arguments = {name: getattr(settings, name) for name in LANDER_ARGUMENTS if getattr(settings, name) is not None}
    env = gymnasium.make(environment.env_id, render_mode=render_mode, max_episode_steps=settings.trial_length,
                         **arguments)
    if settings.lander_mass is not None:
        env = LanderMass(env, settings.lander_mass)
    if settings.action_map is not None:
        env = ActionMap(env, settings.action_map)
    env = TrialRules(env, float(settings.hit_points) if settings.use_hit_points else None, settings.metabolic_cost)
    return ActionRepeat(env, settings.action_repeat) if settings.action_repeat > 1 else env


def make_population(settings, size: int, render_mode: Optional[str] = None) -> gymnasium.vector.VectorEnv:
    """``size`` environments stepped as one (``VECTOR_ENV``: Gymnasium's ``SyncVectorEnv``, or
    ``AsyncVectorEnv`` with a process per environment); the first one renders with ``render_mode``.
    Episodes are reset by the trial loop, each with its trial's seed (no autoreset)."""
    makers = [partial(make_env, settings, render_mode if lander == 0 else None) for lander in range(size)]
    if settings.vector_env == "async" and render_mode is None:
        return gymnasium.vector.AsyncVectorEnv(makers, autoreset_mode=AutoresetMode.DISABLED)
    return gymnasium.vector.SyncVectorEnv(makers, autoreset_mode=AutoresetMode.DISABLED)
