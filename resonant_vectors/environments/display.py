"""Whether a window can open: rendering where there is a display, and one clear error where there is none."""
from __future__ import annotations

import os
import sys
from typing import Optional

from resonant_vectors.errors import ResonantVectorsError


class NoDisplayError(ResonantVectorsError, RuntimeError):
    """A window was asked for on a machine without a display."""


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
