"""Resonators: how a situation becomes the vector that searches the memory.

``IResonatorFactory`` is the seed's interface; ``WeightedResonatorFactory`` its implementation
(resonator = weights ⊙ normalised state, with the success appended)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np


class IResonatorFactory(ABC):
    """Turns (normalised state, success) into the vector that resonates with stored engrams.

    The success value is part of the vector, so a query made "aiming at" a success level finds
    engrams left by trials of about that success: good trials leave traces that good intentions
    resonate with.

    A factory implements ``make_resonator`` (the seed's one method); ``make_resonators``, the
    batched form this project adds, is built on it unless the factory overrides it.
    """

    @abstractmethod
    def make_resonator(self, input: Sequence[float], success: float) -> np.ndarray:
        """The resonator of one situation, as the seed defined the interface.

        :param input: one normalised state.
        :param success: the success value the resonator carries, in [-1, 1].
        :return: float32 array of ``len(input) + 1`` numbers.
        """

    def make_resonators(self, states: np.ndarray, successes: np.ndarray) -> np.ndarray:
        """Resonators for many situations at once (a population's step), one ``make_resonator`` per
        row; a factory may override it with a vectorised version for speed.

        :param states: normalised states, one row each (shape ``(n, state_size)``).
        :param successes: the success value of each row (shape ``(n,)``), in [-1, 1].
        :return: float32 array of shape ``(n, state_size + 1)``.
        """
        rows = [self.make_resonator(state, success) for state, success in zip(states, successes)]
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), np.shape(states)[-1] + 1)


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
