"""Train, evaluate, watch and compare landers whose only knowledge is a shared memory of engrams.

    python main.py                                   # the seed's rule: instance "lander3", 1000 trials
    python main.py --preset steady --instance quick --trials 1000 --no-display   # the best preset found
    python main.py --instance quick --keep --trials 500  # resume: same memory, trial numbers go on
    python main.py --preset steady --workers 2           # one species on two processes (both cores)
    python main.py --instance quick --join               # another terminal: one more worker
    python main.py --env CartPole-v1 --instance cart --trials 300   # another Gymnasium environment
    python main.py evaluate --instance quick --episodes 100
    python main.py watch --instance quick --gif runs/quick/flight.gif
    python main.py compare runs/quick runs/lander3 --plot runs/comparison.png
    python main.py drop --instance quick_1             # delete a memory for good (it says what it drops)
    python main.py instinct --seeds 0 1 2 --trials 1000    # newcomers on a trained vs an empty memory
    python main.py experiment doses --quick              # newcomers on memories of 30 ... 3000 past trials
    python main.py experiment kinds --quick              # newcomers of other gravity, wind, mass, wiring
    python main.py experiment generations --quick        # trained, control and isolated lines (McDougall)
    python main.py experiment shared --quick             # landers on one memory vs a memory each
    MILVUS_URI=http://localhost:19530 python main.py     # a Milvus of your own (e.g. Docker)

Training saves runs/<instance>/: settings.json (and settings-resume-<n>.json for each --keep),
trials.csv (a row per trial, as they finish; a species' worker k in trials-w<k>.csv), summary.json
and learning_curve.png. Training afresh keeps the earlier run, its memory and its folder, as the
instance <instance>_1 (KEPT_RUNS of them; `drop` deletes one for good). Flags override the
setting of the same name in settings.py for this run only; `python main.py COMMAND --help` lists
each command's flags.
"""
from __future__ import annotations

import argparse
import re
import signal
import sys
import warnings
from pathlib import Path

from resonant_vectors.cli.experiments import EXPERIMENTS
from resonant_vectors.cli.flags import (
    add_flight_flags,
    add_instinct_flags,
    preset_names,
    print_warning,
    run_instinct,
    whole_number,
)
from resonant_vectors.config import SEARCH_BACKENDS, Settings, SettingsError
from resonant_vectors.errors import ResonantVectorsError
from resonant_vectors.loop.evaluation import evaluate
from resonant_vectors.loop.interrupts import TrainingInterrupted
from resonant_vectors.loop.trainer import Trainer
from resonant_vectors.loop.watching import fly
from resonant_vectors.memory.lifecycle import InstanceMemory
from resonant_vectors.memory.store import MemoryNotFoundError
from resonant_vectors.runs.folder import COMPARISON_PNG, RUNS_DIR, SETTINGS_JSON, RunFolder, compare
from resonant_vectors.runs.starts import drop_for_good
from resonant_vectors.species import training as species

COMMANDS = ("train", "evaluate", "watch", "compare", "instinct", "experiment", "drop")
# Where the memory is: settings.py's and the environment's now, never a run folder's.
# What decides how a training starts (afresh, resumed, read-only), from settings.py and the flags.
START_SETTINGS = ("instance_name", "drop_collection", "read_only")
CONNECTION_SETTINGS = ("milvus_uri", "milvus_token", "milvus_data_dir", "milvus_idle_grace", "milvus_connect_timeout",
                       "milvus_retry_timeout")


