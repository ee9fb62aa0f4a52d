"""Where a training's time goes: one population trained for a while under cProfile, its time split
into the phases of a step.

    python bench/where_time_goes.py --json bench/records/where-time-goes.json       # population 32, landing, 60 s
    python bench/where_time_goes.py --population 1 --seconds 30

It starts its own embedded server in a temporary folder (a user's ``.milvus/`` is not touched) and
trains a fresh memory. The phases are the cumulative times of the functions that do them (the
profiler's own cost is in every phase, most in the ones that make many small Python calls, so the
shares are a guide, not a stopwatch): deciding (the policy: search, scores, noise or ε), of which
searching (the memory's nearest neighbours); the environments' steps; storing a finished trial's
engrams (the write to Milvus, and the replica); turning a trial into engrams (credit); the rest is
the loop's own bookkeeping.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from resonant_vectors.config import Settings  # noqa: E402
from resonant_vectors.experiments import lab as experiments  # noqa: E402
from resonant_vectors.loop.trainer import Trainer  # noqa: E402

# phase -> (file, function) whose cumulative time it is
PHASES = {
    "deciding": ("agent/policy.py", "act"),
    "searching (part of deciding)": ("milvus/collection.py", "nearest"),
    "environment steps": ("vector/sync_vector_env.py", "step"),
    "storing engrams": ("milvus/collection.py", "add"),
    "making engrams (credit)": ("agent/credit.py", "trial_engrams"),
}
LOOP = ("loop/population.py", "run")


def cumulative_seconds(stats: pstats.Stats, place: tuple) -> float:
    """The cumulative time of the functions named ``place`` (file suffix, function name)."""
    suffix, name = place
    return sum(entry[3] for (path, _, function), entry in stats.stats.items()
               if path.endswith(suffix) and function == name)


def profile(preset: str, population: int, seconds: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="rv-profile-", ignore_cleanup_errors=True) as data_dir:
        settings = Settings.from_module(preset=preset, milvus_data_dir=data_dir, milvus_uri="", display=False,
                                        seed=0, population_size=population, milvus_idle_grace=0.0)
        trainer = Trainer("bench_profile", settings=settings, quiet=True)
        profiler = cProfile.Profile()
        started = time.monotonic()
        profiler.enable()
        trainer.train(1_000_000, callback=lambda record: time.monotonic() - started < seconds)
        profiler.disable()
        steps = trainer.steps_taken
        trainer.close()
        trainer.store.drop()
    stats = pstats.Stats(profiler)
    total = cumulative_seconds(stats, LOOP)
    phases = {phase: cumulative_seconds(stats, place) for phase, place in PHASES.items()}
    counted = sum(value for phase, value in phases.items() if "part of" not in phase)
    phases["the loop's bookkeeping"] = max(total - counted, 0.0)
    return {"preset": preset, "population": population, "seconds": round(total, 2), "steps": steps,
            "search_backend": settings.search_backend,
            "shares": {phase: round(value / total, 3) for phase, value in phases.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="landing", help="the settings trained (default: landing, the replica)")
    parser.add_argument("--population", type=int, default=32, help="landers flying at once (default 32)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to train (default 60)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    arguments = parser.parse_args(argv)
    result = profile(arguments.preset, arguments.population, arguments.seconds)
    print(f"{arguments.preset}, population {arguments.population}, {result['search_backend']}: "
          f"{result['steps']:,} steps in {result['seconds']:.0f} s under the profiler")
    for phase, share in result["shares"].items():
        print(f"  {phase:<30} {100 * share:5.1f}%")
    if arguments.json:
        experiments.write_record(result, Path(arguments.json))
        print(f"wrote {arguments.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
