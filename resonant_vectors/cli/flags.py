"""What the command-line programs share: argument types, flags and the user errors they report.

Why its own module: ``main.py``, ``gym/lander.py``, ``hello_milvus.py`` and the benchmarks parse
the same flags and turn the same mistakes into one line each; none of them should import another
program to do so.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Optional

from resonant_vectors.config import Settings, SettingsError, presets
from resonant_vectors.errors import ResonantVectorsWarning
from resonant_vectors.experiments import lab as experiments
from resonant_vectors.runs.folder import RUNS_DIR

DEFAULT_EXPERIMENT_VARIANT = "steady"


def whole_number(minimum: int):
    """An argparse type: a whole number >= ``minimum``, refused with the flag's name before anything starts."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {value}")
        return value
    return parse


def gif_file(text: str) -> str:
    """An argparse type: a GIF path whose folder exists (found out before the flight, not after)."""
    folder = Path(text).expanduser().resolve().parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"the folder {folder} does not exist; create it or record elsewhere")
    return text


def preset_names() -> str:
    """The presets of settings.py for a help text (settings.py's own error is reported when it is read)."""
    try:
        return ", ".join(repr(name) for name in presets()) or "none defined"
    except SettingsError:
        return "see settings.PRESETS"


def add_flight_flags(parser: argparse.ArgumentParser) -> None:
    """watch's flags (shared with gym/lander.py)."""
    parser.add_argument("--episodes", type=whole_number(1), default=1, help="episodes to fly (default 1)")
    parser.add_argument("--gif", type=gif_file, help="record to this GIF file instead of a window (works headless)")
    parser.add_argument("--seed", type=whole_number(0), default=0, help="seed of the first episode")


def add_instinct_flags(parser: argparse.ArgumentParser) -> None:
    """The instinct experiment's flags (shared by main.py instinct and bench/instinct.py)."""
    parser.add_argument("--variant", default=DEFAULT_EXPERIMENT_VARIANT,
                        help=f"the settings the population trains with: a preset or a bench variant "
                             f"(default {DEFAULT_EXPERIMENT_VARIANT!r})")
    parser.add_argument("--seeds", nargs="+", type=whole_number(0), default=[0, 1, 2],
                        help="seeds; each trains its own memory")
    parser.add_argument("--trials", type=whole_number(1), default=600,
                        help="training trials of the population per seed")
    parser.add_argument("--population", type=whole_number(1), default=8, help="landers training at once")
    parser.add_argument("--newcomers", type=whole_number(1), default=8, help="newcomers per group")
    parser.add_argument("--first-trials", type=whole_number(1), default=10, help="trials each newcomer flies")
    parser.add_argument("--second-trials", type=whole_number(1), default=300,
                        help="trials the second generation trains on the trained memory")
    parser.add_argument("--runs-dir", default=str(RUNS_DIR), help="where the populations' run folders go")
    parser.add_argument("--json", default=str(RUNS_DIR / "instinct.json"), help="the JSON to write (PNG beside it)")


def print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """The project's own warnings as one line ("warning: ..."), as its errors are; others as Python shows them."""
    if issubclass(category, ResonantVectorsWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def run_instinct(arguments: dict, base: Optional[Settings] = None) -> int:
    """The instinct experiment with parsed ``add_instinct_flags`` arguments; prints its table.

    :param base: the settings it starts from, their memory included (settings.py's by default).
    """
    result = experiments.instinct_experiment(
        arguments["variant"], arguments["seeds"], arguments["trials"], arguments["population"],
        arguments["newcomers"], arguments["first_trials"], Path(arguments["runs_dir"]), base=base,
        second_trials=arguments["second_trials"])
    plot = experiments.save(result, experiments.plot_instinct(result), Path(arguments["json"]))
    print(experiments.instinct_table(result).to_string())
    print(experiments.generations_table(result).to_string())
    print(f"wrote {arguments['json']} and {plot}")
    return 0
