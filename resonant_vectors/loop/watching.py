"""Watching a trained memory fly: read-only episodes in a window, or recorded to a GIF
(``python main.py watch``, ``python gym/lander.py``).

The memory is only read: nothing is stored, the collection is never dropped, and a memory that
does not exist is an error (nothing is created). The flight is ``evaluate``'s (see ``fly``).
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from resonant_vectors.config import Settings
from resonant_vectors.environments.display import NoDisplayError, display_available
from resonant_vectors.loop.evaluation import evaluate

GIF_FRAME_MS = 20  # LunarLander runs at 50 frames per second (a frame is recorded per decision: x ACTION_REPEAT)


def fly(instance_name: str, episodes: int = 1, gif_path: str | None = None, seed: int = 0,
        settings: Settings | None = None) -> list:
    """Fly ``episodes`` read-only episodes from the memory of ``instance_name``; return their rewards.

    One policy: the flight is ``evaluation.evaluate``'s (noise off, the run's trial rules: step limit,
    hit points, the aim at the running mean success + ``SUCCESS_MARGIN``), on the seeds from
    ``seed`` on, with one lander so that every episode is shown. So what watch shows is what
    ``evaluate --episodes N`` with ``POPULATION_SIZE = 1`` scores on those seeds.

    :param gif_path: record a frame per decision to this GIF instead of opening a window; its folder must exist.
    :raises MemoryNotFoundError: no memory has that name (nothing is created).
    """
    settings = (settings or Settings.from_module()).replace(instance_name=instance_name, population_size=1)
    if gif_path is None and not display_available():
        raise NoDisplayError("no display here to open a window; pass --gif FILE to record the flight instead")
    if gif_path is not None and not Path(gif_path).expanduser().resolve().parent.is_dir():
        raise ValueError(f"gif_path {gif_path!r}: its folder does not exist; create it or record elsewhere")
    frames = []

    def record(env, action: int, reward: float) -> None:
        frames.append(env.render())

    result = evaluate(settings, episodes, first_seed=seed, on_step=record if gif_path else None,
                      render_mode="rgb_array" if gif_path else "human")
    for episode, reward in enumerate(result["rewards"]):
        print(f"episode {episode} (seed {seed + episode}): reward {reward:.1f}")
    if gif_path:
        save_gif(frames, gif_path, GIF_FRAME_MS * settings.action_repeat)
    return result["rewards"]


def save_gif(frames: list, path: str, frame_ms: int = GIF_FRAME_MS) -> int:
    """Write the frames to a GIF and say how many it holds, read back from the file: the GIF writer
    merges identical consecutive frames (a lander at rest) into one shown as long, so the file can
    hold fewer frames than were recorded. Returns the file's frame count."""
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
    with Image.open(path) as written:
        in_file = written.n_frames
    merged = f" ({len(images)} recorded; identical consecutive ones merged, shown as long)" \
        if in_file != len(images) else ""
    print(f"saved {in_file} frames{merged} to {path}")
    return in_file
