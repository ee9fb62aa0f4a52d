"""The seed's ``IResonatorFactory`` (it lives in ``resonant_vectors.agent.resonators``)."""
from resonant_vectors.agent.resonators import IResonatorFactory

__all__ = ["IResonatorFactory"]
