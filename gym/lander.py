"""Watch a trained memory fly: read-only episodes in a window, or recorded to a GIF.

    python gym/lander.py --instance lander3                 # a window, where there is a display
    python gym/lander.py --instance lander3 --gif fly.gif   # a file, anywhere (headless too)

The memory is only read: nothing is stored and the collection is never dropped.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

import numpy as np  # noqa: E402

from config import Settings  # noqa: E402
from gym.lander_environment import display_available, make_lander, normalise  # noqa: E402

GIF_FRAME_MS = 20  # LunarLander runs at 50 frames per second


class NoDisplayError(RuntimeError):
    """A window was asked for on a machine without a display."""


def fly(instance_name: str, episodes: int = 1, gif_path: str | None = None, seed: int = 0,
        noise: float = 0.0, settings: Settings | None = None) -> list:
    """Fly ``episodes`` read-only episodes from the memory of ``instance_name``; return their rewards.

    Each decision aims at success 1.0 (the best the memory knows), where training aims at its
    running mean success plus ``SUCCESS_MARGIN``.

    :param gif_path: record every frame to this GIF instead of opening a window.
    :param noise: std of the score noise; 0 shows what the memory itself says.
    """
    from engram import EngramStore
    from EngramBrain import EngramBrain

    settings = (settings or Settings.from_module()).replace(instance_name=instance_name, read_only=True, noise=noise)
    if gif_path is None and not display_available():
        raise NoDisplayError("no display here to open a window; pass --gif FILE to record the flight instead")
    store = EngramStore(instance_name, reset=False, settings=settings)
    brain = EngramBrain.from_settings(settings, store, np.random.default_rng(seed))
    env = make_lander(settings, render_mode="rgb_array" if gif_path else "human")
    frames, rewards = [], []
    for episode in range(episodes):
        observation, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            action = int(brain.choose(brain.decide(normalise(observation), success=1.0))[0])
            observation, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
            if gif_path:
                frames.append(env.render())
        rewards.append(total)
        print(f"episode {episode}: reward {total:.1f}")
    env.close()
    if gif_path:
        save_gif(frames, gif_path)
    return rewards


def save_gif(frames: list, path: str) -> None:
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=GIF_FRAME_MS, loop=0)
    print(f"saved {len(images)} frames to {path}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instance", default=Settings.from_module().instance_name, help="memory to fly with")
    parser.add_argument("--episodes", type=int, default=1, help="episodes to fly")
    parser.add_argument("--gif", help="record to this GIF file instead of a window")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    parser.add_argument("--noise", type=float, default=0.0, help="std of the score noise (0 = the memory alone)")
    arguments = parser.parse_args(argv)
    fly(arguments.instance, arguments.episodes, arguments.gif, arguments.seed, arguments.noise)
    return 0


if __name__ == "__main__":
    sys.exit(main())