def add_memory_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--instance", dest="instance_name",
                        help="instance name: names the run and its Milvus collection (INSTANCE_NAME)")
    parser.add_argument("--env", dest="env_id",
                        help="the Gymnasium environment, e.g. CartPole-v1 (ENV_ID, default LunarLander-v3)")
    parser.add_argument("--milvus-uri",
                        help="Milvus to use, e.g. http://localhost:19530 (MILVUS_URI); empty = embedded")
    parser.add_argument("--preset", help=f"a named set of settings from settings.PRESETS (PRESET): {preset_names()}")
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
    train.add_argument("--trials", type=whole_number(1), help="trials to run (TRIALS, default 1000)")
    train.add_argument("--keep", dest="drop_collection", action="store_false", default=None,
                       help="resume: keep the instance's memory and run folder (DROP_COLLECTION=False)")
    train.add_argument("--population", dest="population_size", type=int,
                       help="landers acting at once on the shared memory (POPULATION_SIZE)")
    train.add_argument("--workers", type=int,
                       help="processes training one species on this machine, each flying its share of the "
                            "population and the trials (WORKERS)")
    train.add_argument("--join", action="store_true",
                       help="add a worker to a species already training this instance (from another terminal, "
                            "or another machine on the same MILVUS_URI); never drops the memory")
    train.add_argument("--display", action=argparse.BooleanOptionalAction, default=None,
                       help="render lander 0 in a window (DISPLAY); ignored without a display")
    train.add_argument("--read-only", action=argparse.BooleanOptionalAction, default=None,
                       help="decide from memory but store nothing and save no run (READ_ONLY)")
    train.add_argument("--seed", type=int, help="seed of the environments and the brain's noise (SEED)")
    train.add_argument("--noise", type=float, help="std of the noise added to action scores (NOISE)")
    train.add_argument("--runs-dir", default=str(RUNS_DIR), help="where run folders go (default: runs)")
    train.add_argument("--quiet", action="store_true", help="no per-trial lines or progress bar")
    train.add_argument("--tensorboard", action=argparse.BooleanOptionalAction, default=None,
                       help="also write each trial's figures for TensorBoard in runs/<instance>/tb/ (TENSORBOARD; "
                            "needs the extra: pip install -e \".[tensorboard]\")")

    evaluate = commands.add_parser("evaluate", help="read-only, noise off, fixed seeds: mean, std, landings")
    add_memory_flags(evaluate)
    evaluate.add_argument("--episodes", type=whole_number(1), default=100, help="episodes to fly (default 100)")
    evaluate.add_argument("--runs-dir", default=str(RUNS_DIR), help="where run folders are (default: runs)")

    watch = commands.add_parser("watch", help="fly the memory in a window, or record it to a GIF")
    add_memory_flags(watch)
    add_flight_flags(watch)
    watch.add_argument("--runs-dir", default=str(RUNS_DIR), help="where run folders are (default: runs)")

    compare = commands.add_parser("compare", help="per environment, a table of run summaries and a panel of their curves")
    compare.add_argument("run_folders", nargs="+", help="run folders, e.g. runs/a runs/b")
    compare.add_argument("--plot", default=str(COMPARISON_PNG), help=f"PNG to write (default: {COMPARISON_PNG})")
    instinct = commands.add_parser("instinct", help="do newcomers fly better on a trained memory? (see README)")
    add_instinct_flags(instinct)
    experiment = commands.add_parser("experiment", help="the experiments of docs/memory_shows.md")
    names = experiment.add_subparsers(dest="experiment", required=True, metavar="NAME")
    for name, command in EXPERIMENTS.items():
        command.add_flags(names.add_parser(name, help=command.about, description=command.about), name)
    drop = commands.add_parser("drop", help="delete an instance's memory for good (its run folder stays)")
    drop.add_argument("--instance", dest="instance_name", required=True, help="the instance whose memory to delete")
    drop.add_argument("--runs-dir", default=str(RUNS_DIR), help="where run folders are (default: runs)")
    arguments = parser.parse_args(argv)
    arguments.flags = {action.dest: action.option_strings[0] for action in commands.choices[arguments.command]._actions
                       if action.option_strings}
    return arguments


def settings_from(arguments: dict) -> Settings:
    """settings.py with the flags the user typed (a flag not typed is ``None``: settings.py decides)."""
    names = Settings.field_names()
    return Settings.from_module(**{name: value for name, value in arguments.items()
                                   if name in names and value is not None})


