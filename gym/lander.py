"""Watch a trained memory fly: read-only episodes in a window, or recorded to a GIF.

    python gym/lander.py --instance lander3                 # a window, where there is a display
    python gym/lander.py --instance lander3 --gif fly.gif   # a file, anywhere (headless too)

The same as ``python main.py watch`` (``resonant_vectors.cli.watch``).
"""
import sys

from resonant_vectors.cli.watch import main
from resonant_vectors.loop.watching import fly, save_gif

__all__ = ["fly", "save_gif", "main"]

if __name__ == "__main__":
    sys.exit(main())
