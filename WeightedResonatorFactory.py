"""``WeightedResonatorFactory``: resonator = weights ⊙ normalised state, with the success appended."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from IResonatorFactory import IResonatorFactory


class WeightedResonatorFactory(IResonatorFactory):
    """Scales each state dimension by its weight, so that dimensions that matter more for a
    decision (say, the angle) count more in the L2 distance, then appends the success value.

    :param weights: one finite weight per state dimension (``VECTOR_COMPONENT_WEIGHTS``).
    :param success_weight: the weight of the success value (``SUCCESS_COMPONENT_WEIGHT``); 0 makes
        every trial's experience equally near, whatever its success.
    """

    def __init__(self, weights: Sequence[float], success_weight: float = 1.0) -> None:
        try:
            array = np.asarray(weights, dtype=np.float32)
        except (TypeError, ValueError):
            raise ValueError(f"resonator weights: expected numbers, got {weights!r}") from None
        if array.ndim != 1 or array.size == 0 or not np.isfinite(array).all():
            raise ValueError(f"resonator weights: expected a flat list of finite numbers, got {weights!r}")
        self.weights = array
        if not isinstance(success_weight, (int, float)) or not np.isfinite(success_weight):
            raise ValueError(f"success weight: expected a finite number, got {success_weight!r}")
        self.success_weight = float(success_weight)

    @property
    def state_size(self) -> int:
        return self.weights.size

    def make_resonator(self, input: Sequence[float], success: float) -> np.ndarray:
        return self.make_resonators(np.asarray([input], dtype=np.float32), np.asarray([success]))[0]

    def make_resonators(self, states: np.ndarray, successes: np.ndarray) -> np.ndarray:
        """All rows in one array operation: the per-step path of a population."""
        states = np.asarray(states, dtype=np.float32)
        successes = np.asarray(successes, dtype=np.float32)
        if states.ndim != 2 or states.shape[1] != self.state_size:
            raise ValueError(f"states of shape {states.shape}: expected (n, {self.state_size}), "
                             f"one weight per state dimension")
        if successes.shape != (states.shape[0],):
            raise ValueError(f"successes of shape {successes.shape}: expected ({states.shape[0]},), one per state")
        return np.hstack([states * self.weights, successes[:, None] * self.success_weight])