def run_train(arguments: dict) -> int:
    refuse_flags_that_cannot_apply(arguments)
    if arguments["join"]:  # its species' rows and settings first, from wherever they flew
        species.take_in_species(settings_from(arguments), Path(arguments["runs_dir"]))
    settings = training_settings(arguments)
    refuse_tensorboard_without_a_run(settings, arguments)
    if arguments["drop_collection"] is False and not arguments["join"]:
        refuse_to_resume_nothing(settings, Path(arguments["runs_dir"]))
    folder = None if settings.read_only else RunFolder.for_instance(settings.instance_name, arguments["runs_dir"])
    if arguments["join"] or settings.workers > 1:
        return run_species(settings, arguments)
    with Trainer(settings=settings, quiet=arguments["quiet"], run_folder=folder) as trainer:
        try:
            mean_reward = trainer.train(settings.trials)
        except TrainingInterrupted as interruption:
            print(f"interrupted ({interruption}). {what_was_saved(trainer, folder)}", file=sys.stderr)
            return 130
    print(final_line(trainer, mean_reward))
    if folder is not None:
        print(f"saved in {folder.path}/")
    return 0


def refuse_flags_that_cannot_apply(arguments: dict) -> None:
    """A flag typed that would be ignored is an error naming it and why."""
    if arguments["join"] and arguments.get("workers") is not None:
        raise SettingsError(f"--workers {arguments['workers']} with --join: a joiner is one more worker of a species "
                            "in training (its command started the species' workers); expected one of them. Run "
                            "--join once per worker to add, each in its own terminal.")


def refuse_tensorboard_without_a_run(settings: Settings, arguments: dict) -> None:
    """``--tensorboard`` on a read-only training, which saves no run and so writes no events: an error."""
    if arguments.get("tensorboard") and settings.read_only:
        raise SettingsError("--tensorboard with READ_ONLY: a read-only training saves no run folder, so there is "
                            "nowhere to write its events; expected one of them. To watch a training live, train it "
                            "(without --read-only).")


def refuse_to_resume_nothing(settings: Settings, runs_dir: Path) -> None:
    """``--keep`` on an instance with neither a memory nor trials: an error listing the instances,
    rather than a quiet fresh start."""
    folder = RunFolder.for_instance(settings.instance_name, runs_dir)
    if folder.has_trials():
        return
    memory = InstanceMemory(settings)
    try:
        exists, instances = memory.exists, memory.instance_names()
    finally:
        memory.close()
    if not exists:
        raise MemoryNotFoundError(
            f"--keep: no memory named {settings.instance_name!r} to resume, and no trials in {folder.path}/. "
            f"Instances there: {', '.join(instances) or 'none yet'}. Check --instance, or train it afresh "
            f"(without --keep): python main.py --instance {settings.instance_name}")


def run_drop(arguments: dict) -> int:
    settings = Settings.from_module(instance_name=arguments["instance_name"])
    print(drop_for_good(settings, Path(arguments["runs_dir"])))
    return 0


def run_species(settings: Settings, arguments: dict) -> int:
    """A species of several workers (``--workers N``), or one more worker for a species in training (``--join``)."""
    runs_dir = Path(arguments["runs_dir"])
    if arguments["join"]:
        with species.join_species(settings, runs_dir, arguments["quiet"]) as worker:
            try:
                mean_reward = worker.train(settings.trials)
            except TrainingInterrupted as interruption:
                print(f"interrupted ({interruption}). {what_was_saved(worker, worker.run_folder)}", file=sys.stderr)
                return 130
        print(f"worker {worker.worker} " + final_line(worker, mean_reward))
        return 0
    result = species.train_species(settings, runs_dir, arguments["quiet"])
    solved_at = settings.environment.solved_at
    solved = f", {result['last_solved']} solved (reward >= {solved_at:g})" if solved_at is not None else ""
    print(f"{settings.instance_name}: {result['trials']} trials by {result['workers']} workers, mean reward "
          f"{result['mean_reward']:.1f}; the run's last {result['last_trials']}: mean {result['last_mean']:.1f}{solved}; "
          f"{result['engrams']} engrams in memory; {result['steps_per_s']:.1f} steps/s")
    print(f"saved in {runs_dir / settings.instance_name}/")
    if result["interrupted"]:
        print(f"interrupted ({result['interrupted']}): every worker stopped between steps; their finished trials "
              f"are saved; --keep resumes: python main.py --instance {settings.instance_name} --keep --workers "
              f"{settings.workers}", file=sys.stderr)
        return 130
    return 1 if result["died"] else 0


