"""The seed's ``EngramBrain``: ``from EngramBrain import EngramBrain`` (it lives in ``resonant_vectors.agent.brain``)."""
from resonant_vectors.agent.brain import EngramBrain

__all__ = ["EngramBrain"]
