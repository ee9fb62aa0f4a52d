"""``InProcessMemory``: a memory held in this process only, kept nowhere (no database)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from resonant_vectors.memory.replica import EngramReplica
from resonant_vectors.memory.seam import EngramColumns, Memory, NeighbourTable


class InProcessMemory(Memory):
    """A memory held in this process only (FAISS, the replica's index) and kept nowhere.

    Why: the decision rule, credit and the population loop can be run and tested in seconds without
    a database, and the instinct experiment's newcomers "without a memory" fly on an empty one
    instead of a collection made and dropped for them. Training runs keep their memory in Milvus.

    :param dimension: the resonators' length.
    :param nprobe: IVF lists searched per query (``SEARCH_NPROBE``).
    :param exact: search exactly at any size (``INDEX_TYPE = "FLAT"``).
    :param spread_weights: rescale by the spread learned from the memory (``replica.EngramReplica``).
    """

    def __init__(self, dimension: int, nprobe: int = 16, exact: bool = False,
                 spread_weights: Optional[np.ndarray] = None) -> None:
        self.dimension = dimension
        self.replica = EngramReplica(dimension, nprobe, exact, spread_weights)

    @classmethod
    def for_settings(cls, settings) -> "InProcessMemory":
        """An empty in-process memory searched as the settings say (probes, exactness, spread scaling)."""
        return cls(settings.resonator_size, settings.search_nprobe, settings.index_type == "FLAT",
                   settings.spread_weights)

    def nearest(self, queries: np.ndarray, limit: int, action: Optional[int] = None) -> NeighbourTable:
        return self.replica.nearest(queries, limit, action)

    def add(self, engrams: EngramColumns, replace: bool = False) -> int:
        self.replica.add(engrams)  # an id held already is updated in place either way
        return len(engrams)

    def count(self) -> int:
        return len(self.replica)

    def known(self) -> Optional[int]:
        return len(self.replica)

    def engrams(self) -> EngramColumns:
        return self.replica.rows()

    def set_outcomes(self, rows: np.ndarray, outcomes: np.ndarray) -> None:
        self.replica.set_outcomes(rows, outcomes)