def training_settings(arguments: dict) -> Settings:
    """What a training runs with: settings.py and the flags for a fresh start (or a read-only one);
    a resume (``--keep``, or ``DROP_COLLECTION = False``) and ``--join`` go on with the run's own."""
    start = settings_from({name: arguments.get(name) for name in START_SETTINGS})
    if arguments["join"] and start.read_only:
        raise SettingsError("READ_ONLY with --join: a joiner is one more worker training the species' memory; "
                            "expected one of them. To fly a memory without changing it: python main.py evaluate "
                            f"--instance {start.instance_name}")
    if arguments["join"] or not (start.drop_collection or start.read_only):
        return resumed_settings(arguments, joining=arguments["join"])
    return settings_from(arguments)


def resumed_settings(arguments: dict, joining: bool = False) -> Settings:
    """``--keep`` and ``--join`` go on with the run's own settings (its latest), the flags typed on
    top, so that a run trained with a preset resumes with it (a joiner is one process: one worker);
    they are checked together, not settings.py's values with the flags. A ``--preset`` typed is a new
    rule from here on (settings.py with that preset, as at a start). Another environment is refused:
    the memory holds its environment's situations. Without a run folder: settings.py and the flags."""
    instance = arguments.get("instance_name") or Settings.from_module().instance_name
    folder = RunFolder.for_instance(instance, arguments["runs_dir"])
    one_process = {"workers": 1} if joining else {}
    kept = {"drop_collection": False, **one_process}  # a run's saved settings say it started afresh
    if not (folder.path / SETTINGS_JSON).exists():
        return settings_from({**arguments, **one_process})
    trained = folder.settings()
    typed_env = arguments.get("env_id")
    if typed_env is not None and typed_env != trained.env_id:
        raise SettingsError(f"ENV_ID: {folder.path} trained {trained.env_id}, and its memory holds that environment's "
                            f"situations; expected --env {trained.env_id} or none to resume it, got {typed_env!r}. "
                            "Train another environment under another --instance.")
    if arguments.get("preset") is not None:
        return settings_from({**arguments, **one_process}).replace(env_id=trained.env_id)
    return _with_typed_flags(trained, arguments, **kept)


def _with_typed_flags(trained: Settings, arguments: dict, **fixed) -> Settings:
    """A run's saved settings with the flags typed now, and where Milvus is as settings.py and the
    environment say now (a run folder does not decide which server or data folder is used)."""
    here = Settings.from_module()
    flags = {name: value for name, value in arguments.items()
             if name in Settings.field_names() - {"preset"} and value is not None}
    return trained.replace(**{**{name: getattr(here, name) for name in CONNECTION_SETTINGS}, **flags, **fixed})


def final_line(trainer, mean_reward: float) -> str:
    """What a training run did, and where its run stands: the last-100 figures are the run's (those
    before a resume included), as summary.json's."""
    last = trainer.last_trials(100)
    solved_at = trainer.settings.environment.solved_at
    solved = f", {last['solved']} solved (reward >= {solved_at:g})" if solved_at is not None else ""
    return (f"{trainer.settings.instance_name}: {len(trainer.metrics)} trials, mean reward {mean_reward:.1f}; the run's "
            f"last {last['trials']}: mean {last['mean_reward']:.1f}{solved}; {trainer.engram_count} engrams in memory; "
            f"{trainer.steps_per_s:.1f} steps/s, {trainer.trials_per_min:.0f} trials/min")


def what_was_saved(trainer, folder: RunFolder | None) -> str:
    """After Ctrl-C: how many trials are kept where, and how to go on."""
    if folder is None:
        return f"{len(trainer.metrics)} trials flown read-only; nothing was stored."
    runs_dir = "" if folder.path.parent == RUNS_DIR else f" --runs-dir {folder.path.parent}"
    files = ", ".join(path.name for path in folder.trial_files())
    return (f"{len(trainer.metrics)} finished trials of this run are saved ({len(folder.trials())} in all in "
            f"{folder.path}/: {files}) with their engrams; --keep resumes: "
            f"python main.py --instance {trainer.settings.instance_name} --keep{runs_dir}")


