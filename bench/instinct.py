"""The instinct experiment: do newcomers that never trained fly better on a trained memory?

    python bench/instinct.py --quick --json bench/results/instinct-quick.json   # a few minutes
    python bench/instinct.py --trials 1000 --json bench/records/instinct.json   # 3 seeds of the steady preset

For each seed a population trains a shared memory; then newcomers fly their first trials read-only
on it, and as many newcomers fly on an empty memory; both are compared with the population's last
trials (means, landing rates, 95% intervals over seeds). A similar animal (gravity -8) flies the
same way, and a second generation trains on top of the memory, timed against the first. The same
as ``python main.py instinct``, but on a scratch memory (a server in a temporary folder, removed
afterwards): your memory folder gains no ``instinct_*`` collections.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from resonant_vectors.cli.flags import add_instinct_flags, run_instinct  # noqa: E402
from resonant_vectors.errors import ResonantVectorsError  # noqa: E402
from resonant_vectors.experiments import lab as experiments  # noqa: E402

QUICK = {"seeds": [0, 1], "trials": 150, "population": 8, "newcomers": 4, "first_trials": 5, "second_trials": 100}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_instinct_flags(parser)
    parser.set_defaults(runs_dir="bench/results/runs", json="bench/results/instinct.json")
    parser.add_argument("--quick", action="store_true", help=f"a short run: {QUICK}")
    arguments = vars(parser.parse_args())
    if arguments.pop("quick"):
        arguments.update(QUICK)
    try:
        with experiments.scratch_memory() as scratch:
            run_instinct(arguments, scratch)
    except ResonantVectorsError as error:
        sys.exit(f"error: {error}")
    except KeyboardInterrupt:
        sys.exit(f"interrupted: the populations' run folders are in {arguments['runs_dir']}; no JSON was written.")


if __name__ == "__main__":
    main()
