"""Whether a window can open: rendering where there is a display, one clear error where there is none,
and frames drawn off-screen without the display libraries' complaints."""
from __future__ import annotations

import os
import sys
from typing import Optional

from resonant_vectors.errors import ResonantVectorsError

# SDL's drivers that need no display or sound card: on a headless machine the default ones print
# "error: XDG_RUNTIME_DIR ..." (Wayland) and ALSA's lines while failing over, though nothing is wrong.
HEADLESS_SDL_DRIVERS = {"SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}


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


def draw_frames_off_screen() -> None:
    """Before an environment renders frames (``rgb_array``) on a machine without a display, choose
    SDL's drivers that need none, so pygame starts without a spurious error; a driver the user set
    is kept, and where there is a display nothing changes (a window may still be opened later)."""
    if display_available():
        return
    for name, driver in HEADLESS_SDL_DRIVERS.items():
        os.environ.setdefault(name, driver)