def memory_settings(arguments: dict) -> Settings:
    """For evaluate and watch: the settings the memory was trained with (its run folder's, its
    preset applied), so that it is read the way it was written; without a run folder, settings.py's
    and ``--preset``. Other flags win either way."""
    settings = settings_from(arguments)
    folder = RunFolder.for_instance(settings.instance_name, arguments["runs_dir"])
    if not (folder.path / SETTINGS_JSON).exists():
        return settings
    trained = folder.settings()
    if arguments.get("preset") is not None and arguments["preset"] != trained.preset:
        raise SettingsError(f"PRESET: {folder.path} was trained with preset {trained.preset!r}, and a memory is "
                            f"read with the settings it was trained with; expected no --preset (or its own), got "
                            f"{arguments['preset']!r}. To read it otherwise, change single settings by their flags.")
    return _with_typed_flags(trained, arguments)


def run_evaluate(arguments: dict) -> int:
    settings = memory_settings(arguments)
    try:
        result = evaluate(settings, arguments["episodes"], progress=True)
    except TrainingInterrupted:
        print("interrupted: the evaluation did not finish; nothing was saved.", file=sys.stderr)
        return 130
    solved = f", {result['solved_rate']:.0%} solved (reward >= {result['solved_at']:g})" \
        if result["solved_at"] is not None else ""
    ends = ", ".join(f"{count} {end}" for end, count in result["ends"].items())
    print(f"{settings.instance_name}: {result['episodes']} episodes, mean {result['mean']:.1f} ± "
          f"{result['std']:.1f}{solved}; ended: {ends}")
    folder = RunFolder.for_instance(settings.instance_name, arguments["runs_dir"])
    if folder.path.is_dir():
        folder.write_evaluation(result)
        print(f"saved in {folder.path}/evaluation.json")
    return 0


def run_watch(arguments: dict) -> int:
    settings = memory_settings(arguments)
    try:
        fly(settings.instance_name, arguments["episodes"], arguments["gif"], arguments["seed"], settings=settings)
    except TrainingInterrupted:
        print("interrupted: the flight did not finish; no GIF was written.", file=sys.stderr)
        return 130
    return 0


def run_compare(arguments: dict) -> int:
    comparison = compare(arguments["run_folders"], arguments["plot"])
    for env_id, table in comparison.tables.items():
        print(environment_heading(env_id, comparison.solved_at[env_id]))
        print(table.to_string(), end="\n\n")
    print(f"learning curves, a panel per environment: {comparison.plot_path}")
    return 0


def environment_heading(env_id: str, solved_at: float | None) -> str:
    """The line above an environment's table: runs are ranked only against runs of that environment."""
    solved = f"solved at reward >= {solved_at:g}" if solved_at is not None else "no solved threshold"
    return f"{env_id} ({solved}):"


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
               "instinct": run_instinct, "experiment": run_experiment, "drop": run_drop}
    try:
        with warnings.catch_warnings():
            warnings.showwarning = print_warning
            return command[arguments.pop("command")](arguments)
    except ResonantVectorsError as error:
        print(f"error: {with_flags(error, flags, arguments)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted before a clean stop; --keep resumes from what was stored.", file=sys.stderr)
        return 130


def run_experiment(arguments: dict) -> int:
    """One experiment of ``EXPERIMENTS``, on settings.py's memory."""
    return EXPERIMENTS[arguments.pop("experiment")](arguments)


def with_flags(error: Exception, flags: dict, arguments: dict) -> str:
    """The error's message with each setting the user set by a flag named with it: ``NOISE (--noise):``."""
    message = str(error)
    if isinstance(error, SettingsError):
        for name, flag in flags.items():
            if arguments.get(name) is not None:
                message = re.sub(rf"(?<![A-Z_]){name.upper()}:", f"{name.upper()} ({flag}):", message)
    return message


if __name__ == "__main__":
    sys.exit(main())
