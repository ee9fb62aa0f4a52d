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
    """

    @abstractmethod
    def make_resonators(self, states: np.ndarray, successes: np.ndarray) -> np.ndarray:
        """Resonators for many situations at once.

        :param states: normalised states, one row each (shape ``(n, state_size)``).
        :param successes: the success value of each row (shape ``(n,)``), in [-1, 1].
        :return: float32 array of shape ``(n, state_size + 1)``.
        """

    def make_resonator(self, state: Sequence[float], success: float) -> np.ndarray:
        """The resonator of one situation."""
        return self.make_resonators(np.asarray([state], dtype=np.float32), np.asarray([success]))[0]
