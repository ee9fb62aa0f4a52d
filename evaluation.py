"""``evaluate``: how well a memory flies, read-only and without exploration, on fixed seeds.

Why its own module: evaluation uses the ``Trainer``'s trial loop and ``policy.Policy`` (so that what
is scored is what training learned and what ``watch`` shows) but is not part of training.
"""
from __future__ import annotations

from typing import Callable, Optional

import gymnasium
import numpy as np
from tqdm import tqdm

from config import Settings
from policy import greedy_settings
from Trainer import LANDING_REWARD, Trainer

EVALUATION_SEED = 1_000_000    # evaluation episodes use seeds no training trial (SEED + n) reaches soon


def evaluate(settings: Settings, episodes: int = 100, first_seed: int = EVALUATION_SEED, progress: bool = False,
             on_step: Optional[Callable[[gymnasium.Env, int, float], None]] = None,
             render_mode: Optional[str] = None) -> dict:
    """Fly ``episodes`` episodes read-only with noise off, on the seeds from ``first_seed`` on, from
    the memory of ``settings.instance_name``, by the trial rules of ``settings`` (population,
    ``MAX_TRIAL_LENGTH``, hit points); return the mean and std of their rewards, the landing rate
    and each episode's reward. ``watch`` flies through here too, so it shows what this scores.

    :param progress: show a progress bar (an evaluation of 100 episodes takes minutes).
    :param on_step: see ``Trainer``: lander 0's steps, for watching or recording them.
    :raises MemoryNotFoundError: no memory has that name (nothing is created).
    """
    if not isinstance(episodes, int) or isinstance(episodes, bool) or episodes < 1:
        raise ValueError(f"episodes: expected a whole number >= 1, got {episodes!r}")
    reading = greedy_settings(settings).replace(read_only=True, seed=first_seed, display=False)
    with Trainer(settings=reading, quiet=True, on_step=on_step, render_mode=render_mode) as evaluator, \
            tqdm(total=episodes, unit="episode", desc=f"evaluating {settings.instance_name}", leave=False,
                 disable=not progress) as bar:
        evaluator.train(episodes, callback=lambda record: bar.update(1))
    rewards = np.array([record.reward for record in sorted(evaluator.metrics, key=lambda r: r.trial)])
    return {"instance": settings.instance_name, "episodes": episodes, "mean": round(float(rewards.mean()), 2),
            "std": round(float(rewards.std()), 2),
            "landing_rate": round(float(np.mean(rewards >= LANDING_REWARD)), 4),
            "engrams": evaluator.engram_count, "first_seed": first_seed,
            "rewards": [round(float(reward), 2) for reward in rewards]}
