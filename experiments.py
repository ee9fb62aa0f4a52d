"""The measured experiments: learning curves over seeds, and the instinct experiment.

Why its own module: ``bench/learning.py``, ``bench/instinct.py`` and ``main.py instinct`` run the
same experiments, and a notebook can call them too. Each training run is an ordinary ``Trainer``
run with its own collection and run folder, so ``main.py compare`` and ``evaluate`` work on it.
"""
from __future__ import annotations

import multiprocessing
import re
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import numpy as np
import pandas as pd

from config import Settings
from credit import trial_epsilon, trial_noise
from evaluation import evaluate, fly_read_only
from memory import InProcessMemory
from runs import ROLLING_WINDOW, RunFolder, new_figure, summarise
from Trainer import Trainer

# The credit rules measured against the seed's, one change at a time. Each is a set of settings on
# top of settings.py; a preset's name (settings.PRESETS) is a variant too.
VARIANTS: Dict[str, dict] = {
    "seed": {},
    "return": {"outcome_rule": "return", "outcome_reward_scale": 200.0},
    "distance": {"neighbour_weighting": "distance"},
    "schedule": {"noise": 0.5, "noise_final": 0.02, "noise_decay_trials": 300},
}
# Two-sided 95% quantiles of Student's t by degrees of freedom; between entries the lower one is used
# (a slightly wider interval), and the normal's 1.96 from 30 on.
T_95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
        10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060}


def variant_settings(variant: str, base: Optional[Settings] = None) -> Settings:
    """The settings of a named variant, or of a preset named in ``settings.PRESETS``."""
    base = base or Settings.from_module()
    if variant in VARIANTS:
        return base.replace(**VARIANTS[variant])
    return Settings.from_module(preset=variant, **{name: getattr(base, name) for name in
                                                   ("milvus_uri", "milvus_token", "milvus_data_dir")})


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
    name = f"learning_{variant}_s{seed}"
    settings = settings.replace(instance_name=name, seed=seed, drop_collection=True, read_only=False, display=False)
    trainer = Trainer(settings=settings, quiet=quiet, run_folder=RunFolder.for_instance(name, runs_dir))
    started = time.monotonic()
    try:
        trainer.train(trials)
    finally:
        trainer.close()
    trials_run = trainer.metrics_frame().sort_values("trial")
    figures = summarise(trials_run)
    evaluation = evaluate(settings, eval_episodes)
    RunFolder.for_instance(name, runs_dir).write_evaluation(evaluation)
    return {"seed": seed, "instance": name, "rewards": trials_run["reward"].round(2).tolist(),
            "train_mean": figures["mean_reward"], "last100_mean": figures["last100_mean"],
            "solved_rate": figures["solved_rate"], "eval_mean": evaluation["mean"], "eval_std": evaluation["std"],
            "eval_solved_rate": evaluation["solved_rate"],
            "steps_per_s": round(trainer.steps_taken / (time.monotonic() - started), 1)}


def across_seeds(runs: List[dict]) -> dict:
    """A variant's figures: the mean over seeds of each per-seed figure, and its 95% interval."""
    keys = ("train_mean", "last100_mean", "solved_rate", "eval_mean", "eval_std", "eval_solved_rate")
    figures = {key: round(float(np.mean([run[key] for run in runs])), 4) for key in keys}
    figures.update({f"{key}_ci95": _rounded(ci95(run[key] for run in runs)) for key in ("last100_mean", "eval_mean")})
    return figures


def plot_learning(result: dict):
    """One learning curve per variant: the mean over seeds of the rolling mean, with a min–max band."""
    figure = new_figure(figsize=(9, 5))
    axis = figure.subplots()
    for variant, entry in result["variants"].items():
        curves = np.array([pd.Series(run["rewards"]).rolling(ROLLING_WINDOW, min_periods=1).mean()
                           for run in entry["seeds"]])
        trials = np.arange(1, curves.shape[1] + 1)
        line, = axis.plot(trials, curves.mean(axis=0), label=f"{variant} (eval {entry['eval_mean']:.0f})")
        axis.fill_between(trials, curves.min(axis=0), curves.max(axis=0), color=line.get_color(), alpha=0.2)
    solved_at = Settings.from_module(env_id=result.get("env_id", "LunarLander-v3")).environment.solved_at
    if solved_at is not None:
        axis.axhline(solved_at, color="grey", linestyle=":", linewidth=1, label=f"solved ({solved_at:g})")
    axis.set_xlabel("trial")
    axis.set_ylabel(f"reward, rolling mean of {ROLLING_WINDOW}")
    axis.set_title(f"Learning over {len(result['seeds'])} seeds (band: min–max), population "
                   f"{result['population']}")
    axis.legend(loc="lower right")
    figure.tight_layout()
    return figure


def learning_benchmark(variants: List[str], seeds: List[int], trials: int, population: int,
                       eval_episodes: int, runs_dir: Path, base: Optional[Settings] = None,
                       quiet: bool = True, jobs: int = 1, changes: Optional[dict] = None) -> dict:
    """Every variant on every seed; per-seed curves and figures, and their means over seeds.

    :param changes: settings changed in every variant (lowercase names), to try a variation.
    :param jobs: runs at once, each in its own process (they share the embedded server); the
        curves do not depend on it, only the time does.
    """
    base = base or Settings.from_module()
    started = time.monotonic()
    plans = {variant: variant_settings(variant, base).replace(population_size=population, **(changes or {}))
             for variant in variants}
    tasks = [(plans[variant], _run_label(variant, changes or {}), seed, trials, eval_episodes, runs_dir, quiet)
             for variant in variants for seed in seeds]
    if jobs == 1:
        runs = [learning_run(*task) for task in tasks]
    else:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            runs = list(pool.map(learning_run, *zip(*tasks)))
    result = {"trials": trials, "seeds": seeds, "population": population, "eval_episodes": eval_episodes,
              "variants": {}}
    for number, variant in enumerate(variants):
        variant_runs = runs[number * len(seeds):(number + 1) * len(seeds)]
        result["variants"][variant] = {"settings": _changed(plans[variant], base), **across_seeds(variant_runs),
                                       "seeds": variant_runs}
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


