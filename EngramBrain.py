"""``EngramBrain``: acting by resonating with the stored experience of similar situations."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from config import NEIGHBOUR_WEIGHTINGS, Settings
from engram import Engram, EngramStore, Neighbours
from IResonatorFactory import IResonatorFactory
from WeightedResonatorFactory import WeightedResonatorFactory

DISTANCE_WEIGHT_OFFSET = 0.001  # keeps an engram at distance 0 (the same situation) from an infinite weight


@dataclass(frozen=True)
class Consultation:
    """What the memory said about a batch of situations.

    :param scores: one row of action scores per situation, noise included.
    :param neighbour_distance: the mean L2 distance of each situation's neighbours (NaN if none).
    :param best_value: each situation's best noise-free score (0 with no neighbours): what the
        memory expects from there, which an N-step outcome adds to its rewards.
    """

    scores: np.ndarray
    neighbour_distance: np.ndarray
    best_value: np.ndarray


class EngramBrain:
    """A brain whose only knowledge is the memory it resonates with.

    **Decision.** The observation becomes a resonator (``resonator_factory``), the store returns its
    ``MIN_RESULTS`` nearest engrams, and each action scores the mean outcome of the neighbours that
    took it (0 for an action no neighbour took); with ``NEIGHBOUR_WEIGHTING = "distance"`` the mean
    is weighted by 1 / (distance + 0.001). With no neighbours at all (an empty memory) the
    scores are uniform random. Gaussian noise of std ``NOISE`` is added to every score; the action is
    the best score, or, with ``PROBABILISTIC_CHOICE``, drawn in proportion to ``score - min``.

    **Feedback.** ``apply_feedback`` turns a step into an engram whose vector carries the success of
    the trial it came from and adds it to the store, as the seed's brain did; the ``Trainer`` stores
    a whole trial's engrams in one request instead.

    **Batching.** ``consult`` takes many situations and makes one search request for all of them:
    that is how a population of landers decides each step.

    **The seed's interface.** ``EngramBrain(9, 4, store, factory)``, ``engram_store``,
    ``decide``, ``apply_feedback`` mean what they meant in the seed; ``store`` is another name for
    ``engram_store``, and the keyword arguments, ``consult`` and ``choose`` are this project's.

    :param resonator_size: length of a resonator: a normalised state and the success value
        (``STATE_VECTOR_SIZE``, 9 for LunarLander); the store's vectors have this length.
    :param output_size: number of actions (4 for LunarLander).
    :param engram_store: the memory to consult and to add feedback to.
    :param resonator_factory: makes resonators of ``resonator_size`` numbers.
    :param noise: std of the Gaussian noise added to scores (``NOISE``).
    :param neighbours: how many engrams to consult per decision (``MIN_RESULTS``).
    :param probabilistic_choice: sample instead of argmax (``PROBABILISTIC_CHOICE``).
    :param rng: the one random generator for noise and random choices (seed it for reproducibility).
    :param weighting: "uniform" or "distance" (``NEIGHBOUR_WEIGHTING``).
    """

    def __init__(self, resonator_size: int, output_size: int, engram_store: EngramStore,
                 resonator_factory: IResonatorFactory, noise: float = 0.1, neighbours: int = 300,
                 probabilistic_choice: bool = False, rng: Optional[np.random.Generator] = None,
                 weighting: str = "uniform") -> None:
        if weighting not in NEIGHBOUR_WEIGHTINGS:
            raise ValueError(f"weighting: expected one of {NEIGHBOUR_WEIGHTINGS}, got {weighting!r}")
        if engram_store.dimension != resonator_size:
            raise ValueError(f"resonator_size {resonator_size!r}: expected the length of the store's vectors, "
                             f"{engram_store.dimension} (STATE_VECTOR_SIZE: the state and the success value)")
        self.resonator_size = resonator_size
        self.input_size = resonator_size - 1  # a normalised state: the resonator without its success value
        self.output_size = output_size
        self.engram_store = engram_store
        self.resonator_factory = resonator_factory
        self.noise = noise
        self.neighbours = neighbours
        self.probabilistic_choice = probabilistic_choice
        self.weighting = weighting
        self.rng = rng or np.random.default_rng()

    @property
    def store(self) -> EngramStore:
        """The memory: another name for ``engram_store``."""
        return self.engram_store

    @classmethod
    def from_settings(cls, settings: Settings, engram_store: EngramStore,
                      rng: Optional[np.random.Generator] = None) -> "EngramBrain":
        """The brain ``settings.py`` describes: a ``WeightedResonatorFactory`` (with
        ``SUCCESS_COMPONENT_WEIGHT``), ``NOISE``,
        ``MIN_RESULTS`` neighbours, ``PROBABILISTIC_CHOICE`` and ``NEIGHBOUR_WEIGHTING``."""
        return cls(settings.state_vector_size, settings.output_vector_size, engram_store,
                   WeightedResonatorFactory(settings.vector_component_weights, settings.success_component_weight),
                   noise=settings.noise,
                   neighbours=settings.min_results, probabilistic_choice=settings.probabilistic_choice, rng=rng,
                   weighting=settings.neighbour_weighting)

    def decide(self, input: Sequence[float], success: float) -> np.ndarray:
        """One score per action for one normalised state, aiming at ``success``."""
        return self.consult(np.asarray([input], dtype=np.float32), success).scores[0]

    def consult(self, inputs: np.ndarray, success: float, noise: Optional[np.ndarray] = None) -> Consultation:
        """Scores for many normalised states (one row each) with one search request.

        :param noise: the noise std for each row (a noise schedule's value for each lander's
            trial); ``self.noise`` for all rows by default.
        """
        inputs = self._checked_inputs(inputs)
        noise = np.full(len(inputs), self.noise) if noise is None else np.asarray(noise, dtype=np.float64)
        resonators = self.resonator_factory.make_resonators(inputs, np.full(len(inputs), success))
        found = self.engram_store.nearest_many(resonators, self.neighbours)
        scores = np.stack([self._scores(neighbours) for neighbours in found])
        distance = np.array([n.distances.mean() if len(n) else np.nan for n in found])
        best_value = np.where([len(n) > 0 for n in found], scores.max(axis=1), 0.0)
        return Consultation(scores + self.rng.normal(0.0, 1.0, scores.shape) * noise[:, None], distance, best_value)

    def choose(self, scores: np.ndarray) -> np.ndarray:
        """An action per row of scores: argmax, or sampled in proportion to ``score - min``."""
        scores = np.atleast_2d(scores)
        if not self.probabilistic_choice:
            return scores.argmax(axis=1)
        return np.array([self._sample(row) for row in scores])

    def apply_feedback(self, input: Sequence[float], action: int, outcome: float, success: float,
                       trial: int = 0) -> Engram:
        """Add the engram a step leaves to the store and return it: its resonator at the trial's
        ``success``, its action and outcome."""
        vector = self.resonator_factory.make_resonator(self._checked_inputs([input])[0], success)
        engram = Engram(tuple(np.asarray(vector, dtype=np.float32).tolist()), action, outcome, trial)
        self.engram_store.insert(engram)
        return engram

    def _scores(self, neighbours: Neighbours) -> np.ndarray:
        if len(neighbours) == 0:
            return self.rng.random(self.output_size)
        weights = self._neighbour_weights(neighbours.distances)
        totals = np.bincount(neighbours.actions, weights=weights * neighbours.outcomes, minlength=self.output_size)
        counts = np.bincount(neighbours.actions, weights=weights, minlength=self.output_size)
        return np.divide(totals, counts, out=np.zeros(self.output_size), where=counts > 0)

    def _neighbour_weights(self, squared_distances: np.ndarray) -> np.ndarray:
        """Uniform, or 1 / (distance + 0.001): nearer experience speaks louder (Milvus's L2 is squared)."""
        if self.weighting == "uniform":
            return np.ones(len(squared_distances))
        return 1.0 / (np.sqrt(np.maximum(squared_distances, 0.0)) + DISTANCE_WEIGHT_OFFSET)

    def _sample(self, row: np.ndarray) -> int:
        weights = row - row.min()
        if weights.sum() <= 0:
            return int(self.rng.integers(self.output_size))
        return int(self.rng.choice(self.output_size, p=weights / weights.sum()))

    def _checked_inputs(self, inputs) -> np.ndarray:
        array = np.asarray(inputs, dtype=np.float32)
        if array.ndim != 2 or array.shape[1] != self.input_size:
            raise ValueError(f"inputs of shape {array.shape}: expected rows of {self.input_size} numbers "
                             "(a normalised LunarLander state)")
        return array
