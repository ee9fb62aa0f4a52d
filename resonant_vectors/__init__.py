"""Resonant Vectors: memory-based reinforcement learning, where an agent acts by resonating with
stored experiences of similar situations (engrams) kept in a real Milvus.

    from resonant_vectors import Trainer, Settings, RunFolder

The names below are loaded when first used (PEP 562), so ``import resonant_vectors`` stays cheap
and imports neither pymilvus nor gymnasium. The layers, from the top: ``cli``, ``experiments``,
``species``, ``loop``, ``runs``, ``agent``, ``memory``, ``server``, then ``config`` and
``environments`` (docs/api.md).
"""
from importlib import import_module

__version__ = "0.5.0"

_PUBLIC = {
    "Trainer": "resonant_vectors.loop.trainer",
    "Settings": "resonant_vectors.config",
    "SettingsError": "resonant_vectors.config",
    "RunFolder": "resonant_vectors.runs.folder",
    "compare": "resonant_vectors.runs.folder",
    "Comparison": "resonant_vectors.runs.folder",
    "EngramBrain": "resonant_vectors.agent.brain",
    "IResonatorFactory": "resonant_vectors.agent.resonators",
    "WeightedResonatorFactory": "resonant_vectors.agent.resonators",
    "Engram": "resonant_vectors.memory.seam",
    "Memory": "resonant_vectors.memory.seam",
    "EngramColumns": "resonant_vectors.memory.seam",
    "InProcessMemory": "resonant_vectors.memory.in_process",
    "EngramStore": "resonant_vectors.memory.store",
    "TrialCallback": "resonant_vectors.loop.population",
    "TrialRecord": "resonant_vectors.runs.records",
    "evaluate": "resonant_vectors.loop.evaluation",
    "ResonantVectorsError": "resonant_vectors.errors",
    "ResonantVectorsWarning": "resonant_vectors.errors",
    "EmptyMemoryWarning": "resonant_vectors.errors",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'resonant_vectors' has no attribute {name!r}")
    value = getattr(import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
