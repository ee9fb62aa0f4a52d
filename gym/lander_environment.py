"""LunarLander, the seed's environment: its id, its observation scales, and whether a window can open.

This folder is named ``gym/`` as the seed named it; nothing here imports the old ``gym``
package (Gymnasium replaced it), so code imports ``gym.lander_environment`` from this project.
Every environment's scales and trial rules live in ``gym/environments.py``.
"""
from __future__ import annotations

import os
import sys
from typing import Optional

import numpy as np

from gym.environments import DEFAULT_ENV_ID, profile

ENV_ID = DEFAULT_ENV_ID   # the seed's LunarLander-v2 was removed from Gymnasium
# Scales that bring each observation component to roughly [-1, 1]:
# x, y ÷ 1.5 · vx, vy ÷ 5 · angle ÷ π · angular velocity ÷ 5 · legs already 0/1.
OBSERVATION_SCALE = profile(ENV_ID).scale


def normalise(observations: np.ndarray) -> np.ndarray:
    """Scale raw LunarLander observations (one per row, or one flat) to roughly [-1, 1]."""
    return profile(ENV_ID).normalise(observations)


def display_available() -> bool:
    """Whether a window can be opened: on Linux that needs an X11 or Wayland display."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def render_mode_for(display: bool) -> Optional[str]:
    """``"human"`` when a display is asked for and there is one; else ``None`` with one notice."""
    if not display:
        return None
    if display_available():
        return "human"
    print("DISPLAY is on but this machine has no display: training without rendering.", file=sys.stderr)
    return None
