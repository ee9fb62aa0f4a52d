"""The doses experiment: does resonance grow with the number of past instances?

Why its own module: it is one of the experiments "What the memory shows" (docs/memory_shows.md)
reports, with its own plan and figures; it reuses the instinct experiment's way of flying
newcomers (``lab``).

**The hypothesis predicts** that newcomers who never trained fly better the more trials of their
kind the memory holds: the benefit (newcomers on the memory minus newcomers on an empty one) grows
with the past trials, and with the past landings among them.

**The plan.** For each seed a population trains one memory for the largest dose of trials. A
memory "of N trials" is then that memory's engrams of trials 0 … N−1: the engrams a trial leaves
are fixed once stored (no re-valuation), so they are the memory as it stood after N trials, taken
from one training instead of one per dose. Newcomers fly read-only on each dose's memory, in an
in-process copy (a FAISS index, as the replica searches), and on an empty memory; every group flies
the same environment seeds with the exploration the population ended with, so only the memory
differs.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np

from resonant_vectors.agent.credit import trial_epsilon, trial_noise
from resonant_vectors.config import Settings
from resonant_vectors.errors import ResonantVectorsError
from resonant_vectors.experiments.lab import benefit_over_seeds, group_figures, mean_over, variant_settings
from resonant_vectors.loop.evaluation import fly_read_only
from resonant_vectors.loop.trainer import Trainer
from resonant_vectors.memory.in_process import InProcessMemory
from resonant_vectors.memory.seam import EngramColumns
from resonant_vectors.runs.folder import RunFolder, new_figure

DOSES = (30, 100, 300, 1000, 3000)   # past trials in the memories the newcomers fly on
NEWCOMER_SEED_OFFSET = 500_000       # newcomers fly environment seeds no training trial met


def doses_experiment(variant: str, seeds: List[int], doses: List[int], population: int, newcomers: int,
                     first_trials: int, runs_dir: Path, base: Optional[Settings] = None, quiet: bool = True) -> dict:
    """Newcomers on memories of ``doses`` past trials and on an empty one, for each seed; the benefit
    per dose with its 95% interval over seeds (the record ``save`` writes)."""
    base = base or Settings.from_module()
    settings = variant_settings(variant, base).replace(population_size=population)
    if settings.search_backend != "replica" or settings.revalue_every:
        raise ResonantVectorsError(f"the doses experiment reads the trained memory's engrams in this process and "
                                   f"takes their outcomes as fixed once stored: SEARCH_BACKEND must be \"replica\" "
                                   f"and REVALUE_EVERY 0 (variant {variant!r} has {settings.search_backend!r} and "
                                   f"{settings.revalue_every}); choose a preset that has them, e.g. steady")
    doses = sorted(set(doses))
    per_seed = [_doses_seed(settings, variant, seed, doses, newcomers, first_trials, runs_dir, quiet) for seed in seeds]
    return {"experiment": "doses", "variant": variant, "search_backend": settings.search_backend, "seeds": seeds,
            "doses": doses, "population": population, "newcomers": newcomers, "first_trials": first_trials,
            "by_dose": [_across_seeds(per_seed, dose) for dose in doses], "per_seed": per_seed}


def _doses_seed(settings: Settings, variant: str, seed: int, doses: List[int], newcomers: int, first_trials: int,
                runs_dir: Path, quiet: bool) -> dict:
    name = f"doses_{variant}_s{seed}"
    species = settings.replace(instance_name=name, seed=seed, drop_collection=True, read_only=False, display=False)
    trials = doses[-1]
    with Trainer(settings=species, quiet=quiet, run_folder=RunFolder.for_instance(name, runs_dir)) as trainer:
        trainer.train(trials)
        engrams = trainer.store.memory.engrams()
    solved = np.array([record.trial for record in trainer.metrics if record.solved], dtype=np.int64)
    newcomer = species.replace(population_size=newcomers, read_only=True, seed=seed + NEWCOMER_SEED_OFFSET,
                               noise=trial_noise(trials, species), noise_final=None,
                               epsilon=trial_epsilon(trials, species), epsilon_final=None)
    flown = newcomers * first_trials
    empty = group_figures(fly_read_only(newcomer, flown, InProcessMemory.for_settings(newcomer)))
    results = []
    for dose in doses:
        flights = fly_read_only(newcomer, flown, memory_of_first_trials(engrams, dose, newcomer))
        figures = group_figures(flights)
        results.append({"dose": dose, "past_landings": int((solved < dose).sum()), **figures,
                        "benefit": round(figures["mean"] - empty["mean"], 2),
                        "landing_benefit": round(figures["solved_rate"] - empty["solved_rate"], 4)})
    return {"seed": seed, "empty": empty, "doses": results}


def memory_of_first_trials(engrams: EngramColumns, trials: int, settings: Settings) -> InProcessMemory:
    """An in-process memory of the engrams that trials 0 … ``trials``−1 left."""
    memory = InProcessMemory.for_settings(settings)
    memory.add(engrams.select(engrams.trial < trials))
    return memory


def _across_seeds(per_seed: List[dict], dose: int) -> dict:
    rows = [next(row for row in seed_result["doses"] if row["dose"] == dose) for seed_result in per_seed]
    return {"dose": dose, "past_landings": mean_over(rows, "past_landings", 1), "mean": mean_over(rows, "mean", 2),
            "solved_rate": mean_over(rows, "solved_rate", 4), **benefit_over_seeds(rows)}


def plot_doses(result: dict):
    """The benefit against the past trials (log scale) and against the past landings, with 95% intervals."""
    figure = new_figure(figsize=(13, 5))
    by_trials, by_landings = figure.subplots(1, 2)
    rows = result["by_dose"]
    errors = [row["benefit_ci95"] or 0.0 for row in rows]
    for axis, x, label in ((by_trials, [row["dose"] for row in rows], "past trials in the memory"),
                           (by_landings, [row["past_landings"] for row in rows], "past landings in the memory (mean)")):
        axis.errorbar(x, [row["benefit"] for row in rows], yerr=errors, marker="o", capsize=5)
        axis.axhline(0, color="grey", linewidth=0.8)
        axis.set_xlabel(label)
        axis.set_ylabel("benefit: mean reward on the memory − on an empty one")
    by_trials.set_xscale("log")
    by_landings.set_xscale("symlog", linthresh=1.0)  # a memory of no landing stays on the axis
    by_landings.set_xlim(left=-0.5)
    figure.suptitle(f"Doses ({result['variant']}): {result['newcomers']} newcomers × {result['first_trials']} trials "
                    f"per memory, {len(result['seeds'])} seeds (95% intervals)")
    figure.tight_layout()
    return figure


def doses_table(result: dict) -> str:
    """The benefit per dose, as printed by the command."""
    lines = ["past trials  past landings  mean reward  landed  benefit (95%)"]
    for row in result["by_dose"]:
        spread = f" ± {row['benefit_ci95']:.1f}" if row["benefit_ci95"] is not None else ""
        lines.append(f"{row['dose']:>11}  {row['past_landings']:>13.1f}  {row['mean']:>+11.1f}  "
                     f"{100 * row['solved_rate']:>5.0f}%  {row['benefit']:+.1f}{spread}")
    return "\n".join(lines)
