"""The shared-versus-isolated experiment: does a lander learn faster when its fellows' experience is
in its memory too?

Why its own module: it is one of the experiments "What the memory shows" (docs/memory_shows.md)
reports, with its own two arms and per-lander figures.

**The hypothesis predicts** that each of N landers sharing one memory reaches its first landing, and
a rolling mean of +100, in fewer of its own trials than a lander with a memory of its own: every
trial of a fellow leaves traces it can resonate with.

**The plan.** For each seed:

- *shared*: a population of N landers trains one memory for N x T trials. Each lander flies at its
  own pace, so some fly a few more than T and some a few fewer; each lander's figures count its
  first trials, up to T;
- *isolated*: N landers each train alone (a population of one) on a memory of its own for T trials,
  lander i on the environment seeds that follow lander i-1's, so that both arms fly the same seeds.
  (As in every training here, trial n flies environment seed SEED + n, so seeds a few apart fly
  mostly the same episodes, shifted; their landers' own random choices differ.)

Each lander's curve is its rewards in the order it flew them, and its figures count its own trials:
the trial of its first landing, and the trial at which the mean of its last ``ROLLING`` rewards first
reached +100. In both arms the exploration follows the variant's schedule over the trials of the
memory the lander flies on (the project's rule: a memory that has seen more explores less), so a
shared lander also explores less sooner; docs/memory_shows.md says so beside the result.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np
import pandas as pd

from resonant_vectors.config import Settings
from resonant_vectors.experiments.lab import ci95, mean_over, rounded, shares_of, variant_settings
from resonant_vectors.loop.trainer import Trainer
from resonant_vectors.runs.folder import RunFolder, new_figure
from resonant_vectors.runs.records import TrialRecord

ARMS = ("shared", "isolated")
ROLLING = 20          # the rewards a lander's rolling mean is over
ROLLING_TARGET = 100.0


def shared_experiment(variant: str, seeds: List[int], landers: int, trials: int, runs_dir: Path,
                      base: Optional[Settings] = None, quiet: bool = True) -> dict:
    """Both arms for each seed: per lander, its rewards and its trials to the first landing and to a
    rolling +100; per arm, their means over landers and seeds with 95% intervals over seeds (the
    record ``save`` writes).

    :param landers: N, the landers of each arm.
    :param trials: T, the trials each lander flies.
    """
    settings = variant_settings(variant, base or Settings.from_module()).replace(display=False)
    per_seed = [_both_arms(settings, variant, seed, landers, trials, runs_dir, quiet) for seed in seeds]
    return {"experiment": "shared", "variant": variant, "search_backend": settings.search_backend,
            "seeds": seeds, "landers": landers, "trials": trials, "rolling": ROLLING,
            "rolling_target": ROLLING_TARGET, "action_repeat": settings.action_repeat,
            "arms": {arm: _across_seeds([seed_result[arm] for seed_result in per_seed], trials) for arm in ARMS},
            "per_seed": per_seed}


def _both_arms(settings: Settings, variant: str, seed: int, landers: int, trials: int, runs_dir: Path,
               quiet: bool) -> dict:
    name = f"shared_{variant}_s{seed}"
    together = _train(settings.replace(instance_name=name, seed=seed, population_size=landers),
                      landers * trials, runs_dir, quiet)
    shared = [_lander_figures([record for record in together if record.lander == lander][:trials])
              for lander in range(landers)]
    isolated = []
    for lander in range(landers):
        alone = settings.replace(instance_name=f"{name}_alone{lander}", seed=seed + lander * trials,
                                 population_size=1)
        isolated.append(_lander_figures(_train(alone, trials, runs_dir, quiet)))
    return {"seed": seed, "shared": _arm_figures(shared), "isolated": _arm_figures(isolated)}


def _train(settings: Settings, trials: int, runs_dir: Path, quiet: bool) -> List[TrialRecord]:
    """A training afresh in a run folder of its own (an earlier experiment's is moved aside); its
    records in trial order."""
    run_folder = RunFolder.for_instance(settings.instance_name, runs_dir)
    run_folder.move_aside()
    trainer_settings = settings.replace(drop_collection=True, read_only=False)
    with Trainer(settings=trainer_settings, quiet=quiet, run_folder=run_folder) as trainer:
        trainer.train(trials)
    return sorted(trainer.metrics, key=lambda record: record.trial)


def _lander_figures(records: List[TrialRecord]) -> dict:
    """One lander's trials in the order it flew them: its rewards, decisions, ends, and the trials
    (its own, counted from 1) to its first landing and to a rolling +100 (None: not within them)."""
    rewards = np.asarray([record.reward for record in records], dtype=np.float64)
    landed = np.flatnonzero([record.solved for record in records])
    rolling = pd.Series(rewards).rolling(ROLLING).mean().to_numpy()
    reached = np.flatnonzero(rolling >= ROLLING_TARGET)
    return {"rewards": [round(float(reward), 2) for reward in rewards],
            "decisions": int(sum(record.length for record in records)),
            "ends": shares_of(pd.Series([record.end for record in records])),
            "first_landing": int(landed[0]) + 1 if len(landed) else None,
            "rolling_target": int(reached[0]) + 1 if len(reached) else None}


def _arm_figures(per_lander: List[dict]) -> dict:
    """An arm on one seed: its landers, and how many reached each mark and in how many trials (mean
    over those that did)."""
    figures = {"landers": per_lander, "mean": round(float(np.mean([np.mean(lander["rewards"])
                                                                    for lander in per_lander])), 2)}
    for mark in ("first_landing", "rolling_target"):
        reached = [lander[mark] for lander in per_lander if lander[mark] is not None]
        figures[f"{mark}_reached"] = len(reached) / len(per_lander)
        figures[f"{mark}_mean"] = round(float(np.mean(reached)), 1) if reached else None
    return figures


def _across_seeds(arms: List[dict], trials: int) -> dict:
    """An arm over seeds. A lander that never reached a mark counts as needing all its ``trials``
    in ``*_censored_mean`` (a lower bound), so arms that reach it less often are not flattered."""
    figures = {"mean": mean_over(arms, "mean", 2), "mean_ci95": rounded(ci95(arm["mean"] for arm in arms), 2)}
    for mark in ("first_landing", "rolling_target"):
        shares = [arm[f"{mark}_reached"] for arm in arms]
        censored = [float(np.mean([trials if lander[mark] is None else lander[mark] for lander in arm["landers"]]))
                    for arm in arms]
        figures.update({f"{mark}_reached": round(float(np.mean(shares)), 4),
                        f"{mark}_reached_ci95": rounded(ci95(shares)),
                        f"{mark}_censored_mean": round(float(np.mean(censored)), 1),
                        f"{mark}_censored_mean_ci95": rounded(ci95(censored), 1)})
    return figures


def plot_shared(result: dict):
    """Each lander's rolling mean against its own trials (shared in colour, isolated in grey), and
    per arm the trials to the first landing and to a rolling +100 (those never reached count as all
    the trials, hollow)."""
    figure = new_figure(figsize=(14, 5))
    curves, marks = figure.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    colours = {"shared": "tab:blue", "isolated": "tab:grey"}
    for arm in ARMS:
        for seed_index, seed_result in enumerate(result["per_seed"]):
            for lander_index, lander in enumerate(seed_result[arm]["landers"]):
                rolling = pd.Series(lander["rewards"]).rolling(result["rolling"], min_periods=1).mean()
                curves.plot(np.arange(1, len(rolling) + 1), rolling, color=colours[arm], alpha=0.35, linewidth=1,
                            label=f"{arm}: a lander" if seed_index == lander_index == 0 else None)
    curves.axhline(result["rolling_target"], color="black", linestyle=":", linewidth=1)
    curves.set_xlabel("the lander's own trials")
    curves.set_ylabel(f"rolling mean reward over {result['rolling']} trials")
    curves.legend()
    for position, mark in enumerate(("first_landing", "rolling_target")):
        for offset, arm in ((-0.15, "shared"), (0.15, "isolated")):
            values = [lander[mark] for seed_result in result["per_seed"] for lander in seed_result[arm]["landers"]]
            reached = [value for value in values if value is not None]
            marks.scatter([position + offset] * len(reached), reached, color=colours[arm], alpha=0.6,
                          label=arm if position == 0 else None)
            never = len(values) - len(reached)
            marks.scatter([position + offset] * never, [result["trials"]] * never, facecolors="none",
                          edgecolors=colours[arm])
    marks.set_ylim(0, result["trials"] * 1.05)
    marks.set_xticks([0, 1], ["first landing", f"rolling +{result['rolling_target']:g}"])
    marks.set_ylabel(f"the lander's trials to it (hollow: not in {result['trials']})")
    marks.legend()
    figure.suptitle(f"Shared versus isolated ({result['variant']}): {result['landers']} landers, "
                    f"{result['trials']} trials each, seeds {result['seeds']}")
    figure.tight_layout()
    return figure


def shared_table(result: dict) -> str:
    """Each arm's figures over seeds, as printed by the command."""
    lines = ["arm        mean reward   landers landing (trials to it)   landers at rolling +100 (trials to it)"]
    for arm in ARMS:
        figures = result["arms"][arm]
        lines.append(f"{arm:<9}  {figures['mean']:>11.1f}   {figures['first_landing_reached']:>15.0%} "
                     f"({figures['first_landing_censored_mean']:>6.1f})   "
                     f"{figures['rolling_target_reached']:>22.0%} ({figures['rolling_target_censored_mean']:>6.1f})")
    return "\n".join(lines)
