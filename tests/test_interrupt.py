"""Ctrl-C or SIGTERM during training keeps every finished trial: engrams stored, rows saved."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engram import EngramStore
from milvus_server import embedded_server_uri
from runs import RunFolder

PROJECT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl_c", "sigterm"])
def test_an_interrupted_run_keeps_its_finished_trials(settings, collection_name, tmp_path, stop_signal):
    uri = embedded_server_uri(settings.milvus_data_dir)
    trainer = subprocess.Popen(
        [sys.executable, "main.py", "--instance", collection_name, "--trials", "500", "--no-display", "--quiet",
         "--milvus-uri", uri, "--runs-dir", str(tmp_path)],
        cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    folder = RunFolder(tmp_path / collection_name)
    deadline = time.monotonic() + 120
    while not ((folder.path / "trials.csv").exists() and len(folder.trials()) >= 3):
        assert trainer.poll() is None and time.monotonic() < deadline, trainer.stderr.read()
        time.sleep(0.2)
    trainer.send_signal(stop_signal)
    _, errors = trainer.communicate(timeout=60)
    assert trainer.returncode == 130, errors
    assert "interrupted" in errors
    trials = folder.trials()
    assert 3 <= len(trials) < 500
    assert EngramStore(collection_name, settings=settings).get_count() == trials["length"].sum()
    assert (folder.path / "summary.json").exists()
