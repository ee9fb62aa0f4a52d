"""``IResonatorFactory``: how a situation becomes a resonator vector to search the memory with."""
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
