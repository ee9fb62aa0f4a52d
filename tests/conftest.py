"""Fixtures: one real embedded Milvus server for the tests that test Milvus (started once, in a
fresh temporary folder, only when such a test runs), and in-process memories for the others."""
from __future__ import annotations

import itertools
import os
from typing import Iterator

import numpy as np
import pytest

import settings as settings_module
from resonant_vectors.agent.brain import EngramBrain
from resonant_vectors.agent.policy import Policy
from resonant_vectors.config import Settings
from resonant_vectors.environments.profiles import make_population
from resonant_vectors.loop.population import PopulationLoop, remembering
from resonant_vectors.memory.in_process import InProcessMemory
from resonant_vectors.server.supervision import embedded_server_kept

_names = itertools.count()
# Files whose tests start Milvus themselves (a `python main.py` subprocess, a server of their own).
STARTS_MILVUS = {"test_commands.py", "test_experiments.py", "test_faults.py", "test_interrupt.py",
                 "test_milvus_server.py", "test_safe_start.py", "test_species.py",
                 "test_species_machines.py"}


# The module-scoped fixtures that train a memory or start a server: each costs seconds to build.
MODULE_MEMORIES = {"short_memory", "empty_memory", "cart_memory", "kept_run", "unchanged", "five_engram_store",
                   "secured_memory", "faulty_data_dir"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items) -> None:
    """Mark every test that runs a real Milvus (``milvus``): those that use the test server, and those
    of the files that start one. The tests of one file that share a module's memory go to one process
    as a group (``--dist loadgroup``), so that memory is built once, not once in each process. Those
    that start servers of their own, the longest, are handed out first, so that the quick in-process
    tests fill the processes' last minutes instead of waiting behind them."""
    for item in items:
        if "milvus_data_dir" in item.fixturenames or item.path.name in STARTS_MILVUS:
            item.add_marker(pytest.mark.milvus)
        if MODULE_MEMORIES & set(item.fixturenames):
            item.add_marker(pytest.mark.xdist_group(item.path.name))
    items.sort(key=lambda item: (item.path.name not in STARTS_MILVUS, item.get_closest_marker("milvus") is None))


@pytest.fixture(scope="session")
def milvus_data_dir(tmp_path_factory) -> Iterator[str]:
    """The test server's folder, one for the whole run: pytest-xdist's processes share it as the
    programs of one machine share the embedded server. Why one: an idle Milvus costs about a tenth of
    a core and a start about ten seconds of both cores, so a server per process made the suite
    wait on servers. Each process holds a share of it throughout, so that it stays up between tests
    however long the tests in between run without it."""
    run_folder = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each process's folder is popen-gw<k> in the run's folder
        run_folder = run_folder.parent
    data_dir = run_folder / "milvus"
    data_dir.mkdir(exist_ok=True)
    with embedded_server_kept(data_dir):
        yield str(data_dir)


@pytest.fixture
def settings(milvus_data_dir) -> Settings:
    """settings.py's values, on the test server, without a window, seeded."""
    return Settings.from_module(milvus_data_dir=milvus_data_dir, milvus_uri="", display=False, seed=0)


@pytest.fixture
def local_settings(tmp_path) -> Settings:
    """settings.py's values without a window, seeded, for tests that start no server."""
    return Settings.from_module(milvus_data_dir=str(tmp_path / "no_server"), milvus_uri="", display=False, seed=0)


@pytest.fixture
def collection_name(request) -> str:
    """A collection name of its own for each test (the test server is every process's: each process's
    names carry its own xdist number)."""
    process = os.environ.get("PYTEST_XDIST_WORKER", "")
    test = request.node.name[:40].replace("[", "_").replace("]", "_").replace("-", "_")
    return f"t{process}_{test}_{next(_names)}"  # ends in a number: never a species' "_species" or "_book"


@pytest.fixture
def main_on_test_server(monkeypatch, milvus_data_dir) -> None:
    """``main.main(...)`` called in this process uses the test server (its folder, its credential),
    as ``python main.py`` uses the embedded one: through settings.py's MILVUS_DATA_DIR."""
    monkeypatch.setattr(settings_module, "MILVUS_DATA_DIR", milvus_data_dir)
    monkeypatch.setattr(settings_module, "MILVUS_URI", "")


def in_process_loop(settings: Settings, memory: InProcessMemory | None = None, learn: bool = True,
                    callbacks=(), render_mode=None) -> tuple:
    """The population loop as the Trainer wires it, on an in-process memory (a real FAISS index):
    (loop, memory)."""
    memory = memory or InProcessMemory.for_settings(settings)
    brain = EngramBrain.from_settings(settings, memory, np.random.default_rng(settings.seed))
    envs = make_population(settings, settings.population_size, render_mode)
    remember = remembering(memory, brain.resonator_factory, settings) if learn else None
    loop = PopulationLoop(envs, Policy(brain, settings), settings, settings.seed, remember=remember,
                          callbacks=callbacks)
    return loop, memory
