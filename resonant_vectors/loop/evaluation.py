"""``evaluate``: how well a memory flies, read-only and without exploration, on fixed seeds.

Why its own module: evaluation flies the population loop (``population.PopulationLoop``) with
``policy.Policy`` — so that what is scored is what training learned and what ``watch`` shows — but
remembers nothing and is not part of training. ``fly_read_only`` is the same flight for any
settings (the instinct experiment's newcomers fly it with their exploration).
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import gymnasium
import numpy as np

from resonant_vectors.agent.brain import EngramBrain
from resonant_vectors.agent.policy import Policy, greedy_settings
from resonant_vectors.config import Settings
from resonant_vectors.environments.profiles import make_population
from resonant_vectors.loop.callbacks import FollowLander, ProgressReport, StopOnSignal
from resonant_vectors.loop.population import PopulationLoop, TrialCallback
from resonant_vectors.memory.lifecycle import InstanceMemory
from resonant_vectors.memory.seam import Memory
from resonant_vectors.runs.records import TrialRecord

EVALUATION_SEED = 1_000_000    # evaluation episodes use seeds no training trial (SEED + n) reaches soon


def fly_read_only(settings: Settings, trials: int, memory: Optional[Memory] = None,
                  callbacks: Sequence[TrialCallback] = (), render_mode: Optional[str] = None) -> List[TrialRecord]:
    """Fly ``trials`` trials of a population on a memory that learns nothing from them, with the
    settings' rules and exploration; trial ``n`` on environment seed ``SEED + n``. Returns their
    records, in trial order.

    :param memory: the memory to read; by default the settings' instance in Milvus.
    :raises MemoryNotFoundError: no memory has the instance's name (nothing is created).
    """
    instance = InstanceMemory.to_read(settings) if memory is None else None
    envs = None
    try:
        envs = make_population(settings, settings.population_size, render_mode)
        memory = memory or instance.store.memory
        brain = EngramBrain.from_settings(settings, memory, np.random.default_rng(settings.seed))
        loop = PopulationLoop(envs, Policy(brain, settings), settings, settings.seed,
                              callbacks=[StopOnSignal(), *callbacks], engrams=memory.count())
        return sorted(loop.run(range(trials)), key=lambda record: record.trial)
    finally:
        if envs is not None:
            envs.close()
        if instance is not None:
            instance.close()


def evaluate(settings: Settings, episodes: int = 100, first_seed: int = EVALUATION_SEED, progress: bool = False,
             on_step: Optional[Callable[[gymnasium.Env, int, float], None]] = None,
             render_mode: Optional[str] = None, memory: Optional[Memory] = None) -> dict:
    """Fly ``episodes`` episodes read-only with exploration off, on the seeds from ``first_seed`` on,
    from the memory of ``settings.instance_name``, by the trial rules of ``settings`` (population,
    ``MAX_TRIAL_LENGTH``, hit points); return the mean and std of their rewards, the solved rate,
    how the episodes ended and each episode's reward. ``watch`` flies through here too, so it shows
    what this scores.

    :param progress: show a progress bar (an evaluation of 100 episodes takes minutes).
    :param on_step: see ``Trainer``: lander 0's steps, for watching or recording them.
    :param memory: the memory to read; by default the instance's in Milvus.
    :raises MemoryNotFoundError: no memory has that name (nothing is created).
    """
    if not isinstance(episodes, int) or isinstance(episodes, bool) or episodes < 1:
        raise ValueError(f"episodes: expected a whole number >= 1, got {episodes!r}")
    reading = greedy_settings(settings).replace(read_only=True, seed=first_seed, display=False)
    listeners = [ProgressReport(episodes, lines=False, label=f"evaluating {settings.instance_name}")] if progress else []
    if on_step is not None:
        listeners.append(FollowLander(on_step))
    records = fly_read_only(reading, episodes, memory, listeners, render_mode)
    rewards = np.array([record.reward for record in records])
    ends = [record.end for record in records]
    return {"instance": settings.instance_name, "env_id": settings.env_id, "episodes": episodes,
            "mean": round(float(rewards.mean()), 2), "std": round(float(rewards.std()), 2),
            "solved_rate": round(float(np.mean([record.solved for record in records])), 4),
            "solved_at": settings.environment.solved_at,
            "ends": {end: ends.count(end) for end in sorted(set(ends))},
            "engrams": records[-1].engrams if records else 0, "first_seed": first_seed,
            "rewards": [round(float(reward), 2) for reward in rewards]}