def instinct_experiment(variant: str, seeds: List[int], trials: int, population: int, newcomers: int,
                        first_trials: int, runs_dir: Path, base: Optional[Settings] = None,
                        quiet: bool = True) -> dict:
    """Does a trained memory give newcomers an instinct?

    For each seed a population of ``population`` trains a shared memory for ``trials`` trials. Then
    ``newcomers`` landers that never trained fly ``first_trials`` trials each, read-only (they take
    from the memory and add nothing), on that memory, and the same number on an empty memory; both
    groups use the noise and ε the population ended with. The three groups compared are these newcomers
    and the trained population's last ``newcomers x first_trials`` trials.
    """
    base = base or Settings.from_module()
    settings = variant_settings(variant, base).replace(population_size=population)
    per_seed = [_instinct_seed(settings, variant, seed, trials, newcomers, first_trials, runs_dir, quiet)
                for seed in seeds]
    groups = {}
    for group in ("trained_last", "newcomers_trained_memory", "newcomers_empty_memory"):
        means = [seed_result[group]["mean"] for seed_result in per_seed]
        solved = [seed_result[group]["solved_rate"] for seed_result in per_seed]
        groups[group] = {"mean": round(float(np.mean(means)), 2), "mean_ci95": _rounded(ci95(means)),
                         "solved_rate": round(float(np.mean(solved)), 4),
                         "solved_rate_ci95": _rounded(ci95(solved))}
    return {"variant": variant, "settings": _changed(settings, base), "seeds": seeds, "trials": trials,
            "population": population, "newcomers": newcomers, "first_trials": first_trials,
            "groups": groups, "per_seed": per_seed}


def _instinct_seed(settings: Settings, variant: str, seed: int, trials: int, newcomers: int, first_trials: int,
                   runs_dir: Path, quiet: bool) -> dict:
    name = f"instinct_{variant}_s{seed}"
    species = settings.replace(instance_name=name, seed=seed, drop_collection=True, read_only=False, display=False)
    trainer = Trainer(settings=species, quiet=quiet, run_folder=RunFolder.for_instance(name, runs_dir))
    try:
        trainer.train(trials)
    finally:
        trainer.close()
    last = sorted(trainer.metrics, key=lambda record: record.trial)[-newcomers * first_trials:]
    newcomer = species.replace(population_size=newcomers, read_only=True, seed=seed + 500_000,
                               noise=trial_noise(trials, species), noise_final=None,
                               epsilon=trial_epsilon(trials, species), epsilon_final=None)
    empty = InProcessMemory(newcomer.resonator_size, newcomer.index_nlist, newcomer.search_nprobe)
    return {"seed": seed,
            "trained_last": _group_figures(last),
            "newcomers_trained_memory": _group_figures(fly_read_only(newcomer, newcomers * first_trials)),
            "newcomers_empty_memory": _group_figures(fly_read_only(newcomer, newcomers * first_trials, empty))}


def _group_figures(records: list) -> dict:
    rewards = np.asarray([record.reward for record in records], dtype=np.float64)
    return {"trials": len(rewards), "mean": round(float(rewards.mean()), 2),
            "solved_rate": round(float(np.mean([record.solved for record in records])), 4)}


def plot_instinct(result: dict):
    """The three groups' mean rewards and landing rates with 95% intervals over seeds."""
    labels = {"newcomers_empty_memory": "newcomers,\nempty memory",
              "newcomers_trained_memory": "newcomers,\ntrained memory",
              "trained_last": "trained population,\nlast trials"}
    groups = [result["groups"][key] for key in labels]
    colours = ["#999999", "#4c72b0", "#55a868"]
    figure = new_figure(figsize=(10, 4.5))
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
    figure.suptitle(f"Instinct: {result['newcomers']} newcomers x {result['first_trials']} first trials vs the "
                    f"population's last {result['newcomers'] * result['first_trials']}; {len(result['seeds'])} "
                    f"seeds (95% intervals), memory of {result['trials']} trials")
    figure.tight_layout()
    return figure


def _bar_error(half_width: Optional[float]) -> float:
    return 0.0 if half_width is None else half_width


def _rounded(value: Optional[float], digits: int = 4) -> Optional[float]:
    return None if value is None else round(value, digits)


def figures_table(result: dict):
    """The learning benchmark's figures, a row per variant (a pandas DataFrame)."""
    columns = ("train_mean", "last100_mean", "last100_mean_ci95", "solved_rate", "eval_mean", "eval_mean_ci95",
               "eval_std", "eval_solved_rate")
    return pd.DataFrame({variant: {column: entry[column] for column in columns}
                         for variant, entry in result["variants"].items()}).T


def instinct_table(result: dict):
    """The instinct experiment's groups, a row each (a pandas DataFrame)."""
    return pd.DataFrame(result["groups"]).T[["mean", "mean_ci95", "solved_rate", "solved_rate_ci95"]]


def save(result: dict, figure, json_path: Path, plot_path: Optional[Path] = None) -> Path:
    """Write an experiment's JSON and its figure (beside it, as PNG, unless ``plot_path``)."""
    import json

    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=1))
    plot_path = Path(plot_path or json_path.with_suffix(".png"))
    figure.savefig(plot_path, dpi=100)
    return plot_path
