"""Train, evaluate, watch and compare landers whose only knowledge is a shared memory of engrams.

    python main.py                                   # train instance "lander3" for 1000 trials
    python main.py --trials 50 --no-display --seed 1 --instance quick
    python main.py --instance quick --keep --trials 50   # resume: same memory, trial numbers go on
    python main.py evaluate --instance quick --episodes 100
    python main.py watch --instance quick --gif runs/quick/flight.gif
    python main.py compare runs/quick runs/lander3 --plot runs/comparison.png
    python main.py instinct --seeds 0 1 2 --trials 600     # newcomers on a trained vs an empty memory
    MILVUS_URI=http://localhost:19530 python main.py     # a Milvus of your own (e.g. Docker)

Training saves runs/<instance>/: settings.json (and settings-resume-<n>.json for each --keep),
trials.csv (a row per trial, as they finish), summary.json and learning_curve.png; training afresh
moves an earlier run with trials aside to runs/<instance>.1/. Flags override the setting of the
same name in settings.py for this run only; `python main.py COMMAND --help` lists each command's flags.
"""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from config import SEARCH_BACKENDS, Settings, SettingsError
from engram import CollectionInUseError, CollectionMismatchError, EngramError, MilvusUnavailableError
from gym.lander import NoDisplayError
from milvus_server import EmbeddedMilvusError
from runs import COMPARISON_PNG, RUNS_DIR, SETTINGS_JSON, TRIALS_CSV, RunFolder, RunFolderError
from settings import PRESETS

DEFAULT_INSTINCT_VARIANT = "episodic"
COMMANDS = ("train", "evaluate", "watch", "compare", "instinct")
USER_ERRORS = (SettingsError, EngramError, CollectionMismatchError, CollectionInUseError, MilvusUnavailableError,
               EmbeddedMilvusError, RunFolderError, NoDisplayError)


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


def add_memory_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--instance", dest="instance_name",
                        help="instance name: names the run and its Milvus collection (INSTANCE_NAME)")
    parser.add_argument("--milvus-uri",
                        help="Milvus to use, e.g. http://localhost:19530 (MILVUS_URI); empty = embedded")
    parser.add_argument("--preset", help=f"a named set of settings from settings.PRESETS (PRESET): "
                                         f"{', '.join(repr(name) for name in PRESETS) or 'none defined'}")
    parser.add_argument("--search-backend", choices=SEARCH_BACKENDS,
                        help="who answers the decisions' searches: milvus (a request each) or replica "
                             "(an in-process copy; Milvus stays the store of record) (SEARCH_BACKEND)")


def parse_arguments(argv=None) -> argparse.Namespace:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS + ("-h", "--help"):
        argv.insert(0, "train")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = commands.add_parser("train", help="train (the default when no command is given)")
    add_memory_flags(train)
    train.add_argument("--trials", type=whole_number(0), help="trials to run (TRIALS, default 1000)")
    train.add_argument("--keep", dest="drop_collection", action="store_false", default=None,
                       help="resume: keep the instance's memory and run folder (DROP_COLLECTION=False)")
    train.add_argument("--population", dest="population_size", type=int,
                       help="landers acting at once on the shared memory (POPULATION_SIZE)")
    train.add_argument("--display", action=argparse.BooleanOptionalAction, default=None,
                       help="render lander 0 in a window (DISPLAY); ignored without a display")
    train.add_argument("--read-only", action=argparse.BooleanOptionalAction, default=None,
                       help="decide from memory but store nothing and save no run (READ_ONLY)")
    train.add_argument("--seed", type=int, help="seed of the environments and the brain's noise (SEED)")
    train.add_argument("--noise", type=float, help="std of the noise added to action scores (NOISE)")
    train.add_argument("--runs-dir", default=str(RUNS_DIR), help="where run folders go (default: runs)")
    train.add_argument("--quiet", action="store_true", help="no per-trial lines or progress bar")

    evaluate = commands.add_parser("evaluate", help="read-only, noise off, fixed seeds: mean, std, landings")
    add_memory_flags(evaluate)
    evaluate.add_argument("--episodes", type=whole_number(1), default=100, help="episodes to fly (default 100)")
    evaluate.add_argument("--runs-dir", default=str(RUNS_DIR), help="where run folders are (default: runs)")

    watch = commands.add_parser("watch", help="fly the memory in a window, or record it to a GIF")
    add_memory_flags(watch)
    add_flight_flags(watch)
    watch.add_argument("--runs-dir", default=str(RUNS_DIR), help="where run folders are (default: runs)")

    compare = commands.add_parser("compare", help="a table of run summaries and one plot of their curves")
    compare.add_argument("run_folders", nargs="+", help="run folders, e.g. runs/a runs/b")
    compare.add_argument("--plot", default=str(COMPARISON_PNG), help=f"PNG to write (default: {COMPARISON_PNG})")
    instinct = commands.add_parser("instinct", help="do newcomers fly better on a trained memory? (see README)")
    add_instinct_flags(instinct)
    arguments = parser.parse_args(argv)
    arguments.flags = {action.dest: action.option_strings[0] for action in commands.choices[arguments.command]._actions
                       if action.option_strings}
    return arguments


