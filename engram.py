"""The seed's ``Engram`` and ``EngramStore``: ``from engram import Engram, EngramStore`` (they live in
``resonant_vectors.memory``)."""
from resonant_vectors.memory.seam import Engram
from resonant_vectors.memory.store import EngramStore

__all__ = ["Engram", "EngramStore"]
