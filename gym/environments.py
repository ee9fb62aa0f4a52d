"""Every environment's scales and trial rules (they live in ``resonant_vectors.environments.profiles``)."""
from resonant_vectors.environments.profiles import make_env, make_population, profile

__all__ = ["make_env", "make_population", "profile"]
