"""Ctrl-C or SIGTERM during training keeps every finished trial: engrams stored, rows saved."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resonant_vectors.loop.interrupts import TrainingInterrupted
from resonant_vectors.loop.trainer import Trainer
from resonant_vectors.memory.store import EngramStore
from resonant_vectors.runs.folder import RunFolder
from resonant_vectors.server.supervision import embedded_server_token, embedded_server_uri

PROJECT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl_c", "sigterm"])
def test_an_interrupted_run_keeps_its_finished_trials(settings, collection_name, tmp_path, stop_signal):
    uri = embedded_server_uri(settings.milvus_data_dir)
    trainer = subprocess.Popen(
        [sys.executable, "main.py", "--instance", collection_name, "--trials", "500", "--no-display", "--quiet",
         "--milvus-uri", uri, "--runs-dir", str(tmp_path)],
        cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, MILVUS_TOKEN=embedded_server_token(settings.milvus_data_dir)))
    folder = RunFolder(tmp_path / collection_name)
    deadline = time.monotonic() + 120
    while not ((folder.path / "trials.csv").exists() and len(folder.trials()) >= 3):
        assert trainer.poll() is None and time.monotonic() < deadline, trainer.stderr.read()
        time.sleep(0.2)
    trainer.send_signal(stop_signal)
    _, errors = trainer.communicate(timeout=60)
    assert trainer.returncode == 130, errors
    trials = folder.trials()
    assert "interrupted (SIG" in errors and f"({len(trials)} in all in {folder.path}/: trials.csv)" in errors
    assert f"--keep resumes: python main.py --instance {collection_name} --keep --runs-dir {tmp_path}" in errors
    assert 3 <= len(trials) < 500
    assert EngramStore(collection_name, settings=settings).get_count() == trials["length"].sum()
    assert (folder.path / "summary.json").exists()


def test_ctrl_c_in_a_notebook_stops_between_steps_with_the_finished_trials_stored(settings, collection_name):
    trainer = Trainer(collection_name, settings=settings.replace(population_size=4), quiet=True)
    handler_before = signal.getsignal(signal.SIGINT)  # pytest's, or SIG_IGN where the suite was started in the background
    pressed = []

    def interrupt_after_five(record):  # one Ctrl-C: two trials may finish in one step (a second one stops at once)
        if len(trainer.metrics) >= 5 and not pressed:
            pressed.append(True)
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted, match="SIGINT"):
        trainer.train(100, callback=interrupt_after_five)
    trainer.close()
    assert 5 <= len(trainer.metrics) < 100
    assert trainer.store.get_count() == sum(record.length for record in trainer.metrics) == trainer.engram_count
    assert signal.getsignal(signal.SIGINT) is handler_before  # the handler it found is given back
