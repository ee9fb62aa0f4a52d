"""The commands of ``main.py experiment NAME``: one table of experiments, each a question of the
hypothesis with its own flags, its run, its plot and its table.

Why its own module: every experiment shares the same command shape (a variant, seeds, a runs
folder, a JSON record with its plot beside it, a ``--quick`` form) and differs only in what it
flies, so the shape is written once here and each experiment adds only its own flags.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from resonant_vectors.cli.flags import DEFAULT_EXPERIMENT_VARIANT, whole_number
from resonant_vectors.config import Settings
from resonant_vectors.experiments import doses, generations, kinds, lab, shared
from resonant_vectors.runs.folder import RUNS_DIR


@dataclass(frozen=True)
class ExperimentCommand:
    """One ``main.py experiment NAME``.

    :param about: the question it asks, for ``--help``.
    :param variant_help: what ``--variant`` must be, beyond a preset's name.
    :param quick: the flags of ``--quick``: a run of a few minutes on a 2-core machine that takes every
        step of the experiment, too short to show an effect.
    :param own_flags: adds the flags only this experiment has.
    :param run: the experiment, from the parsed flags and the settings it starts from: its record.
    :param plot: the record's figure.
    :param table: the record as the table the command prints.
    """
    about: str
    variant_help: str
    quick: dict
    own_flags: Callable[[argparse.ArgumentParser], None]
    run: Callable[[dict, Optional[Settings]], dict]
    plot: Callable[[dict], object]
    table: Callable[[dict], str]

    def add_flags(self, parser: argparse.ArgumentParser, name: str) -> None:
        parser.add_argument("--variant", default=DEFAULT_EXPERIMENT_VARIANT,
                            help=f"the settings the landers fly with (default {DEFAULT_EXPERIMENT_VARIANT!r}; "
                                 f"{self.variant_help})")
        parser.add_argument("--seeds", nargs="+", type=whole_number(0), default=[0, 1, 2],
                            help="seeds; each trains memories of its own (default 0 1 2, the seeds settings are "
                                 "chosen on; report on others, e.g. 100 101 102)")
        self.own_flags(parser)
        parser.add_argument("--runs-dir", default=str(RUNS_DIR), help="where the experiment's run folders go")
        parser.add_argument("--json", default=str(RUNS_DIR / f"{name}.json"),
                            help="the JSON record to write (its PNG plot beside it)")
        quick = ", ".join(f"--{flag.replace('_', '-')} {' '.join(map(str, value)) if isinstance(value, list) else value}"
                          for flag, value in self.quick.items())
        parser.add_argument("--quick", action="store_true",
                            help=f"a short run of every step, too short to show an effect, in place of those "
                                 f"flags: {quick}")

    def __call__(self, arguments: dict, base: Optional[Settings] = None) -> int:
        """Run it with the parsed flags, write its record and plot, print its table.

        :param base: the settings it starts from, their memory included (settings.py's by default).
        """
        if arguments.pop("quick"):
            arguments.update(self.quick)
        result = self.run(arguments, base)
        plot = lab.save(result, self.plot(result), Path(arguments["json"]))
        print(self.table(result))
        print(f"wrote {arguments['json']} and {plot}")
        return 0


def _population_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--population", type=whole_number(1), default=8, help="landers training at once")


def _newcomer_flags(parser: argparse.ArgumentParser, per: str) -> None:
    _population_flag(parser)
    parser.add_argument("--newcomers", type=whole_number(1), default=8, help=f"newcomers per {per}")
    parser.add_argument("--first-trials", type=whole_number(1), default=10, help="trials each newcomer flies")


def _doses_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--doses", nargs="+", type=whole_number(1), default=list(doses.DOSES),
                        help="past trials in the memories the newcomers fly on (the largest is trained)")
    _newcomer_flags(parser, "memory")


def _kinds_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trials", type=whole_number(1), default=1000, help="trials the memory is trained for")
    _newcomer_flags(parser, "kind and memory")


def _generations_flags(parser: argparse.ArgumentParser) -> None:
    _population_flag(parser)
    parser.add_argument("--generations", type=whole_number(1), default=8, help="generations of each line")
    parser.add_argument("--trials", type=whole_number(1), default=200,
                        help="trials each generation of the trained and the isolated line trains")
    parser.add_argument("--test-trials", type=whole_number(1), default=20,
                        help="trials each generation of the control line flies, and the first trials whose "
                             "errors are counted in every line")


def _shared_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--landers", type=whole_number(1), default=8, help="landers in each arm (default 8)")
    parser.add_argument("--trials", type=whole_number(1), default=300,
                        help="trials of each lander (default 300): the shared arm's population flies landers x "
                             "trials, each lander at its own pace, and each lander's figures count its first "
                             "trials up to this many")


EXPERIMENTS = {
    "doses": ExperimentCommand(
        about="do newcomers fly better the more past trials the memory holds? (docs/memory_shows.md)",
        variant_help='its SEARCH_BACKEND must be "replica"',
        quick={"seeds": [0, 1], "doses": [10, 30, 100], "population": 8, "newcomers": 4, "first_trials": 5},
        own_flags=_doses_flags,
        run=lambda flags, base: doses.doses_experiment(flags["variant"], flags["seeds"], flags["doses"], flags["population"],
                                                   flags["newcomers"], flags["first_trials"], Path(flags["runs_dir"]), base=base),
        plot=doses.plot_doses, table=doses.doses_table),
    "generations": ExperimentCommand(
        about="does a lineage learn faster, even a line that never trained? (docs/memory_shows.md)",
        variant_help="every line flies with it",
        quick={"seeds": [0, 1], "generations": 3, "trials": 20, "test_trials": 8, "population": 4},
        own_flags=_generations_flags,
        run=lambda flags, base: generations.generations_experiment(
            flags["variant"], flags["seeds"], flags["generations"], flags["trials"], flags["test_trials"], flags["population"],
            Path(flags["runs_dir"]), base=base),
        plot=generations.plot_generations, table=generations.generations_table),
    "kinds": ExperimentCommand(
        about="do newcomers of other kinds gain less the less like the trained kind they are? (docs/memory_shows.md)",
        variant_help="a LunarLander preset",
        quick={"seeds": [0, 1], "trials": 30, "population": 8, "newcomers": 4, "first_trials": 5},
        own_flags=_kinds_flags,
        run=lambda flags, base: kinds.kinds_experiment(flags["variant"], flags["seeds"], flags["trials"], flags["population"],
                                                   flags["newcomers"], flags["first_trials"], Path(flags["runs_dir"]), base=base),
        plot=kinds.plot_kinds, table=kinds.kinds_table),
    "shared": ExperimentCommand(
        about="do landers sharing one memory learn faster than landers with a memory each? (docs/memory_shows.md)",
        variant_help="both arms fly with it; a LunarLander preset, whose landings and +100 the figures count",
        quick={"seeds": [0, 1], "landers": 4, "trials": 20},
        own_flags=_shared_flags,
        run=lambda flags, base: shared.shared_experiment(flags["variant"], flags["seeds"], flags["landers"], flags["trials"],
                                                     Path(flags["runs_dir"]), base=base),
        plot=shared.plot_shared, table=shared.shared_table),
}
