"""Exploration from the memory's ignorance (NOVELTY_BONUS), on a real small environment and a real
in-process FAISS memory: the bonus sends landers toward situations their memory has not seen."""
from __future__ import annotations

import numpy as np
import pytest

from resonant_vectors.agent.brain import EngramBrain
from resonant_vectors.agent.policy import Policy, greedy_settings
from resonant_vectors.config import Settings
from resonant_vectors.environments.profiles import make_population
from resonant_vectors.loop.evaluation import fly_read_only
from resonant_vectors.loop.population import PopulationLoop, remembering
from resonant_vectors.memory.in_process import InProcessMemory


def memory_of_random_trials(settings: Settings, trials: int) -> InProcessMemory:
    """A memory taught by trials of uniformly random actions (ε = 1): the same flights whatever the
    credit rule, so two memories differ only in what their steps were credited with."""
    memory = InProcessMemory.for_settings(settings)
    brain = EngramBrain.from_settings(settings, memory, np.random.default_rng(settings.seed))
    envs = make_population(settings, settings.population_size)
    try:
        PopulationLoop(envs, Policy(brain, settings), settings, settings.seed,
                       remember=remembering(memory, brain.resonator_factory, settings)).run(range(trials))
    finally:
        envs.close()
    return memory


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_novelty_bonus_sends_a_car_toward_states_its_memory_has_not_seen(seed, tmp_path):
    explorer = Settings.from_module(preset="landing_rule", env_id="MountainCar-v0", seed=seed, display=False,
                                    population_size=4, milvus_data_dir=str(tmp_path), epsilon=1.0, epsilon_final=None)
    unfamiliarity = {}
    for bonus in (0.0, 1.0):
        memory = memory_of_random_trials(explorer.replace(novelty_bonus=bonus), trials=8)
        flights = fly_read_only(greedy_settings(explorer).replace(read_only=True, seed=10_000 + seed), 8, memory)
        unfamiliarity[bonus] = np.mean([flight.neighbour_distance for flight in flights])
    assert unfamiliarity[1.0] > 3 * unfamiliarity[0.0]  # greedy, from the memory alone: it goes where it has not been
