"""The kinds experiment: does resonance fall off with dissimilarity?

Why its own module: it is one of the experiments "What the memory shows" (docs/memory_shows.md)
reports, with its own kinds and figures; it flies newcomers as the doses experiment does.

**The hypothesis predicts** that newcomers gain from a memory of their kind, less the further their
kind is from the one that left the memory, and nothing where the memory's advice means nothing to
them.

**The plan.** For each seed a population of the usual lander (gravity −10, no wind, its own mass
and wiring) trains one memory. Newcomers of each kind then fly read-only on an in-process copy of
that memory (a FAISS index, as the replica searches), and as many of the same kind on an empty
memory; every group flies the same environment seeds with the exploration the population ended
with, so only the memory and the kind differ. The benefit is the difference of their mean rewards.
The kinds lie on three gradients away from the trained one (gravity, wind, the lander's mass), and
one kind is wired otherwise (``ACTION_MAP``): its situations look like the trained ones, but each
action fires another engine, so a memory of the usual wiring should give it nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from resonant_vectors.agent.credit import trial_epsilon, trial_noise
from resonant_vectors.config import Settings
from resonant_vectors.errors import ResonantVectorsError
from resonant_vectors.experiments.doses import NEWCOMER_SEED_OFFSET
from resonant_vectors.experiments.lab import benefit_over_seeds, group_figures, variant_settings
from resonant_vectors.loop.evaluation import fly_read_only
from resonant_vectors.loop.trainer import Trainer
from resonant_vectors.memory.in_process import InProcessMemory
from resonant_vectors.runs.folder import RunFolder, new_figure


@dataclass(frozen=True)
class Kind:
    """One kind of newcomer: the settings that make it, and how far it is from the trained kind in
    its family's unit (None: a kind on no gradient)."""

    family: str
    distance: Optional[float]
    changes: Dict[str, object] = field(default_factory=dict)

    @property
    def key(self) -> Tuple:
        """Kinds of the same settings are one kind, flown once."""
        return tuple(sorted((name, tuple(value) if isinstance(value, list) else value)
                            for name, value in self.changes.items()))


CROSSED_WIRING = [0, 3, 1, 2]   # "left" fires the right engine, "main" the left, "right" the main
FAMILIES = {  # each family's unit of distance from the trained kind, for the plot
    "gravity": "gravity weaker than −10 by (m/s²)",
    "wind": "wind power (turbulence 0)",
    "mass": "body mass − LunarLander's (× its mass)",
    "wiring": "",
}
KINDS = (
    *(Kind("gravity", 10.0 + gravity, {"gravity": gravity} if gravity != -10.0 else {})
      for gravity in (-10.0, -8.0, -6.0, -4.0, -2.0)),
    *(Kind("wind", power, {"enable_wind": True, "wind_power": power, "turbulence_power": 0.0})
      for power in (0.0, 5.0, 10.0, 15.0)),
    *(Kind("mass", mass - 1.0, {"lander_mass": mass} if mass != 1.0 else {}) for mass in (1.0, 1.5, 2.0, 3.0)),
    Kind("wiring", None, {"action_map": CROSSED_WIRING}),
)


def kinds_experiment(variant: str, seeds: List[int], trials: int, population: int, newcomers: int,
                     first_trials: int, runs_dir: Path, base: Optional[Settings] = None, quiet: bool = True) -> dict:
    """Newcomers of each of ``KINDS`` on a trained memory and on an empty one, for each seed; the
    benefit per kind with its 95% interval over seeds (the record ``save`` writes)."""
    base = base or Settings.from_module()
    settings = variant_settings(variant, base).replace(population_size=population)
    if not settings.environment.is_lunar_lander:
        raise ResonantVectorsError(f"the kinds experiment changes LunarLander's gravity, wind and mass, but variant "
                                   f"{variant!r} trains {settings.env_id}: set ENV_ID = \"LunarLander-v3\"")
    if settings.search_backend != "replica":
        raise ResonantVectorsError(f"the kinds experiment copies the trained memory's engrams into this process: "
                                   f"SEARCH_BACKEND must be \"replica\" (variant {variant!r} has "
                                   f"{settings.search_backend!r}); choose a preset that has it, e.g. steady")
    per_seed = [_kinds_seed(settings, variant, seed, trials, newcomers, first_trials, runs_dir, quiet) for seed in seeds]
    return {"experiment": "kinds", "variant": variant, "search_backend": settings.search_backend, "seeds": seeds,
            "trials": trials, "population": population, "newcomers": newcomers, "first_trials": first_trials,
            "by_kind": [_across_seeds(per_seed, index) for index in range(len(KINDS))], "per_seed": per_seed}


