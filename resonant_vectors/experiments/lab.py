"""The measured experiments: learning curves over seeds, and the instinct experiment.

Why its own module: ``bench/learning.py``, ``bench/instinct.py`` and ``main.py instinct`` run the
same experiments, and a notebook can call them too. Each training run is an ordinary ``Trainer``
run with its own collection and run folder, so ``main.py compare`` works on it. The benchmarks run
on a scratch memory (``scratch_memory``): their collections never join the user's memories.
"""
from __future__ import annotations

import json
import multiprocessing
import re
import shlex
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional

import numpy as np
import pandas as pd
from tqdm import tqdm

from resonant_vectors.agent.credit import trial_epsilon, trial_noise
from resonant_vectors.config import Settings
from resonant_vectors.experiments.provenance import provenance
from resonant_vectors.loop.evaluation import evaluate, fly_read_only
from resonant_vectors.loop.trainer import Trainer
from resonant_vectors.memory.in_process import InProcessMemory
from resonant_vectors.runs.folder import ROLLING_WINDOW, RunFolder, new_figure, summarise
from resonant_vectors.server.supervision import release_embedded_server, wait_until_stopped

# The credit rules measured against the seed's, one change at a time. Each is a set of settings on
# top of settings.py; a preset's name (settings.PRESETS) is a variant too.
VARIANTS: Dict[str, dict] = {
    "seed": {},
    "return": {"outcome_rule": "return", "outcome_reward_scale": 200.0},
    "distance": {"neighbour_weighting": "distance"},
    "schedule": {"noise": 0.5, "noise_final": 0.02, "noise_decay_trials": 300},
}
BLOCK = 100          # trials per block of the learning curve's table
LAST_ENDS = 250      # the last trials whose end causes a run's figures count
PROJECT = Path(__file__).resolve().parents[2]  # the repository's folder, where commands are typed
# Where a variant of a preset finds its memory: its base's server, never settings.py's.
MEMORY_SETTINGS = ("env_id", "milvus_uri", "milvus_token", "milvus_data_dir", "milvus_idle_grace")
# Two-sided 95% quantiles of Student's t by degrees of freedom; between entries the lower one is used
# (a slightly wider interval), and the normal's 1.96 from 30 on.
# The seeds presets and settings are chosen on; a figure is reported on others (docs/learning.md).
TUNING_SEEDS = range(0, 5)
T_95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
        10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060}


def variant_settings(variant: str, base: Optional[Settings] = None) -> Settings:
    """The settings of a named variant, or of a preset named in ``settings.PRESETS``."""
    base = base or Settings.from_module()
    if variant in VARIANTS:
        return base.replace(**VARIANTS[variant])
    return Settings.from_module(preset=variant, **{name: getattr(base, name) for name in MEMORY_SETTINGS})


@contextmanager
def scratch_memory(base: Optional[Settings] = None) -> Iterator[Settings]:
    """The settings ``base`` (settings.py's by default) on a memory of their own: an embedded server in
    a temporary folder, stopped as soon as it is let go of (no idle grace), and the folder removed
    once its keeper has stopped it.

    Why: a benchmark trains (and drops) a collection per variant and seed; in the user's memory
    folder (``MILVUS_DATA_DIR``, or a ``MILVUS_URI`` server) they would lie beside the memories the
    user trained, and a later ``--instance`` of the same name would find them.
    """
    base = base or Settings.from_module()
    with tempfile.TemporaryDirectory(prefix="rv-bench-") as data_dir:
        try:
            yield base.replace(milvus_uri="", milvus_token="", milvus_data_dir=data_dir, milvus_idle_grace=0.0)
        finally:
            release_embedded_server(data_dir)
            wait_until_stopped(data_dir)


def ci95(values: Iterable[float]) -> Optional[float]:
    """Half the width of the 95% confidence interval of the mean (Student's t; None for one value)."""
    values = np.asarray(list(values), dtype=np.float64)
    if len(values) < 2:
        return None
    degrees = len(values) - 1
    quantile = T_95[max(d for d in T_95 if d <= degrees)] if degrees < 30 else 1.96
    return float(quantile * values.std(ddof=1) / np.sqrt(len(values)))


