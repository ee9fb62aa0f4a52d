"""The generations experiment, after McDougall's and Agar's rats: does a whole lineage benefit?

Why its own module: it is one of the experiments "What the memory shows" (docs/memory_shows.md)
reports, with its own three lines and figures.

McDougall trained rats to escape a water maze, generation after generation, and their descendants
made fewer errors. In Agar's replication the control line, whose ancestors never trained, improved
too; that is the result Sheldrake cites for morphic resonance.

**The hypothesis predicts** that each generation of the trained line makes fewer errors than the
one before, that the control line, which only reads the species' memory, improves with it, and that
an isolated line, which trains as the trained line does but inherits nothing, does not improve.

**The plan.** For each seed, generation after generation:

- the *control line*'s generation flies ``test_trials`` trials read-only on the species' memory as
  it stands (its ancestors never trained: nothing it flies is stored);
- the *trained line*'s generation then trains ``trials`` trials on that memory, adding to it;
- the *isolated line*'s generation trains ``trials`` trials on a memory of its own, new for each
  generation, that nobody else writes.

Every generation of every line flies with the exploration the settings' schedule settles at (a
newborn that explores as a beginner would, ``steady``'s ε of 1, acts at random and could not show
what it inherits), and the three lines of a generation fly the same environment seeds, so only what
the memory holds differs. A generation's errors are the crashes, fly-offs, time-outs and deaths among its first
``test_trials`` trials; its trials to the first landing count from its own first trial.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import pandas as pd

from resonant_vectors.agent.credit import trial_epsilon, trial_noise
from resonant_vectors.config import Settings
from resonant_vectors.experiments.lab import ci95, rounded, shares_of, variant_settings
from resonant_vectors.loop.evaluation import fly_read_only
from resonant_vectors.loop.trainer import Trainer
from resonant_vectors.memory.in_process import InProcessMemory
from resonant_vectors.runs.folder import RunFolder, new_figure
from resonant_vectors.runs.records import TrialRecord

LINES = ("trained", "control", "isolated")
ERRORS = ("crashed", "flew_off", "timed_out", "died")   # the ends counted as a generation's errors
GENERATION_SEEDS = 10_000   # generation g flies environment seeds SEED + g x this on (as many trials never meet)


def generations_experiment(variant: str, seeds: List[int], generations: int, trials: int, test_trials: int,
                           population: int, runs_dir: Path, base: Optional[Settings] = None,
                           quiet: bool = True) -> dict:
    """The three lines of ``generations`` generations for each seed; per generation and line, the
    errors and the trials to the first landing, with 95% intervals over seeds (the record ``save``
    writes)."""
    settings = variant_settings(variant, base or Settings.from_module()).replace(population_size=population)
    per_seed = [_lineage(settings, variant, seed, generations, trials, test_trials, runs_dir, quiet)
                for seed in seeds]
    return {"experiment": "generations", "variant": variant, "search_backend": settings.search_backend,
            "seeds": seeds, "generations": generations, "trials": trials, "test_trials": test_trials,
            "population": population, "errors": list(ERRORS),
            "by_generation": [{"generation": generation,
                               **{line: _across_seeds([seed_result["generations"][generation][line]
                                                       for seed_result in per_seed]) for line in LINES}}
                              for generation in range(generations)],
            "per_seed": per_seed}


def _lineage(settings: Settings, variant: str, seed: int, generations: int, trials: int, test_trials: int,
             runs_dir: Path, quiet: bool) -> dict:
    name = f"generations_{variant}_s{seed}"
    rows = []
    for generation in range(generations):
        newborn = settled(settings).replace(seed=seed + generation * GENERATION_SEEDS, display=False)
        species = newborn.replace(instance_name=name, drop_collection=generation == 0, read_only=False)
        control = newborn.replace(instance_name=name, read_only=True)
        tested = fly_read_only(control, test_trials, InProcessMemory.for_settings(control) if generation == 0 else None)
        trained = _train(species, f"{name}_g{generation}", trials, runs_dir, quiet)
        isolated_name = f"{name}_isolated_g{generation}"
        isolated = _train(newborn.replace(instance_name=isolated_name, drop_collection=True, read_only=False),
                          isolated_name, trials, runs_dir, quiet)
        rows.append({"generation": generation, "trained": _figures(trained, test_trials),
                     "control": _figures(tested, test_trials), "isolated": _figures(isolated, test_trials)})
    return {"seed": seed, "generations": rows}


def settled(settings: Settings) -> Settings:
    """The settings with the exploration their schedules end at, held from the first trial on."""
    return settings.replace(noise=trial_noise(settings.noise_decay_trials, settings), noise_final=None,
                            epsilon=trial_epsilon(settings.epsilon_decay_trials, settings), epsilon_final=None)


def _train(settings: Settings, folder: str, trials: int, runs_dir: Path, quiet: bool) -> List[TrialRecord]:
    """One generation's training in a run folder of its own (an earlier experiment's is moved aside)."""
    run_folder = RunFolder.for_instance(folder, runs_dir)
    run_folder.move_aside()
    with Trainer(settings=settings, quiet=quiet, run_folder=run_folder) as trainer:
        trainer.train(trials)
    return sorted(trainer.metrics, key=lambda record: record.trial)


def _figures(records: Sequence[TrialRecord], test_trials: int) -> dict:
    """A generation's errors in its first ``test_trials`` trials (by end cause too), their mean reward,
    and its first trial that landed (None: none did)."""
    first = records[:test_trials]
    ends = [record.end for record in first]
    landed = [record.trial for record in records if record.solved]
    return {"errors": sum(end in ERRORS for end in ends), "ends": shares_of(pd.Series(ends)),
            "mean": round(float(np.mean([record.reward for record in first])), 2),
            "first_landing": min(landed) if landed else None, "trials": len(records)}


def _across_seeds(figures: List[dict]) -> dict:
    errors = [entry["errors"] for entry in figures]
    landings = [entry["first_landing"] for entry in figures]
    reached = [landing for landing in landings if landing is not None]
    return {"errors": round(float(np.mean(errors)), 2), "errors_ci95": rounded(ci95(errors), 2),
            "mean": round(float(np.mean([entry["mean"] for entry in figures])), 2),
            "first_landing": landings, "landed_seeds": len(reached),
            "first_landing_mean": round(float(np.mean(reached)), 1) if reached else None}


def plot_generations(result: dict):
    """Each line's errors against the generation (95% intervals), and each seed's trials to its
    first landing (a generation that never landed sits on the top edge, hollow)."""
    figure = new_figure(figsize=(13, 5))
    by_errors, by_landing = figure.subplots(1, 2)
    x = [row["generation"] for row in result["by_generation"]]
    colours = {"trained": "tab:blue", "control": "tab:green", "isolated": "tab:grey"}
    for line in LINES:
        rows = [row[line] for row in result["by_generation"]]
        by_errors.errorbar(x, [row["errors"] for row in rows], yerr=[row["errors_ci95"] or 0.0 for row in rows],
                           marker="o", capsize=4, label=f"{line} line", color=colours[line])
    by_errors.set_xlabel("generation")
    by_errors.set_ylabel(f"errors in the first {result['test_trials']} trials (crashes, fly-offs, time-outs)")
    by_errors.legend()
    ceiling = result["trials"]
    for line in ("trained", "isolated"):
        for seed_index in range(len(result["seeds"])):
            landings = [row[line]["first_landing"][seed_index] for row in result["by_generation"]]
            by_landing.plot(x, [ceiling if value is None else value for value in landings], color=colours[line],
                            alpha=0.5, label=f"{line} line" if seed_index == 0 else None)
            never = [generation for generation, value in zip(x, landings) if value is None]
            by_landing.scatter(never, [ceiling] * len(never), facecolors="none", edgecolors=colours[line])
    by_landing.set_xlabel("generation")
    by_landing.set_ylabel(f"trials to the first landing (hollow: none in {ceiling})")
    by_landing.legend()
    figure.suptitle(f"Generations ({result['variant']}): {result['trials']} trials per generation, "
                    f"population {result['population']}, seeds {result['seeds']}")
    figure.tight_layout()
    return figure


def generations_table(result: dict) -> str:
    """Each generation's errors per line, as printed by the command."""
    lines = [f"generation  errors in the first {result['test_trials']}: trained  control  isolated   "
             f"first landing (trained / isolated)"]
    for row in result["by_generation"]:
        landings = " / ".join(str(row[line]["first_landing_mean"]) for line in ("trained", "isolated"))
        lines.append(f"{row['generation']:>10}  {row['trained']['errors']:>29.1f}  {row['control']['errors']:>7.1f}  "
                     f"{row['isolated']['errors']:>8.1f}   {landings}")
    return "\n".join(lines)
