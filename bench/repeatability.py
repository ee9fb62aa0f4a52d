"""Is an evaluation repeatable? One memory evaluated twice, and a second training of the same settings
and seed evaluated once: the three should fly the same episodes alike.

    python bench/repeatability.py                      # steady, seed 100, 1000 trials, 50 episodes each
    python bench/repeatability.py --trials 300 --episodes 20 --json bench/results/repeatability-quick.json

Why: two runs of the learning benchmark with the same seeds trained identically (every trial's
reward equal) and yet evaluated differently, +202.9 and +211.4 (docs/learning.md). Each evaluation
loads the memory from Milvus into a replica, and Milvus returns a read's rows in the order of its
segments; the replica's IVF lists and its ties depend on that order. The memories live on a
scratch server (removed afterwards). Writes a JSON record: each training's trial rewards
compared, each evaluation's mean and rewards, and which of them are equal.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from resonant_vectors.cli.flags import whole_number  # noqa: E402
from resonant_vectors.config import presets  # noqa: E402
from resonant_vectors.experiments import lab  # noqa: E402
from resonant_vectors.loop.evaluation import evaluate  # noqa: E402
from resonant_vectors.loop.trainer import Trainer  # noqa: E402
from resonant_vectors.server.supervision import embedded_server_kept  # noqa: E402


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="steady", choices=list(presets()), help="the preset (default steady)")
    parser.add_argument("--seed", type=whole_number(0), default=100, help="the trainings' seed (default 100)")
    parser.add_argument("--trials", type=whole_number(1), default=1000, help="trials of each training")
    parser.add_argument("--episodes", type=whole_number(1), default=50, help="episodes of each evaluation")
    parser.add_argument("--json", default="bench/results/repeatability.json", help="the JSON record to write")
    return parser.parse_args()


def train(settings, name: str, trials: int) -> list:
    """A training afresh of ``name``; its trials' rewards in trial order."""
    with Trainer(settings=settings.replace(instance_name=name, drop_collection=True), quiet=True) as trainer:
        trainer.train(trials)
    return [round(record.reward, 4) for record in sorted(trainer.metrics, key=lambda record: record.trial)]


def main() -> None:
    arguments = parse_arguments()
    with lab.scratch_memory() as scratch, embedded_server_kept(scratch.milvus_data_dir):  # one start for all
        settings = lab.variant_settings(arguments.variant, scratch).replace(seed=arguments.seed, display=False)
        trainings = {name: train(settings, name, arguments.trials) for name in ("first", "second")}
        evaluations = {label: evaluate(settings.replace(instance_name=name), arguments.episodes)
                       for label, name in (("first", "first"), ("first_again", "first"), ("second", "second"))}
    rewards = {label: evaluation["rewards"] for label, evaluation in evaluations.items()}
    result = {"variant": arguments.variant, "seed": arguments.seed, "trials": arguments.trials,
              "episodes": arguments.episodes, "trainings_equal": trainings["first"] == trainings["second"],
              "evaluations": {label: {key: evaluation[key] for key in ("mean", "std", "solved_rate", "rewards")}
                              for label, evaluation in evaluations.items()},
              "same_memory_evaluated_alike": rewards["first"] == rewards["first_again"],
              "second_training_evaluated_alike": rewards["first"] == rewards["second"]}
    lab.write_record(result, Path(arguments.json))
    for label, evaluation in evaluations.items():
        print(f"{label:12s} mean {evaluation['mean']:+8.2f}  landed {evaluation['solved_rate']:.0%}")
    print(f"trainings equal: {result['trainings_equal']}; the same memory evaluated alike: "
          f"{result['same_memory_evaluated_alike']}; the second training evaluated alike: "
          f"{result['second_training_evaluated_alike']}; wrote {arguments.json}")


if __name__ == "__main__":
    main()