def add_flight_flags(parser: argparse.ArgumentParser) -> None:
    """watch's flags (shared with gym/lander.py)."""
    parser.add_argument("--episodes", type=whole_number(1), default=1, help="episodes to fly (default 1)")
    parser.add_argument("--gif", type=gif_file, help="record to this GIF file instead of a window (works headless)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode")


def add_instinct_flags(parser: argparse.ArgumentParser) -> None:
    """The instinct experiment's flags (shared with bench/instinct.py)."""
    parser.add_argument("--variant", default=DEFAULT_INSTINCT_VARIANT,
                        help=f"the settings the population trains with: a preset or a bench variant "
                             f"(default {DEFAULT_INSTINCT_VARIANT!r})")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds; each trains its own memory")
    parser.add_argument("--trials", type=whole_number(1), default=600,
                        help="training trials of the population per seed")
    parser.add_argument("--population", type=whole_number(1), default=8, help="landers training at once")
    parser.add_argument("--newcomers", type=whole_number(1), default=8, help="newcomers per group")
    parser.add_argument("--first-trials", type=whole_number(1), default=10, help="trials each newcomer flies")
    parser.add_argument("--runs-dir", default=str(RUNS_DIR), help="where the populations' run folders go")
    parser.add_argument("--json", default=str(RUNS_DIR / "instinct.json"), help="the JSON to write (PNG beside it)")


def run_instinct(arguments: dict) -> int:
    import experiments

    result = experiments.instinct_experiment(
        arguments["variant"], arguments["seeds"], arguments["trials"], arguments["population"],
        arguments["newcomers"], arguments["first_trials"], Path(arguments["runs_dir"]))
    plot = experiments.save(result, experiments.plot_instinct(result), Path(arguments["json"]))
    print(experiments.instinct_table(result).to_string())
    print(f"wrote {arguments['json']} and {plot}")
    return 0


def settings_from(arguments: dict) -> Settings:
    """settings.py with the flags the user typed (a flag not typed is ``None``: settings.py decides)."""
    names = Settings.field_names()
    return Settings.from_module(**{name: value for name, value in arguments.items()
                                   if name in names and value is not None})


def run_train(arguments: dict) -> int:
    from interrupts import TrainingInterrupted  # imported here so that --help answers at once
    from Trainer import Trainer

    settings = settings_from(arguments)
    folder = None if settings.read_only else RunFolder.for_instance(settings.instance_name, arguments["runs_dir"])
    with Trainer(settings=settings, quiet=arguments["quiet"], run_folder=folder) as trainer:
        try:
            mean_reward = trainer.train(settings.trials)
        except TrainingInterrupted as interruption:
            print(f"interrupted ({interruption}). {what_was_saved(trainer, folder)}", file=sys.stderr)
            return 130
    landed = sum(record.landed for record in trainer.metrics)
    print(f"{settings.instance_name}: {len(trainer.metrics)} trials, mean reward {mean_reward:.1f}, "
          f"{landed} landed, {trainer.engram_count} engrams in memory; {trainer.steps_per_s:.1f} "
          f"steps/s, {trainer.trials_per_min:.0f} trials/min")
    if folder is not None:
        print(f"saved in {folder.path}/")
    return 0


