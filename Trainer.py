"""The seed's ``Trainer``: ``from Trainer import Trainer`` (it lives in ``resonant_vectors.loop.trainer``)."""
from resonant_vectors.loop.trainer import Trainer

__all__ = ["Trainer"]
