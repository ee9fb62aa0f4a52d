"""Training can be watched live in TensorBoard: with TENSORBOARD on, each trial's figures are written as
events in the run folder (read back here with TensorBoard's own reader), and they move with the run."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from resonant_vectors.cli import main
from resonant_vectors.environments.profiles import END_CAUSES
from resonant_vectors.errors import ResonantVectorsWarning
from resonant_vectors.loop import tensorboard
from resonant_vectors.loop.trainer import Trainer
from resonant_vectors.memory.milvus.collection import connect
from resonant_vectors.runs.folder import RunFolder

PROJECT = Path(__file__).resolve().parent.parent
# trials.csv's column behind each per-trial scalar
SCALAR_COLUMNS = {"train/reward": "reward", "train/length": "length", "train/success": "success",
                  "train/solved": "solved", "memory/engrams": "engrams"}


def events_of(stream: Path) -> EventAccumulator:
    events = EventAccumulator(str(stream))
    events.Reload()
    return events


def scalars_of(events: EventAccumulator, tag: str) -> pd.Series:
    """One scalar's values by step (a trial's place in the run)."""
    points = events.Scalars(tag)
    return pd.Series([point.value for point in points], index=[point.step for point in points]).sort_index()


def assert_events_hold_the_rows(stream: Path, trials: pd.DataFrame, at_trial_numbers: bool = True) -> None:
    """Every per-trial scalar has one step per row of trials.csv, in the order the trials started, with
    its value: at its trial number in a run of one process, at its place in the species' progress
    (rising with each trial the worker starts) in a species' worker's stream."""
    events = events_of(stream)
    rows = trials.set_index("trial").sort_index()
    for tag, column in SCALAR_COLUMNS.items():
        values = scalars_of(events, tag)
        assert len(values) == len(rows) and values.index.is_unique, tag
        if at_trial_numbers:
            assert list(values.index) == list(rows.index), tag
        assert values.to_numpy() == pytest.approx(rows[column].astype(float).to_numpy(), rel=1e-6), tag
    ends = {cause: scalars_of(events, f"ends/{cause}").iloc[-1] for cause in END_CAUSES}
    assert ends == {cause: int((trials["end"] == cause).sum()) for cause in END_CAUSES}


@pytest.fixture
def tensorboard_settings(settings, collection_name):
    """A tiny training with TensorBoard on: two landers, so trials finish out of their numbers' order."""
    return settings.replace(instance_name=collection_name, tensorboard=True, search_backend="replica",
                            population_size=2, max_trial_length=60)


def test_tensorboard_events_are_written_and_read_back_as_the_rows_of_trials_csv(tensorboard_settings, tmp_path):
    folder = RunFolder(tmp_path / tensorboard_settings.instance_name)
    with Trainer(settings=tensorboard_settings, quiet=True, run_folder=folder) as trainer:
        trainer.train(6)
    trials = pd.read_csv(folder.path / "trials.csv")
    assert len(trials) == 6
    assert_events_hold_the_rows(folder.path / "tb", trials)
    events = events_of(folder.path / "tb")
    assert scalars_of(events, "train/rolling_mean_reward").iloc[-1] == pytest.approx(trials["reward"].mean(), rel=1e-5)
    assert all(value > 0 for value in scalars_of(events, "speed/steps_per_s"))
    start = plugin_data_pb2.HParamsPluginData.FromString(
        events.PluginTagToContent("hparams")["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["instance_name"].string_value == tensorboard_settings.instance_name
    assert start.hparams["population_size"].number_value == 2
    assert "milvus_token" not in start.hparams


def test_a_fresh_start_keeps_the_earlier_runs_events_in_its_kept_folder(tensorboard_settings, tmp_path):
    folder = RunFolder(tmp_path / tensorboard_settings.instance_name)
    with Trainer(settings=tensorboard_settings, quiet=True, run_folder=folder) as trainer:
        trainer.train(3)
    with Trainer(settings=tensorboard_settings.replace(population_size=1), quiet=True, run_folder=folder) as trainer:
        trainer.train(1)
    kept = RunFolder(tmp_path / f"{tensorboard_settings.instance_name}_1")
    assert_events_hold_the_rows(kept.path / "tb", pd.read_csv(kept.path / "trials.csv"))
    assert list(scalars_of(events_of(folder.path / "tb"), "train/reward").index) == [0]


def test_tensorboard_without_its_extra_is_refused_with_the_install_command_before_the_memory_is_touched(
        tensorboard_settings, tmp_path, monkeypatch):
    monkeypatch.setattr(tensorboard, "SummaryWriter", None)  # as where tensorboardX is not installed
    folder = RunFolder(tmp_path / tensorboard_settings.instance_name)
    with pytest.raises(tensorboard.TensorBoardMissingError, match=r"tensorboardX.*pip install -e \"\.\[tensorboard\]\""):
        Trainer(settings=tensorboard_settings, quiet=True, run_folder=folder)
    assert not folder.path.exists()
    assert tensorboard_settings.instance_name not in connect(tensorboard_settings).list_collections()


def test_tensorboard_is_off_by_default_and_writes_nothing(settings, collection_name, tmp_path):
    folder = RunFolder(tmp_path / collection_name)
    with Trainer(collection_name, settings=settings.replace(max_trial_length=30, search_backend="replica"), quiet=True,
                 run_folder=folder) as trainer:
        trainer.train(1)
    assert settings.tensorboard is False and not (folder.path / "tb").exists()


def test_tensorboard_on_a_training_without_a_run_folder_says_no_events_are_written(tensorboard_settings):
    with pytest.warns(ResonantVectorsWarning, match="no events are written"):
        with Trainer(settings=tensorboard_settings, quiet=True) as trainer:
            trainer.train(1)


def test_tensorboard_on_a_read_only_training_is_refused_by_name(capsys):
    assert main.main(["--tensorboard", "--read-only", "--no-display", "--quiet"]) == 2
    assert "--tensorboard with READ_ONLY (--read-only)" in capsys.readouterr().err


def test_each_worker_of_a_species_writes_its_own_stream(settings, collection_name, tmp_path):
    species = subprocess.run([sys.executable, "main.py", "--instance", collection_name, "--workers", "2",
                              "--population", "2", "--trials", "4", "--search-backend", "replica", "--tensorboard",
                              "--no-display", "--quiet", "--runs-dir", str(tmp_path)],
                             cwd=PROJECT, env=dict(os.environ, MILVUS_DATA_DIR=settings.milvus_data_dir, MILVUS_URI=""),
                             capture_output=True, text=True, timeout=120)
    assert species.returncode == 0, species.stderr
    trials = RunFolder(tmp_path / collection_name).trials()
    for worker in (0, 1):
        assert_events_hold_the_rows(tmp_path / collection_name / "tb" / f"w{worker}", trials[trials["worker"] == worker],
                                    at_trial_numbers=False)
