"""LunarLander, the seed's environment: its id and its observation scales, in the folder the seed
named ``gym/`` (nothing here imports the old ``gym`` package: Gymnasium replaced it)."""
import numpy as np

from resonant_vectors.environments.display import display_available, render_mode_for
from resonant_vectors.environments.profiles import DEFAULT_ENV_ID, profile

__all__ = ["ENV_ID", "OBSERVATION_SCALE", "normalise", "display_available", "render_mode_for"]

ENV_ID = DEFAULT_ENV_ID   # the seed's LunarLander-v2 was removed from Gymnasium
# Scales that bring each observation component to roughly [-1, 1]:
# x, y ÷ 1.5 · vx, vy ÷ 5 · angle ÷ π · angular velocity ÷ 5 · legs already 0/1.
OBSERVATION_SCALE = profile(ENV_ID).scale


def normalise(observations: np.ndarray) -> np.ndarray:
    """Scale raw LunarLander observations (one per row, or one flat) to roughly [-1, 1]."""
    return profile(ENV_ID).normalise(observations)
