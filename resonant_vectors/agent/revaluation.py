"""Re-valuation: values that travel through the memory (kernel-based fitted Q iteration).

Why its own module: an engram's outcome is first what its own trial made of it (the reward, or
the return that followed); a clumsy lander's return undervalues a good move it happened to make.
Re-valuation asks the memory instead: each engram's outcome becomes its step's reward plus the
discounted value of the best action the memory knows from the situation the step led to,

    target = r / OUTCOME_REWARD_SCALE + DISCOUNT · max_a Q(next, a)    (no second term where the trial ended)
    outcome ← clip(REVALUE_BLEND · target + (1 − REVALUE_BLEND) · outcome, −1, 1)

where Q(next, a) is the (``NEIGHBOUR_WEIGHTING``) mean outcome of the ``MIN_RESULTS`` nearest engrams
that took action ``a`` (one memory per action). A sweep applies it to every engram at once;
``REVALUE_SWEEPS`` sweeps make a pass, every ``REVALUE_EVERY`` trials, and the new outcomes are
written back through the memory (to Milvus as an upsert of the same ids, so the count does not
change, then to the in-process copy).
The blend guards against the max's optimism: a value read from few or far neighbours moves an
outcome only part of the way. This follows kernel-based RL (Ormoneit & Sen 2002) and NEC's
bootstrapped targets (Pritzel et al. 2017). It reads a memory that holds its engrams in this
process (``SEARCH_BACKEND = "replica"``, or ``memory.InProcessMemory``): a sweep is a search per
action for every stored engram.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from resonant_vectors.agent.brain import neighbour_weights
from resonant_vectors.config import Settings
from resonant_vectors.memory.seam import EngramColumns, Memory

SEARCH_CHUNK = 20_000   # engrams whose next situations are searched at once (bounds the memory a sweep needs)


@dataclass(frozen=True)
class RevaluationReport:
    """What a pass did: how many engrams it re-valued, the mean absolute change of their outcomes,
    and the seconds it took."""

    engrams: int
    mean_change: float
    seconds: float


def revalue(memory: Memory, settings: Settings, sweeps: int) -> RevaluationReport:
    """Re-value every engram the memory holds ``sweeps`` times; write the outcomes back."""
    started = time.monotonic()
    held = memory.engrams()
    if not len(held):
        return RevaluationReport(0, 0.0, 0.0)
    before = held.outcome.astype(np.float64)
    outcomes = before.copy()
    for _ in range(sweeps):
        outcomes = _sweep(memory, settings, held, outcomes)
    memory.set_outcomes(np.arange(len(held)), outcomes)
    return RevaluationReport(len(held), float(np.abs(outcomes - before).mean()), time.monotonic() - started)


def _sweep(memory: Memory, settings: Settings, held: EngramColumns, outcomes: np.ndarray) -> np.ndarray:
    """One synchronous sweep: every target is computed from the outcomes before it."""
    targets = held.reward.astype(np.float64) / settings.outcome_reward_scale
    following = ~held.ended
    next_values = np.full(len(held), np.nan)
    for start in range(0, len(held), SEARCH_CHUNK):
        chunk = np.arange(start, min(start + SEARCH_CHUNK, len(held)))
        chunk = chunk[following[chunk]]
        if len(chunk):
            next_values[chunk] = _best_values(memory, settings, held.next_vector[chunk], outcomes)
    known = following & np.isfinite(next_values)
    targets[known] += settings.discount * next_values[known]
    unknown = following & ~known  # nothing in memory to read a value from: the outcome stays
    targets[unknown] = outcomes[unknown]
    return np.clip(settings.revalue_blend * targets + (1 - settings.revalue_blend) * outcomes, -1.0, 1.0)


def _best_values(memory: Memory, settings: Settings, situations: np.ndarray, outcomes: np.ndarray) -> np.ndarray:
    """max over actions of each situation's per-action mean outcome (NaN where no action has
    neighbours). Engrams another writer added since the pass began are not in ``outcomes``: they
    do not count."""
    values = np.full((len(situations), settings.action_count), -np.inf)
    for action in range(settings.action_count):
        table = memory.nearest(situations, settings.min_results, action)
        counted = table.found & (table.rows < len(outcomes))
        weights = neighbour_weights(table.distances, settings.neighbour_weighting) * counted
        support = weights.sum(axis=1)
        totals = (weights * outcomes[np.where(counted, table.rows, 0)]).sum(axis=1)
        values[:, action] = np.where(support > 0, totals / np.where(support > 0, support, 1.0), -np.inf)
    best = values.max(axis=1)
    return np.where(np.isfinite(best), best, np.nan)
