"""``EngramBrain``: acting by resonating with the stored experience of similar situations."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Protocol, Sequence, Union

import numpy as np

from resonant_vectors.agent.resonators import IResonatorFactory, WeightedResonatorFactory
from resonant_vectors.config import NEIGHBOUR_WEIGHTINGS, Settings
from resonant_vectors.memory.seam import Engram, EngramColumns, EngramError, Memory, NeighbourTable, new_ids

DISTANCE_WEIGHT_OFFSET = 0.001  # keeps an engram at distance 0 (the same situation) from an infinite weight


class HoldsMemory(Protocol):
    """What holds a memory without being one: the seed's ``EngramStore`` (its ``memory``)."""

    memory: Memory
    dimension: int


@dataclass(frozen=True)
class Consultation:
    """What the memory said about a batch of situations.

    :param scores: one row of action scores per situation, noise included.
    :param neighbour_distance: the mean L2 distance of each situation's neighbours (NaN if none).
    :param best_value: each situation's best noise-free score among the actions that have
        neighbours (NaN where none has): what the memory expects from there, which an N-step
        outcome adds to its rewards.
    """

    scores: np.ndarray
    neighbour_distance: np.ndarray
    best_value: np.ndarray


class EngramBrain:
    """A brain whose only knowledge is the memory it resonates with.

    **Decision.** The observation becomes a resonator (``resonator_factory``), the store returns its
    ``MIN_RESULTS`` nearest engrams, and each action scores the mean outcome of the neighbours that
    took it (``UNTRIED_ACTION_SCORE``, 0 by default, for an action no neighbour took); with
    ``NEIGHBOUR_WEIGHTING = "distance"`` the mean is weighted by 1 / (distance + 0.001). With no
    neighbours at all (an empty memory) the scores are uniform random. Gaussian noise of std
    ``NOISE`` is added to every score; the action is the best score, or, with
    ``PROBABILISTIC_CHOICE``, drawn in proportion to ``score - min``; ``choose`` can also explore
    ε-greedily (a uniformly random action with probability ε).

    **One memory per action** (``PER_ACTION_MEMORY``). Instead of one shared search whose
    neighbours are split by action, each action is scored from the ``MIN_RESULTS`` nearest engrams
    *that took it* (a search per action, as in episodic control): an action is judged on its own
    experience of this situation, however rarely it was taken nearby.

    **Feedback.** ``apply_feedback`` turns a step into an engram whose vector carries the success of
    the trial it came from and adds it to the store, as the seed's brain did; the ``Trainer`` stores
    a whole trial's engrams in one request instead.

    **Batching.** ``consult`` takes many situations and makes one search request for all of them:
    that is how a population of landers decides each step.

    **The memory.** The brain reads and writes only through a ``Memory`` (``memory``): one given
    directly (e.g. ``InProcessMemory``, which needs no database), or the seed's ``EngramStore``, whose
    ``memory`` it is. It never knows whether Milvus or an in-process index answered, and imports
    neither: deciding needs no database client.

    **The seed's interface.** ``EngramBrain(9, 4, store, factory)``, ``engram_store``,
    ``decide``, ``apply_feedback`` mean what they meant in the seed; ``store`` is another name for
    ``engram_store``, and the keyword arguments, ``consult`` and ``choose`` are this project's.

    :param resonator_size: length of a resonator: a normalised state and the success value
        (``STATE_VECTOR_SIZE``, 9 for LunarLander); the store's vectors have this length.
    :param output_size: number of actions (4 for LunarLander).
    :param engram_store: the memory to consult and to add feedback to: a ``Memory``, or anything that
        holds one as ``memory`` (the seed's ``EngramStore``).
    :param resonator_factory: makes resonators of ``resonator_size`` numbers.
    :param noise: std of the Gaussian noise added to scores (``NOISE``).
    :param neighbours: how many engrams to consult per decision (``MIN_RESULTS``).
    :param probabilistic_choice: sample instead of argmax (``PROBABILISTIC_CHOICE``).
    :param rng: the one random generator for noise and random choices (seed it for reproducibility).
    :param weighting: "uniform" or "distance" (``NEIGHBOUR_WEIGHTING``).
    :param per_action: score each action from its own nearest engrams (``PER_ACTION_MEMORY``).
    :param untried_score: the score of an action without neighbours (``UNTRIED_ACTION_SCORE``).
    """

    def __init__(self, resonator_size: int, output_size: int, engram_store: Union[Memory, "HoldsMemory"],
                 resonator_factory: IResonatorFactory, noise: float = 0.1, neighbours: int = 300,
                 probabilistic_choice: bool = False, rng: Optional[np.random.Generator] = None,
                 weighting: str = "uniform", per_action: bool = False, untried_score: float = 0.0) -> None:
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
        self.per_action = per_action
        self.untried_score = untried_score
        self.rng = rng or np.random.default_rng()

    @property
    def store(self) -> Union[Memory, "HoldsMemory"]:
        """Another name for ``engram_store``."""
        return self.engram_store

    @store.setter
    def store(self, engram_store: Union[Memory, "HoldsMemory"]) -> None:
        self.engram_store = engram_store

    @property
    def memory(self) -> Memory:
        """What the brain reads and writes through: the memory it was given, or the store's (read each
        time: a store's ``clear()`` gives it a new one)."""
        return self.engram_store if isinstance(self.engram_store, Memory) else self.engram_store.memory

    @classmethod
    def from_settings(cls, settings: Settings, engram_store: Union[Memory, "HoldsMemory"],
                      rng: Optional[np.random.Generator] = None) -> "EngramBrain":
        """The brain ``settings.py`` describes: a ``WeightedResonatorFactory`` (with
        ``SUCCESS_COMPONENT_WEIGHT``), ``NOISE``, ``MIN_RESULTS`` neighbours, ``PROBABILISTIC_CHOICE``,
        ``NEIGHBOUR_WEIGHTING``, ``PER_ACTION_MEMORY`` and ``UNTRIED_ACTION_SCORE``."""
        return cls(settings.resonator_size, settings.action_count, engram_store,
                   WeightedResonatorFactory(settings.state_weights, settings.success_component_weight),
                   noise=settings.noise,
                   neighbours=settings.min_results, probabilistic_choice=settings.probabilistic_choice, rng=rng,
                   weighting=settings.neighbour_weighting, per_action=settings.per_action_memory,
                   untried_score=settings.untried_action_score)

    def decide(self, input: Sequence[float], success: float) -> np.ndarray:
        """One score per action for one normalised state, aiming at ``success``."""
        return self.consult(np.asarray([input], dtype=np.float32), success).scores[0]

    def consult(self, inputs: np.ndarray, success: float, noise: Optional[np.ndarray] = None) -> Consultation:
        """Scores for many normalised states (one row each): one search request (a search per
        action with ``per_action``) for all of them.

        :param noise: the noise std for each row (a noise schedule's value for each lander's
            trial); ``self.noise`` for all rows by default.
        """
        inputs = self._checked_inputs(inputs)
        noise = np.full(len(inputs), self.noise) if noise is None else np.asarray(noise, dtype=np.float64)
        resonators = self.resonator_factory.make_resonators(inputs, np.full(len(inputs), success))
        tables = self._neighbour_tables(resonators)
        values, support = self._action_values(tables)
        scores = np.where(support > 0, values, self.untried_score)
        empty = ~(support > 0).any(axis=1)
        scores[empty] = self.rng.random((int(empty.sum()), self.output_size))
        best_value = np.where(empty, np.nan, np.where(support > 0, values, -np.inf).max(axis=1))
        return Consultation(scores + self.rng.normal(0.0, 1.0, scores.shape) * noise[:, None],
                            _mean_distance(tables), best_value)

    def choose(self, scores: np.ndarray, epsilon: Optional[np.ndarray] = None) -> np.ndarray:
        """An action per row of scores: argmax, or sampled in proportion to ``score - min``; with
        ``epsilon`` (one per row), a uniformly random action instead with that probability."""
        scores = np.atleast_2d(scores)
        if not self.probabilistic_choice:
            actions = scores.argmax(axis=1)
        else:
            actions = np.array([self._sample(row) for row in scores])
        if epsilon is None or not np.any(epsilon):
            return actions
        explore = self.rng.random(len(actions)) < epsilon
        return np.where(explore, self.rng.integers(self.output_size, size=len(actions)), actions)

    def apply_feedback(self, input: Sequence[float], action: int, outcome: float, success: float,
                       trial: int = 0) -> Engram:
        """Add the engram a step leaves to the store and return it: its resonator at the trial's
        ``success``, its action and outcome."""
        vector = np.asarray(self.resonator_factory.make_resonator(self._checked_inputs([input])[0], success),
                            dtype=np.float32)
        if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)) \
                or not 0 <= action < self.output_size:
            raise EngramError(f"action {action!r}: expected a whole number from 0 to {self.output_size - 1}")
        if not np.isfinite(outcome):
            raise EngramError(f"outcome {outcome!r}: expected a finite number")
        self.memory.add(EngramColumns.of(id=new_ids(1), vector=[vector], action=[action], outcome=[outcome],
                                         trial=[trial], reward=[0.0], next_vector=[np.zeros_like(vector)],
                                         ended=[True]))
        return Engram(tuple(vector.tolist()), action, outcome, trial)

    def _neighbour_tables(self, resonators: np.ndarray) -> List[NeighbourTable]:
        """One table of neighbours for all situations, or one per action with ``per_action``."""
        memory = self.memory
        if not self.per_action:
            return [memory.nearest(resonators, self.neighbours)]
        return [memory.nearest(resonators, self.neighbours, action) for action in range(self.output_size)]

    def _action_values(self, tables: List[NeighbourTable]) -> tuple:
        """Each situation's (weighted) mean outcome per action, and the weight behind each mean
        (0: no neighbour took that action)."""
        if self.per_action:
            weights = [neighbour_weights(table.distances, self.weighting) * table.found for table in tables]
            support = np.stack([w.sum(axis=1) for w in weights], axis=1)
            totals = np.stack([(w * table.outcomes).sum(axis=1) for w, table in zip(weights, tables)], axis=1)
        else:
            table = tables[0]
            weights = neighbour_weights(table.distances, self.weighting) * table.found
            took = table.actions[:, :, None] == np.arange(self.output_size)
            support = (weights[:, :, None] * took).sum(axis=1)
            totals = ((weights * table.outcomes)[:, :, None] * took).sum(axis=1)
        return np.divide(totals, support, out=np.zeros_like(totals), where=support > 0), support

    def _sample(self, row: np.ndarray) -> int:
        weights = row - row.min()
        if weights.sum() <= 0:
            return int(self.rng.integers(self.output_size))
        return int(self.rng.choice(self.output_size, p=weights / weights.sum()))

    def _checked_inputs(self, inputs) -> np.ndarray:
        array = np.asarray(inputs, dtype=np.float32)
        if array.ndim != 2 or array.shape[1] != self.input_size:
            raise ValueError(f"inputs of shape {array.shape}: expected rows of {self.input_size} numbers "
                             "(a normalised state of the environment)")
        return array


def _mean_distance(tables: List[NeighbourTable]) -> np.ndarray:
    """Each situation's mean distance to its neighbours (NaN where it has none)."""
    found = sum(table.found.sum(axis=1) for table in tables)
    total = sum((table.distances * table.found).sum(axis=1) for table in tables)
    return np.divide(total, found, out=np.full(len(found), np.nan), where=found > 0)


def neighbour_weights(squared_distances: np.ndarray, weighting: str) -> np.ndarray:
    """Uniform, or 1 / (distance + 0.001) with ``"distance"``: nearer experience speaks louder
    (Milvus's L2 is the squared distance, so its root is taken first)."""
    if weighting == "uniform":
        return np.ones_like(squared_distances, dtype=np.float64)
    return 1.0 / (np.sqrt(np.maximum(squared_distances, 0.0)) + DISTANCE_WEIGHT_OFFSET)
