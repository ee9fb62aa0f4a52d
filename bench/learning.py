"""Learning curves of credit rules over fixed seeds, each seed its own memory, then a deterministic
evaluation (read-only, noise off, fixed episode seeds).

    python bench/learning.py --quick                                  # writes bench/results/learning-quick.json
    python bench/learning.py --jobs 2                                 # the full run: bench/results/learning.json
    python bench/learning.py --variants seed episodic --seeds 0 1 2 --trials 1000 --set bootstrap_steps=20
    python bench/learning.py --env CartPole-v1 --variants seed landing_rule --trials 300

Variants are sets of settings on top of settings.py (``experiments.VARIANTS``) or a preset's name
from ``settings.PRESETS``. Each run is saved as a run folder (``--runs-dir``), so
``python main.py compare`` can overlay any of them; the memories are a scratch server's (in a
temporary folder, removed afterwards), never your memory folder's. Writes the JSON (per variant: the settings that
differ, per-seed curves and figures — blocks of 100 trials, the first trial whose rolling mean of
100 reached +100 / +200 (another environment: its threshold), how the trials ended — and
train_mean, last100_mean, solved_rate, eval_mean, eval_std, eval_solved_rate averaged over seeds)
and a PNG of the curves with a band across seeds.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from resonant_vectors.cli.flags import preset_names, whole_number  # noqa: E402
from resonant_vectors.config import Settings, presets  # noqa: E402
from resonant_vectors.errors import ResonantVectorsError
from resonant_vectors.experiments import lab as experiments  # noqa: E402

QUICK = {"variants": ["seed", "episodic", "landing"], "seeds": [0, 1], "trials": 200, "population": 8,
         "eval_episodes": 30}
FULL = {"variants": ["seed", "episodic", "landing"], "seeds": [0, 1, 2], "trials": 1000, "population": 8,
        "eval_episodes": 100}


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     epilog=__doc__.split("\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"the quick run: {QUICK}")
    parser.add_argument("--variants", nargs="+", help=f"variants: {', '.join(experiments.VARIANTS)} or a preset "
                                                      f"({preset_names()})")
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds (each trains its own memory)")
    parser.add_argument("--trials", type=whole_number(1), help="training trials per seed")
    parser.add_argument("--population", type=whole_number(1), help="landers flying at once on each memory")
    parser.add_argument("--eval-episodes", type=whole_number(1), help="evaluation episodes per seed")
    parser.add_argument("--runs-dir", default="bench/results/runs", help="where the run folders go")
    parser.add_argument("--env", dest="env_id", help="the Gymnasium environment (ENV_ID; default settings.py's)")
    parser.add_argument("--json", help="the JSON to write (default: bench/results/learning.json, "
                                       "learning-quick.json with --quick)")
    parser.add_argument("--plot", help="the PNG to write (default: the JSON's name with .png)")
    parser.add_argument("--progress", action="store_true", help="show each run's progress bar too")
    parser.add_argument("--jobs", type=whole_number(1), default=1,
                        help="runs at once, each in its own process (default 1)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="change a setting in every variant, e.g. --set bootstrap_steps=20 (repeatable)")
    return parser.parse_args()


def parse_changes(assignments: list) -> dict:
    """``["bootstrap_steps=20", "neighbour_weighting=distance"]`` as settings (JSON values, else strings)."""
    changes = {}
    for assignment in assignments:
        name, separator, text = assignment.partition("=")
        if not separator:
            sys.exit(f"error: --set {assignment!r}: expected NAME=VALUE, e.g. --set bootstrap_steps=20")
        try:
            changes[name.strip().lower()] = json.loads(text)
        except json.JSONDecodeError:
            changes[name.strip().lower()] = text
    return changes


def main() -> None:
    arguments = parse_arguments()
    plan = dict(QUICK if arguments.quick else FULL)
    plan.update({key: value for key, value in vars(arguments).items() if key in plan and value is not None})
    try:
        unknown = [v for v in plan["variants"] if v not in experiments.VARIANTS and v not in presets()]
        if unknown:
            sys.exit(f"error: unknown variant(s) {unknown}; expected names from {list(experiments.VARIANTS)} "
                     f"or presets {list(presets())}")
        base = Settings.from_module(**({"env_id": arguments.env_id} if arguments.env_id else {}))
        with experiments.scratch_memory(base) as scratch:
            result = experiments.learning_benchmark(runs_dir=Path(arguments.runs_dir), quiet=not arguments.progress,
                                                    jobs=arguments.jobs, changes=parse_changes(arguments.set),
                                                    base=scratch, progress=True, **plan)
    except ResonantVectorsError as error:
        sys.exit(f"error: {error}")
    except KeyboardInterrupt:
        sys.exit(f"interrupted: the finished runs' folders are in {arguments.runs_dir}; no JSON was written.")
    json_path = arguments.json or f"bench/results/learning{'-quick' if arguments.quick else ''}.json"
    plot_path = experiments.save(result, experiments.plot_learning(result), json_path, arguments.plot)
    print(experiments.figures_table(result).to_string())
    print("\nhow the trials ended (shares):")
    print(experiments.ends_table(result).to_string())
    print("\nthe curves:")
    print(experiments.curve_table(result).to_string())
    print(f"{result['seconds']:.0f} s; wrote {json_path} and {plot_path}")


if __name__ == "__main__":
    main()