def _kinds_seed(settings: Settings, variant: str, seed: int, trials: int, newcomers: int, first_trials: int,
                runs_dir: Path, quiet: bool) -> dict:
    name = f"kinds_{variant}_s{seed}"
    species = settings.replace(instance_name=name, seed=seed, drop_collection=True, read_only=False, display=False)
    with Trainer(settings=species, quiet=quiet, run_folder=RunFolder.for_instance(name, runs_dir)) as trainer:
        trainer.train(trials)
        engrams = trainer.store.memory.engrams()
    newcomer = species.replace(population_size=newcomers, read_only=True, seed=seed + NEWCOMER_SEED_OFFSET,
                               noise=trial_noise(trials, species), noise_final=None,
                               epsilon=trial_epsilon(trials, species), epsilon_final=None)
    flown: Dict[Tuple, dict] = {}
    rows = []
    for kind in KINDS:
        if kind.key not in flown:
            flown[kind.key] = _fly_both(newcomer.replace(**kind.changes), engrams, newcomers * first_trials)
        on_memory, on_empty = flown[kind.key]
        rows.append({"family": kind.family, "distance": kind.distance, "changes": kind.changes,
                     "trained_memory": on_memory, "empty_memory": on_empty,
                     "benefit": round(on_memory["mean"] - on_empty["mean"], 2),
                     "landing_benefit": round(on_memory["solved_rate"] - on_empty["solved_rate"], 4)})
    return {"seed": seed, "engrams": len(engrams), "kinds": rows}


def _fly_both(kind: Settings, engrams, trials: int) -> Tuple[dict, dict]:
    """A kind's newcomers on a copy of the trained memory, and on an empty one."""
    memory = InProcessMemory.for_settings(kind)
    memory.add(engrams)
    return (group_figures(fly_read_only(kind, trials, memory)),
            group_figures(fly_read_only(kind, trials, InProcessMemory.for_settings(kind))))


def _across_seeds(per_seed: List[dict], index: int) -> dict:
    rows = [seed_result["kinds"][index] for seed_result in per_seed]
    return {"family": rows[0]["family"], "distance": rows[0]["distance"], "changes": rows[0]["changes"],
            "trained_memory_mean": round(float(np.mean([row["trained_memory"]["mean"] for row in rows])), 2),
            "empty_memory_mean": round(float(np.mean([row["empty_memory"]["mean"] for row in rows])), 2),
            **benefit_over_seeds(rows)}


def plot_kinds(result: dict):
    """The benefit against the distance from the trained kind, one panel per gradient, and the kind
    wired otherwise beside the trained kind itself; 95% intervals over seeds."""
    figure = new_figure(figsize=(17, 4.5))
    axes = figure.subplots(1, len(FAMILIES), sharey=True)
    for axis, family in zip(axes, FAMILIES):
        rows = [row for row in result["by_kind"] if row["family"] == family]
        errors = [row["benefit_ci95"] or 0.0 for row in rows]
        if family == "wiring":
            usual = result["by_kind"][0]  # the trained kind itself: gravity −10, no wind, its own mass
            axis.bar(["the trained kind", "wired otherwise"], [usual["benefit"], rows[0]["benefit"]],
                     yerr=[usual["benefit_ci95"] or 0.0, errors[0]], capsize=5, color=["tab:blue", "tab:red"])
        else:
            axis.errorbar([row["distance"] for row in rows], [row["benefit"] for row in rows], yerr=errors,
                          marker="o", capsize=5)
            axis.set_xlabel(FAMILIES[family])
        axis.axhline(0, color="grey", linewidth=0.8)
        axis.set_title(family)
    axes[0].set_ylabel("benefit: mean reward on the memory − on an empty one")
    figure.suptitle(f"Kinds ({result['variant']}, memory of {result['trials']} trials): {result['newcomers']} "
                    f"newcomers × {result['first_trials']} trials per kind, seeds {result['seeds']} "
                    f"(95% intervals)")
    figure.tight_layout()
    return figure


def kinds_table(result: dict) -> str:
    """The benefit per kind, as printed by the command."""
    lines = ["family    distance  on the memory  on an empty one  benefit (95%)"]
    for row in result["by_kind"]:
        distance = "" if row["distance"] is None else f"{row['distance']:g}"
        spread = f" ± {row['benefit_ci95']:.1f}" if row["benefit_ci95"] is not None else ""
        lines.append(f"{row['family']:<8}  {distance:>8}  {row['trained_memory_mean']:>+13.1f}  "
                     f"{row['empty_memory_mean']:>+15.1f}  {row['benefit']:+.1f}{spread}")
    return "\n".join(lines)
