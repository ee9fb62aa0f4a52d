"""``python gym/lander.py``: watch a trained memory fly (the same flight as ``python main.py watch``)."""
from __future__ import annotations

import argparse
import sys
import warnings

from resonant_vectors.cli.flags import add_flight_flags, print_warning
from resonant_vectors.config import Settings
from resonant_vectors.errors import ResonantVectorsError
from resonant_vectors.loop.watching import fly


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Watch a trained memory fly: read-only episodes in a window, "
                                                 "or recorded to a GIF (--gif, works headless).")
    parser.add_argument("--instance", help="memory to fly with (INSTANCE_NAME)")
    add_flight_flags(parser)
    arguments = parser.parse_args(argv)
    try:
        settings = Settings.from_module()
        with warnings.catch_warnings():
            warnings.showwarning = print_warning
            fly(arguments.instance or settings.instance_name, arguments.episodes, arguments.gif, arguments.seed,
                settings=settings)
    except ResonantVectorsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
