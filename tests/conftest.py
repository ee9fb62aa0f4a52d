"""One real embedded Milvus server for the whole test session, in a fresh temporary folder."""
from __future__ import annotations

import itertools

import pytest

from config import Settings
from milvus_server import embedded_server_uri

_names = itertools.count()


@pytest.fixture(scope="session")
def milvus_data_dir(tmp_path_factory) -> str:
    data_dir = str(tmp_path_factory.mktemp("milvus"))
    embedded_server_uri(data_dir)  # start it once; every store below reuses it
    return data_dir


@pytest.fixture
def settings(milvus_data_dir) -> Settings:
    """settings.py's values, on the test server, without a window, seeded."""
    return Settings.from_module(milvus_data_dir=milvus_data_dir, milvus_uri="", display=False, seed=0)


@pytest.fixture
def collection_name(request) -> str:
    """A collection name of its own for each test."""
    return f"t{next(_names)}_{request.node.name[:40]}".replace("[", "_").replace("]", "_").replace("-", "_")


@pytest.fixture
def main_on_test_server(monkeypatch, milvus_data_dir) -> None:
    """``main.main(...)`` called in this process uses the test server (its folder, its credential),
    as ``python main.py`` uses the embedded one: through settings.py's MILVUS_DATA_DIR."""
    import settings as settings_module

    monkeypatch.setattr(settings_module, "MILVUS_DATA_DIR", milvus_data_dir)
    monkeypatch.setattr(settings_module, "MILVUS_URI", "")
