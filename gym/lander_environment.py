"""Making the LunarLander environment and normalising its observations.

This folder is named ``gym/`` as the seed named it; nothing here imports the old ``gym``
package (Gymnasium replaced it), so code imports ``gym.lander_environment`` from this project.
"""
from __future__ import annotations

import math
import os
import sys
from typing import Optional

import gymnasium
import numpy as np

ENV_ID = "LunarLander-v3"   # the seed's LunarLander-v2 was removed from Gymnasium
# Scales that bring each observation component to roughly [-1, 1]:
# x, y ÷ 1.5 · vx, vy ÷ 5 · angle ÷ π · angular velocity ÷ 5 · legs already 0/1.
OBSERVATION_SCALE = np.array([1.5, 1.5, 5.0, 5.0, math.pi, 5.0, 1.0, 1.0], dtype=np.float32)


def normalise(observations: np.ndarray) -> np.ndarray:
    """Scale raw LunarLander observations (one per row, or one flat) to roughly [-1, 1]."""
    return np.asarray(observations, dtype=np.float32) / OBSERVATION_SCALE


def display_available() -> bool:
    """Whether a window can be opened: on Linux that needs an X11 or Wayland display."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def make_lander(settings, render_mode: Optional[str] = None) -> gymnasium.Env:
    """LunarLander-v3 with the settings' gravity, wind and turbulence.

    :param render_mode: ``None``, ``"human"`` (a window) or ``"rgb_array"`` (frames, for videos).
    """
    return gymnasium.make(ENV_ID, render_mode=render_mode, gravity=settings.gravity,
                          enable_wind=settings.enable_wind, wind_power=settings.wind_power,
                          turbulence_power=settings.turbulence_power)


def render_mode_for(display: bool) -> Optional[str]:
    """``"human"`` when a display is asked for and there is one; else ``None`` with one notice."""
    if not display:
        return None
    if display_available():
        return "human"
    print("DISPLAY is on but this machine has no display: training without rendering.", file=sys.stderr)
    return None