def what_was_saved(trainer, folder: RunFolder | None) -> str:
    """After Ctrl-C: how many trials are kept where, and how to go on."""
    if folder is None:
        return f"{len(trainer.metrics)} trials flown read-only; nothing was stored."
    runs_dir = "" if folder.path.parent == RUNS_DIR else f" --runs-dir {folder.path.parent}"
    return (f"{len(trainer.metrics)} finished trials of this run are saved ({len(folder.trials())} in "
            f"{folder.path / TRIALS_CSV}) with their engrams; --keep resumes: "
            f"python main.py --instance {trainer.settings.instance_name} --keep{runs_dir}")


def memory_settings(arguments: dict) -> Settings:
    """For evaluate and watch: the settings the memory was trained with (its run folder's, its
    preset applied), so that it is read the way it was written; without a run folder, settings.py's
    and ``--preset``. Other flags win either way."""
    settings = settings_from(arguments)
    folder = RunFolder.for_instance(settings.instance_name, arguments["runs_dir"])
    if not (folder.path / SETTINGS_JSON).exists():
        return settings
    flags = {name: value for name, value in arguments.items()
             if name in Settings.field_names() - {"preset"} and value is not None}
    return folder.settings().replace(**flags)


def run_evaluate(arguments: dict) -> int:
    from evaluation import evaluate
    from interrupts import TrainingInterrupted

    settings = memory_settings(arguments)
    try:
        result = evaluate(settings, arguments["episodes"], progress=True)
    except TrainingInterrupted:
        print("interrupted: the evaluation did not finish; nothing was saved.", file=sys.stderr)
        return 130
    print(f"{settings.instance_name}: {result['episodes']} episodes, mean {result['mean']:.1f} ± "
          f"{result['std']:.1f}, {result['landing_rate']:.0%} landed (reward >= 200)")
    folder = RunFolder.for_instance(settings.instance_name, arguments["runs_dir"])
    if folder.path.is_dir():
        folder.write_evaluation(result)
        print(f"saved in {folder.path}/evaluation.json")
    return 0


def run_watch(arguments: dict) -> int:
    from gym.lander import fly
    from interrupts import TrainingInterrupted

    settings = memory_settings(arguments)
    try:
        fly(settings.instance_name, arguments["episodes"], arguments["gif"], arguments["seed"], settings=settings)
    except TrainingInterrupted:
        print("interrupted: the flight did not finish; no GIF was written.", file=sys.stderr)
        return 130
    return 0


def run_compare(arguments: dict) -> int:
    from runs import compare

    table = compare(arguments["run_folders"], arguments["plot"])
    print(table.to_string())
    print(f"learning curves: {arguments['plot']}")
    return 0


def stop_on_sigterm() -> None:
    """Make SIGTERM (e.g. `kill`, a job scheduler) stop like Ctrl-C: finished trials are kept."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupt)


def main(argv=None) -> int:
    stop_on_sigterm()
    arguments = vars(parse_arguments(argv))
    flags = arguments.pop("flags")
    command = {"train": run_train, "evaluate": run_evaluate, "watch": run_watch, "compare": run_compare,
               "instinct": run_instinct}
    try:
        return command[arguments.pop("command")](arguments)
    except USER_ERRORS as error:
        print(f"error: {with_flags(error, flags, arguments)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted before a clean stop; --keep resumes from what was stored.", file=sys.stderr)
        return 130


def with_flags(error: Exception, flags: dict, arguments: dict) -> str:
    """The error's message with each setting the user set by a flag named with it: ``NOISE (--noise):``."""
    message = str(error)
    if isinstance(error, SettingsError):
        for name, flag in flags.items():
            if arguments.get(name) is not None:
                message = message.replace(f"{name.upper()}:", f"{name.upper()} ({flag}):")
    return message


if __name__ == "__main__":
    sys.exit(main())