def learning_run(settings: Settings, variant: str, seed: int, trials: int, eval_episodes: int,
                 runs_dir: Path, quiet: bool = True) -> dict:
    """Train one variant on one seed (its own collection and run folder), then evaluate it."""
    environment = "" if settings.environment.is_lunar_lander else "_" + re.sub(r"\W", "_", settings.env_id)
    name = f"learning{environment}_{variant}_s{seed}"
    settings = settings.replace(instance_name=name, seed=seed, drop_collection=True, read_only=False, display=False)
    trainer = Trainer(settings=settings, quiet=quiet, run_folder=RunFolder.for_instance(name, runs_dir))
    try:
        trainer.train(trials)
    finally:
        trainer.close()
    trials_run = trainer.metrics_frame().sort_values("trial")
    figures = summarise(trials_run)
    evaluation = evaluate(settings, eval_episodes)
    RunFolder.for_instance(name, runs_dir).write_evaluation(evaluation)
    rewards = trials_run["reward"].to_numpy()
    return {"seed": seed, "instance": name, "rewards": trials_run["reward"].round(2).tolist(),
            "lengths": trials_run["length"].tolist(),  # decisions per trial: the frames axis of the plot
            "train_mean": figures["mean_reward"], "last100_mean": figures["last100_mean"],
            "solved_rate": figures["solved_rate"], "eval_mean": evaluation["mean"], "eval_std": evaluation["std"],
            "eval_solved_rate": evaluation["solved_rate"],
            "blocks": [round(float(block.mean()), 1) for block in np.array_split(rewards, max(1, len(rewards) // BLOCK))],
            "first_reaching": first_reaching(rewards, targets_of(settings)),
            "ends": shares_of(trials_run["end"].tail(LAST_ENDS)), "eval_ends": shares_of(pd.Series(
                [end for end, count in evaluation["ends"].items() for _ in range(count)])),
            "decisions": trainer.steps_taken, "frames": trainer.frames_taken,
            "steps_per_s": trainer.steps_per_s}  # decisions per second of training, evaluation not counted


def targets_of(settings: Settings) -> tuple:
    """The rolling means a learning curve is timed to: +100 and the "solved" 200 for LunarLander,
    the environment's threshold for another."""
    solved_at = settings.environment.solved_at
    if settings.environment.is_lunar_lander:
        return (100.0, solved_at)
    return (solved_at,) if solved_at is not None else ()


def first_reaching(rewards: np.ndarray, targets: Iterable[float]) -> dict:
    """For each target, the first trial whose rolling mean of 100 (a full window) reaches it; None: never."""
    rolling = pd.Series(rewards).rolling(ROLLING_WINDOW).mean().to_numpy()
    found = {}
    for target in targets:
        reached = np.flatnonzero(rolling >= target)
        found[f"{target:g}"] = int(reached[0]) + 1 if len(reached) else None
    return found


def shares_of(ends: pd.Series) -> dict:
    """Each end cause's share of the trials (how landers fail, and how often)."""
    counts = ends.value_counts()
    return {str(end): round(float(count / len(ends)), 4) for end, count in counts.items()} if len(ends) else {}


def _mean_shares(shares: List[dict]) -> dict:
    """End causes' shares averaged over seeds (a cause a seed never saw counts 0 there)."""
    causes = sorted({cause for seed_shares in shares for cause in seed_shares})
    return {cause: round(float(np.mean([seed_shares.get(cause, 0.0) for seed_shares in shares])), 4)
            for cause in causes}


def across_seeds(runs: List[dict]) -> dict:
    """A variant's figures: the mean over seeds of each per-seed figure, and its 95% interval."""
    keys = ("train_mean", "last100_mean", "solved_rate", "eval_mean", "eval_std", "eval_solved_rate")
    figures = {key: round(float(np.mean([run[key] for run in runs])), 4) for key in keys}
    figures.update({f"{key}_ci95": rounded(ci95(run[key] for run in runs)) for key in ("last100_mean", "eval_mean")})
    return figures


def mean_over(rows: List[dict], key: str, digits: int) -> float:
    """The mean over seeds of one figure of their rows."""
    return round(float(np.mean([row[key] for row in rows])), digits)


def benefit_over_seeds(rows: List[dict]) -> dict:
    """The benefit of a trained memory over an empty one (reward and landing rate) in the rows of one
    condition, one row per seed: the means over seeds, each with its 95% interval."""
    return {"benefit": mean_over(rows, "benefit", 2), "benefit_ci95": rounded(ci95(row["benefit"] for row in rows), 2),
            "landing_benefit": mean_over(rows, "landing_benefit", 4),
            "landing_benefit_ci95": rounded(ci95(row["landing_benefit"] for row in rows))}


def plot_learning(result: dict):
    """One learning curve per variant: the mean over seeds of the rolling mean, with a min–max band,
    against the trials and, where the record holds each trial's decisions, against the environment
    frames too (DQN's and PPO's unit)."""
    by_frames = all("lengths" in run for entry in result["variants"].values() for run in entry["seeds"])
    figure = new_figure(figsize=(15 if by_frames else 9, 5))
    axes = figure.subplots(1, 2 if by_frames else 1, sharey=True, squeeze=False)[0]
    for variant, entry in result["variants"].items():
        curves = np.array([pd.Series(run["rewards"]).rolling(ROLLING_WINDOW, min_periods=1).mean()
                           for run in entry["seeds"]])
        trials = np.arange(1, curves.shape[1] + 1)
        line, = axes[0].plot(trials, curves.mean(axis=0), label=f"{variant} (eval {entry['eval_mean']:.0f})")
        axes[0].fill_between(trials, curves.min(axis=0), curves.max(axis=0), color=line.get_color(), alpha=0.2)
        if by_frames:
            frames = np.mean([frames_by_trial(run) for run in entry["seeds"]], axis=0)
            axes[1].plot(frames, curves.mean(axis=0), color=line.get_color())
            axes[1].fill_between(frames, curves.min(axis=0), curves.max(axis=0), color=line.get_color(), alpha=0.2)
    solved_at = Settings.from_module(env_id=result.get("env_id", "LunarLander-v3")).environment.solved_at
    for axis in axes:
        if solved_at is not None:
            axis.axhline(solved_at, color="grey", linestyle=":", linewidth=1, label=f"solved ({solved_at:g})")
    axes[0].set_xlabel("trial")
    axes[0].set_ylabel(f"reward, rolling mean of {ROLLING_WINDOW}")
    axes[0].legend(loc="lower right")
    if by_frames:
        axes[1].set_xlabel("environment frames (mean over seeds at each trial)")
    figure.suptitle(f"Learning over {len(result['seeds'])} seeds (band: min–max), population {result['population']}")
    figure.tight_layout()
    return figure


def frames_by_trial(run: dict) -> np.ndarray:
    """The environment frames a run had flown by the end of each trial: its decisions so far, times
    the run's frames per decision (exact in total; ``ACTION_REPEAT`` holds each decision for that many
    frames, the last of a trial for fewer when the trial ends inside it)."""
    decisions = np.cumsum(run["lengths"], dtype=np.float64)
    return decisions * (run["frames"] / run["decisions"] if run.get("decisions") else 1.0)


def learning_benchmark(variants: List[str], seeds: List[int], trials: int, population: int,
                       eval_episodes: int, runs_dir: Path, base: Optional[Settings] = None,
                       quiet: bool = True, jobs: int = 1, changes: Optional[dict] = None,
                       progress: bool = False) -> dict:
    """Every variant on every seed; per-seed curves and figures, and their means over seeds.

    :param changes: settings changed in every variant (lowercase names), to try a variation.
    :param jobs: runs at once, each in its own process (they share the embedded server); the
        curves do not depend on it, only the time does.
    :param progress: a progress bar over the runs.
    """
    base = base or Settings.from_module()
    started = time.monotonic()
    plans = {variant: variant_settings(variant, base).replace(population_size=population, **(changes or {}))
             for variant in variants}
    tasks = [(plans[variant], _run_label(variant, changes or {}), seed, trials, eval_episodes, runs_dir, quiet)
             for variant in variants for seed in seeds]
    with tqdm(total=len(tasks), unit="run", desc=f"{len(variants)} variant(s) x {len(seeds)} seed(s)",
              disable=not progress) as bar:
        if jobs == 1:
            runs = []
            for task in tasks:
                runs.append(learning_run(*task))
                bar.update(1)
        else:
            with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = [pool.submit(learning_run, *task) for task in tasks]
                for _ in as_completed(futures):
                    bar.update(1)
                runs = [future.result() for future in futures]
    result = {"trials": trials, "seeds": seeds, "population": population, "eval_episodes": eval_episodes,
              "env_id": base.env_id, "changes": changes or {}, "variants": {}}
    for number, variant in enumerate(variants):
        variant_runs = runs[number * len(seeds):(number + 1) * len(seeds)]
        result["variants"][variant] = {"settings": _changed(plans[variant], base),
                                       "search_backend": plans[variant].search_backend,
                                       **across_seeds(variant_runs), "seeds": variant_runs}
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def _run_label(variant: str, changes: dict) -> str:
    """The variant's name, with the changed settings in it (``episodic_bootstrap_steps_20``), so that
    a variation trains a collection and run folder of its own."""
    parts = [variant] + [f"{name}_{value}" for name, value in sorted(changes.items())]
    return re.sub(r"[^A-Za-z0-9_]", "_", "_".join(parts))


def _changed(settings: Settings, base: Settings) -> dict:
    ignored = {"population_size"}
    return {name: value for name, value in settings.as_dict().items()
            if name not in ignored and value != base.as_dict()[name]}


INSTINCT_GROUPS = ("trained_last", "newcomers_trained_memory", "newcomers_empty_memory",
                   "similar_trained_memory", "similar_empty_memory")
SIMILAR_ANIMAL = {"gravity": -8.0}   # the "similar animal" of the instinct experiment: a lander of another build


def instinct_experiment(variant: str, seeds: List[int], trials: int, population: int, newcomers: int,
                        first_trials: int, runs_dir: Path, base: Optional[Settings] = None,
                        quiet: bool = True, second_trials: int = 300, similar: Optional[dict] = None) -> dict:
    """Does a trained memory give newcomers an instinct?

    For each seed a population of ``population`` trains a shared memory for ``trials`` trials. Then:

    - ``newcomers`` landers that never trained fly ``first_trials`` trials each, read-only (they take
      from the memory and add nothing), on that memory, and as many on an empty memory; both groups
      use the noise and ε the population ended with. They are compared with the trained
      population's last ``newcomers x first_trials`` trials;
    - *a similar animal*: as many newcomers of another build (``similar``: LunarLander with
      gravity -8 by default) fly on the trained memory, and on an empty one;
    - *a second generation*: a new population of ``population`` trains ``second_trials`` trials on top
      of the trained memory (with the exploration the first ended with), and is timed against the
      first generation: the first trial at which the rolling mean of 100 reached +100 (another
      environment: its threshold), and the mean of the first 100 trials.
    """
    base = base or Settings.from_module()
    settings = variant_settings(variant, base).replace(population_size=population)
    similar = SIMILAR_ANIMAL if similar is None else similar
    per_seed = [_instinct_seed(settings, variant, seed, trials, newcomers, first_trials, runs_dir, quiet,
                               second_trials, similar) for seed in seeds]
    groups = {}
    for group in INSTINCT_GROUPS:
        means = [seed_result[group]["mean"] for seed_result in per_seed]
        solved = [seed_result[group]["solved_rate"] for seed_result in per_seed]
        groups[group] = {"mean": round(float(np.mean(means)), 2), "mean_ci95": rounded(ci95(means)),
                         "solved_rate": round(float(np.mean(solved)), 4),
                         "solved_rate_ci95": rounded(ci95(solved)),
                         "ends": _mean_shares([seed_result[group]["ends"] for seed_result in per_seed])}
    return {"variant": variant, "settings": _changed(settings, base), "search_backend": settings.search_backend,
            "seeds": seeds, "trials": trials,
            "population": population, "newcomers": newcomers, "first_trials": first_trials,
            "similar": similar, "second_trials": second_trials, "groups": groups,
            "generations": _generations(per_seed), "per_seed": per_seed}


def _instinct_seed(settings: Settings, variant: str, seed: int, trials: int, newcomers: int, first_trials: int,
                   runs_dir: Path, quiet: bool, second_trials: int, similar: dict) -> dict:
    name = f"instinct_{variant}_s{seed}"
    species = settings.replace(instance_name=name, seed=seed, drop_collection=True, read_only=False, display=False)
    with Trainer(settings=species, quiet=quiet, run_folder=RunFolder.for_instance(name, runs_dir)) as trainer:
        trainer.train(trials)
    first_generation = [record.reward for record in sorted(trainer.metrics, key=lambda record: record.trial)]
    last = sorted(trainer.metrics, key=lambda record: record.trial)[-newcomers * first_trials:]
    grown = {"noise": trial_noise(trials, species), "noise_final": None,
             "epsilon": trial_epsilon(trials, species), "epsilon_final": None}
    newcomer = species.replace(population_size=newcomers, read_only=True, seed=seed + 500_000, **grown)
    kin = newcomer.replace(**similar)
    flown = newcomers * first_trials
    figures = {"seed": seed, "trained_last": group_figures(last),
               "newcomers_trained_memory": group_figures(fly_read_only(newcomer, flown)),
               "newcomers_empty_memory": group_figures(fly_read_only(newcomer, flown,
                                                                      InProcessMemory.for_settings(newcomer))),
               "similar_trained_memory": group_figures(fly_read_only(kin, flown)),
               "similar_empty_memory": group_figures(fly_read_only(kin, flown, InProcessMemory.for_settings(kin)))}
    second = species.replace(drop_collection=False, seed=seed + 700_000, **grown)
    heirs = RunFolder.for_instance(f"{name}_gen2", runs_dir)
    heirs.move_aside()  # a second generation of an earlier experiment: this one's is new, on this memory
    with Trainer(settings=second, quiet=quiet, run_folder=heirs) as heir:
        heir.train(second_trials)
    second_generation = [record.reward for record in sorted(heir.metrics, key=lambda record: record.trial)]
    target = targets_of(species)[0]
    figures["generations"] = {
        "target": target,
        "first": {"first_reaching": first_reaching(np.array(first_generation), [target])[f"{target:g}"],
                  "first100_mean": round(float(np.mean(first_generation[:ROLLING_WINDOW])), 2)},
        "second": {"first_reaching": first_reaching(np.array(second_generation), [target])[f"{target:g}"],
                   "first100_mean": round(float(np.mean(second_generation[:ROLLING_WINDOW])), 2)}}
    return figures


def _generations(per_seed: List[dict]) -> dict:
    """Per generation, the trials to reach the target per seed and the mean of the first 100 trials."""
    return {generation: {"first_reaching": [seed_result["generations"][generation]["first_reaching"]
                                            for seed_result in per_seed],
                         "first100_mean": round(float(np.mean([seed_result["generations"][generation]["first100_mean"]
                                                               for seed_result in per_seed])), 2)}
            for generation in ("first", "second")}


def group_figures(records: list) -> dict:
    """A group of flights' trials, mean reward, landing (solved) rate and end causes."""
    rewards = np.asarray([record.reward for record in records], dtype=np.float64)
    return {"trials": len(rewards), "mean": round(float(rewards.mean()), 2),
            "solved_rate": round(float(np.mean([record.solved for record in records])), 4),
            "ends": shares_of(pd.Series([record.end for record in records]))}


def plot_instinct(result: dict):
    """The groups' mean rewards and landing rates with 95% intervals over seeds."""
    labels = {"newcomers_empty_memory": "newcomers,\nempty memory",
              "newcomers_trained_memory": "newcomers,\ntrained memory",
              "trained_last": "trained population,\nlast trials",
              "similar_empty_memory": "similar animal,\nempty memory",
              "similar_trained_memory": "similar animal,\ntrained memory"}
    groups = [result["groups"][key] for key in labels]
    colours = ["#999999", "#4c72b0", "#55a868", "#cccccc", "#8172b2"]
    figure = new_figure(figsize=(15, 5))
    rewards, landings = figure.subplots(1, 2)
    rewards.bar(labels.values(), [g["mean"] for g in groups], yerr=[_bar_error(g["mean_ci95"]) for g in groups],
                capsize=6, color=colours)
    rewards.axhline(0, color="black", linewidth=0.8)
    rewards.set_ylabel("mean reward per trial")
    rates = [100 * g["solved_rate"] for g in groups]
    spreads = [100 * _bar_error(g["solved_rate_ci95"]) for g in groups]
    landings.bar(labels.values(), rates, yerr=[[min(rate, spread) for rate, spread in zip(rates, spreads)], spreads],
                 capsize=6, color=colours)  # a rate's interval stops at 0
    landings.set_ylabel("solved (LunarLander: a landing, reward >= 200), %")
    for axis in (rewards, landings):
        axis.tick_params(axis="x", labelsize=8)
    figure.suptitle(f"Instinct ({result['variant']}): {result['newcomers']} newcomers x {result['first_trials']} first "
                    f"trials vs the population's last {result['newcomers'] * result['first_trials']}; a similar animal: "
                    f"{result['similar']}; {len(result['seeds'])} seeds (95% intervals), memory of {result['trials']} trials")
    figure.tight_layout()
    return figure


def _bar_error(half_width: Optional[float]) -> float:
    return 0.0 if half_width is None else half_width


def rounded(value: Optional[float], digits: int = 4) -> Optional[float]:
    """``round``, with None (a figure that has no value, e.g. one seed's interval) kept None."""
    return None if value is None else round(value, digits)


def ends_table(result: dict):
    """How each variant's trials ended (the last 250 of training, and the evaluation), means over seeds."""
    rows = {}
    for variant, entry in result["variants"].items():
        for label, key in (("training, last 250", "ends"), ("evaluation", "eval_ends")):
            causes = sorted({cause for run in entry["seeds"] for cause in run[key]})
            rows[(variant, label)] = {cause: round(float(np.mean([run[key].get(cause, 0.0) for run in entry["seeds"]])),
                                                   3) for cause in causes}
    return pd.DataFrame(rows).T.fillna(0.0)


def curve_table(result: dict):
    """Per variant and seed: the mean reward of each block of 100 trials and when the rolling mean first
    reached each target."""
    rows = {}
    for variant, entry in result["variants"].items():
        for run in entry["seeds"]:
            rows[(variant, run["seed"])] = {"blocks of 100": " ".join(f"{block:+.0f}" for block in run["blocks"]),
                                            **{f"first >= {target}": trial for target, trial
                                               in run["first_reaching"].items()}}
    return pd.DataFrame(rows).T


def figures_table(result: dict):
    """The learning benchmark's figures, a row per variant (a pandas DataFrame)."""
    columns = ("train_mean", "last100_mean", "last100_mean_ci95", "solved_rate", "eval_mean", "eval_mean_ci95",
               "eval_std", "eval_solved_rate")
    return pd.DataFrame({variant: {column: entry[column] for column in columns}
                         for variant, entry in result["variants"].items()}).T


def instinct_table(result: dict):
    """The instinct experiment's groups, a row each (a pandas DataFrame)."""
    return pd.DataFrame(result["groups"]).T[["mean", "mean_ci95", "solved_rate", "solved_rate_ci95"]]


def generations_table(result: dict):
    """The first and the second generation: trials to the target per seed, and the first 100 trials' mean."""
    target = result["per_seed"][0]["generations"]["target"] if result["per_seed"] else None
    return pd.DataFrame({generation: {f"first trial at rolling mean >= {target:g} (per seed)": entry["first_reaching"],
                                      "mean of the first 100 trials": entry["first100_mean"]}
                         for generation, entry in result["generations"].items()}).T


def command_line() -> str:
    """The command this process was started with, as typed from the project's folder: a record says
    how to make it again."""
    script = Path(sys.argv[0]).resolve()
    typed = script.relative_to(PROJECT) if script.is_relative_to(PROJECT) else script
    return shlex.join(["python", str(typed), *sys.argv[1:]])


def write_record(result: dict, json_path: Path) -> None:
    """A benchmark's figures as JSON, with the command and the code (``provenance``) that made them,
    and, for figures over seeds, whether those seeds were held out from tuning (``TUNING_SEEDS``)."""
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    held_out = {"seeds_held_out": seeds_held_out(result["seeds"])} if "seeds" in result else {}
    json_path.write_text(json.dumps({**result, **held_out, "command": command_line(), **provenance(PROJECT)},
                                    indent=1))


def seeds_held_out(seeds: Iterable[int]) -> bool:
    """Whether none of these seeds chose a preset or setting: figures on them are not tuned to them."""
    return not any(seed in TUNING_SEEDS for seed in seeds)


def save(result: dict, figure, json_path: Path, plot_path: Optional[Path] = None) -> Path:
    """Write an experiment's record (``write_record``) and its figure (beside it, as PNG, unless
    ``plot_path``)."""
    json_path = Path(json_path)
    write_record(result, json_path)
    plot_path = Path(plot_path or json_path.with_suffix(".png"))
    figure.savefig(plot_path, dpi=100)
    return plot_path
