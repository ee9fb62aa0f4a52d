"""The seed's ``WeightedResonatorFactory`` (it lives in ``resonant_vectors.agent.resonators``)."""
from resonant_vectors.agent.resonators import WeightedResonatorFactory

__all__ = ["WeightedResonatorFactory"]
