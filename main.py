"""Train a lander whose only knowledge is a shared memory of engrams.

    python main.py                      # instance "lander3", 1000 trials, settings.py's values
    python main.py --trials 50 --no-display --seed 1
    python main.py --instance lander3 --keep --trials 200   # go on with an existing memory
    MILVUS_URI=http://localhost:19530 python main.py       # a Milvus of your own (e.g. Docker)

Every flag overrides the setting of the same name in settings.py for this run only.
"""
from __future__ import annotations

import argparse
import sys
import time

from config import Settings, SettingsError
from engram import CollectionMismatchError, EngramError, MilvusUnavailableError
from milvus_server import EmbeddedMilvusError


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, help="trials to run (TRIALS, default 1000)")
    parser.add_argument("--instance", dest="instance_name",
                        help="instance name: names the run and its Milvus collection (INSTANCE_NAME)")
    parser.add_argument("--keep", dest="drop_collection", action="store_false", default=None,
                        help="keep the instance's memory instead of starting empty (DROP_COLLECTION=False)")
    parser.add_argument("--population", dest="population_size", type=int,
                        help="landers acting at once on the shared memory (POPULATION_SIZE)")
    parser.add_argument("--display", action=argparse.BooleanOptionalAction, default=None,
                        help="render lander 0 in a window (DISPLAY); ignored without a display")
    parser.add_argument("--read-only", action=argparse.BooleanOptionalAction, default=None,
                        help="decide from memory but store nothing (READ_ONLY)")
    parser.add_argument("--seed", type=int, help="seed of the environment and the brain's noise (SEED)")
    parser.add_argument("--noise", type=float, help="std of the noise added to action scores (NOISE)")
    parser.add_argument("--milvus-uri",
                        help="Milvus to use, e.g. http://localhost:19530 (MILVUS_URI); empty = embedded")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    arguments = vars(parse_arguments(argv))
    quiet = arguments.pop("quiet")
    try:
        settings = Settings.from_module(**arguments)
        from Trainer import Trainer  # imported here so that --help answers at once
        trainer = Trainer(settings=settings, quiet=quiet)
    except (SettingsError, EngramError, CollectionMismatchError, MilvusUnavailableError,
            EmbeddedMilvusError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        mean_reward = trainer.train(settings.trials)
    except KeyboardInterrupt:
        print("interrupted: the finished trials' engrams are stored.", file=sys.stderr)
        return 130
    finally:
        trainer.close()
    seconds = time.monotonic() - started
    landed = sum(record.landed for record in trainer.metrics)
    print(f"{settings.instance_name}: {len(trainer.metrics)} trials, mean reward {mean_reward:.1f}, "
          f"{landed} landed, {trainer.engram_count} engrams in memory; {trainer.steps_taken / seconds:.0f} "
          f"steps/s, {60 * len(trainer.metrics) / seconds:.0f} trials/min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
