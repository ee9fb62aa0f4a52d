"""A flight recorded on a machine without a display: the GIF holds what the message says, and
the display libraries are told there is no display rather than left to complain."""
from __future__ import annotations

import os

import numpy as np
from PIL import Image

from resonant_vectors.environments.display import draw_frames_off_screen
from resonant_vectors.loop.watching import save_gif


def test_saving_a_gif_states_the_frame_count_its_file_holds(tmp_path, capsys):
    still = np.zeros((8, 8, 3), np.uint8)
    moved = still.copy()
    moved[0, 0] = 255
    held = save_gif([still, still, moved], str(tmp_path / "flight.gif"))
    with Image.open(tmp_path / "flight.gif") as gif:
        assert held == gif.n_frames == 2  # the writer merged the two identical frames into one
    assert capsys.readouterr().out.startswith("saved 2 frames (3 recorded; identical consecutive ones merged")


def test_drawing_frames_headless_picks_sdls_driver_without_a_display_but_keeps_the_users(monkeypatch):
    monkeypatch.setenv("DISPLAY", "")
    monkeypatch.setenv("WAYLAND_DISPLAY", "")
    monkeypatch.setenv("SDL_VIDEODRIVER", "x11")
    monkeypatch.setenv("SDL_AUDIODRIVER", "unset")  # recorded, so the one the call sets is undone after the test
    monkeypatch.delenv("SDL_AUDIODRIVER")
    draw_frames_off_screen()
    assert (os.environ["SDL_VIDEODRIVER"], os.environ["SDL_AUDIODRIVER"]) == ("x11", "dummy")


def test_drawing_frames_where_there_is_a_display_leaves_sdl_alone(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
    monkeypatch.setenv("SDL_AUDIODRIVER", "unset")  # recorded, so the one the call sets is undone after the test
    monkeypatch.delenv("SDL_AUDIODRIVER")
    draw_frames_off_screen()
    assert "SDL_VIDEODRIVER" not in os.environ and "SDL_AUDIODRIVER" not in os.environ
