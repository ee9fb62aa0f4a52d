"""Nothing trained is lost unless the user asks for it by name: a fresh start keeps the run before it,
memory and folder, as an instance of its own; only `drop` (or KEPT_RUNS) deletes one, and says so."""
from __future__ import annotations

import json
import os
import signal

import pytest

import settings as settings_module
from resonant_vectors.cli import main
from resonant_vectors.loop.trainer import Trainer
from resonant_vectors.memory import lifecycle
from resonant_vectors.memory.book import SpeciesBook
from resonant_vectors.memory.ledger import SpeciesLedger
from resonant_vectors.memory.lifecycle import InstanceMemory
from resonant_vectors.memory.milvus.collection import connect
from resonant_vectors.runs.folder import RunFolder

pytestmark = pytest.mark.usefixtures("main_on_test_server")


def train(name: str, runs_dir, *flags: str) -> int:
    return main.main(["--instance", name, "--no-display", "--quiet", "--runs-dir", str(runs_dir), *flags])


def engrams_of(settings, name: str) -> int:
    client = connect(settings)
    client.load_collection(name)
    return int(client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"])


def test_a_fresh_start_keeps_the_trained_run_by_name_and_only_drop_deletes_it(settings, collection_name, tmp_path,
                                                                             capsys):
    name, kept = collection_name, f"{collection_name}_1"
    assert train(name, tmp_path, "--trials", "3") == 0
    trained = engrams_of(settings, name)
    with pytest.raises(SystemExit) as refused:  # a start that would change nothing is refused by its flag
        train(name, tmp_path, "--trials", "0")
    assert refused.value.code == 2 and "--trials: expected a whole number >= 1, got 0" in capsys.readouterr().err
    assert engrams_of(settings, name) == trained and not connect(settings).has_collection(kept)

    assert train(name, tmp_path, "--trials", "1") == 0
    said = capsys.readouterr().err
    assert f"its earlier run and its {trained} engrams are kept as the instance {kept}" in said
    assert json.loads((tmp_path / kept / "kept.json").read_text())["kept_from"] == name
    assert list(RunFolder(tmp_path / kept).trials()["trial"]) == [0, 1, 2]

    assert main.main(["evaluate", "--instance", kept, "--episodes", "2", "--runs-dir", str(tmp_path)]) == 0
    assert json.loads((tmp_path / kept / "evaluation.json").read_text())["engrams"] == trained
    assert engrams_of(settings, kept) == trained  # evaluating it changed nothing

    assert train(kept, tmp_path, "--keep", "--trials", "1") == 0  # it resumes as any instance does
    assert list(RunFolder(tmp_path / kept).trials()["trial"]) == [0, 1, 2, 3]
    resumed = engrams_of(settings, kept)
    capsys.readouterr()

    assert main.main(["drop", "--instance", kept, "--runs-dir", str(tmp_path)]) == 0
    assert f"dropped the memory {kept} for good: its {resumed} engrams are deleted" in capsys.readouterr().out
    assert not connect(settings).has_collection(kept)
    assert main.main(["drop", "--instance", kept, "--runs-dir", str(tmp_path)]) == 2
    assert f"no memory named {kept!r}, so nothing was dropped" in capsys.readouterr().err


def test_kept_runs_past_the_setting_are_removed_oldest_first_and_the_start_says_so(
        settings, collection_name, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(settings_module, "KEPT_RUNS", 1)
    name = collection_name
    for run in range(3):
        assert train(name, tmp_path, "--trials", "1") == 0
        if run == 1:  # the kept run was resumed as a species since: it has a ledger and a book
            species_of_kept = settings.replace(instance_name=f"{name}_1")
            SpeciesLedger(species_of_kept).create()
            SpeciesBook(species_of_kept).open_for(SpeciesBook(species_of_kept).memory_id())
    said = capsys.readouterr().err
    assert f"KEPT_RUNS removed the oldest kept run, {name}_1, and its" in said
    assert not (tmp_path / f"{name}_1").exists()
    assert not any(connect(settings).has_collection(f"{name}_1{table}") for table in ("", "_species", "_book"))
    assert (tmp_path / f"{name}_2" / "kept.json").exists() and connect(settings).has_collection(f"{name}_2")


def test_the_seeds_clear_collection_true_drops_the_earlier_memory_as_asked(settings, collection_name, tmp_path,
                                                                          capsys):
    folder = RunFolder(tmp_path / collection_name)
    with Trainer(collection_name, settings=settings.replace(max_trial_length=40), quiet=True,
                 run_folder=folder) as trainer:
        trainer.train(1)
    engrams = trainer.engram_count
    with Trainer(collection_name, clear_collection=True, settings=settings.replace(max_trial_length=40), quiet=True,
                 run_folder=folder):
        pass
    assert f"dropped its {engrams} engrams; its earlier run folder is kept in" in capsys.readouterr().err
    assert not connect(settings).has_collection(f"{collection_name}_1")


def test_keep_on_a_missing_instance_is_an_error_that_lists_the_instances(settings, collection_name, tmp_path,
                                                                        capsys):
    assert train(collection_name, tmp_path, "--keep", "--trials", "1") == 2
    error = capsys.readouterr().err
    assert f"--keep: no memory named {collection_name!r} to resume" in error and "Instances there:" in error
    assert not connect(settings).has_collection(collection_name) and not (tmp_path / collection_name).exists()


def test_join_with_workers_is_an_error_naming_the_flag(collection_name, tmp_path, capsys):
    assert train(collection_name, tmp_path, "--join", "--workers", "3") == 2
    assert "--workers 3 with --join: a joiner is one more worker" in capsys.readouterr().err


def signal_at_the_end_of(monkeypatch, owner, step: str, stop: int) -> None:
    """``owner.step`` sends this process a real Ctrl-C or SIGTERM the moment it has done its work."""
    original = getattr(owner, step)

    def interrupted_at_its_end(*arguments, **options):
        done = original(*arguments, **options)
        os.kill(os.getpid(), stop)
        return done

    monkeypatch.setattr(owner, step, interrupted_at_its_end)


def start_afresh_stopped(settings, folder: RunFolder) -> None:
    """A fresh start, stopped by the signal its step sends, with SIGTERM stopping like Ctrl-C as in `python main.py`."""
    previous = signal.getsignal(signal.SIGTERM)
    main.stop_on_sigterm()
    try:
        with pytest.raises(KeyboardInterrupt):
            Trainer(settings=settings, quiet=True, run_folder=folder)
    finally:
        signal.signal(signal.SIGTERM, previous)


STOP_SIGNALS = pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl_c", "sigterm"])


@STOP_SIGNALS
@pytest.mark.parametrize("step", ["set_aside", "drop", "open_afresh"])
def test_a_stop_signal_in_the_middle_of_a_fresh_start_stops_it_only_once_the_start_is_whole(
        settings, collection_name, tmp_path, monkeypatch, step, stop):
    name, kept = collection_name, f"{collection_name}_1"
    assert train(name, tmp_path, "--trials", "2") == 0
    trained, earlier = engrams_of(settings, name), RunFolder(tmp_path / name).trials()
    signal_at_the_end_of(monkeypatch, InstanceMemory, step, stop)
    start_afresh_stopped(settings.replace(instance_name=name, kept_runs=0 if step == "drop" else 5),
                         RunFolder(tmp_path / name))
    assert len(RunFolder(tmp_path / name).trials()) == 0  # the folder says what the memory now is: a fresh start
    if step != "drop":  # and the earlier run is whole under its new name, folder and memory
        assert RunFolder(tmp_path / kept).trials().equals(earlier) and engrams_of(settings, kept) == trained


@STOP_SIGNALS
def test_a_stop_signal_before_a_fresh_start_changes_anything_leaves_the_run_as_it_was(
        settings, collection_name, tmp_path, monkeypatch, stop):
    name = collection_name
    assert train(name, tmp_path, "--trials", "2") == 0
    trained, earlier = engrams_of(settings, name), RunFolder(tmp_path / name).trials()
    signal_at_the_end_of(monkeypatch, lifecycle, "refuse_if_trained_elsewhere", stop)  # its last look, own row written
    start_afresh_stopped(settings.replace(instance_name=name), RunFolder(tmp_path / name))
    assert RunFolder(tmp_path / name).trials().equals(earlier) and engrams_of(settings, name) == trained
    assert not (tmp_path / f"{name}_1").exists() and not connect(settings).has_collection(f"{name}_1")
    assert SpeciesLedger(settings.replace(instance_name=name)).alive() == []  # nor did it stay in the ledger


@STOP_SIGNALS
def test_a_stop_signal_while_the_oldest_kept_run_is_removed_removes_it_whole(
        settings, collection_name, tmp_path, monkeypatch, stop):
    name, oldest, newer = collection_name, f"{collection_name}_1", f"{collection_name}_2"
    for _ in range(2):
        assert train(name, tmp_path, "--trials", "1") == 0  # the first run is kept as <name>_1
    trained, earlier = engrams_of(settings, name), RunFolder(tmp_path / name).trials()
    signal_at_the_end_of(monkeypatch, InstanceMemory, "drop", stop)  # only the oldest kept run is dropped
    start_afresh_stopped(settings.replace(instance_name=name, kept_runs=1), RunFolder(tmp_path / name))
    assert not (tmp_path / oldest).exists() and not connect(settings).has_collection(oldest)  # gone, memory and folder
    assert RunFolder(tmp_path / newer).trials().equals(earlier) and engrams_of(settings, newer) == trained
    assert len(RunFolder(tmp_path / name).trials()) == 0
