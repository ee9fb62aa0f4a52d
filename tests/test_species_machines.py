"""A species on several machines: each machine's run folder holds every trial of the species, from
the species' book in Milvus (real processes, a real embedded Milvus; the second "machine" is a
folder of its own that reaches the first one's server only through MILVUS_URI and its token)."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_species import PROJECT, main_py, memory_and_folder_agree, wait_for_rows

from resonant_vectors.cli import main
from resonant_vectors.loop.trainer import Trainer
from resonant_vectors.memory.book import SpeciesBook
from resonant_vectors.memory.milvus.collection import EngramCollection
from resonant_vectors.runs.folder import SETTINGS_JSON, RunFolder
from resonant_vectors.runs.records import TrialRecord
from resonant_vectors.runs.shared_rows import SharedRowsError, share_rows
from resonant_vectors.server.supervision import embedded_server_token, embedded_server_uri


def on_another_machine(*arguments: str, home: Path, data_dir: str) -> subprocess.Popen:
    """``python main.py`` from a folder of its own (its own ``runs/``, no embedded server), on the first
    machine's server through ``MILVUS_URI`` and ``MILVUS_TOKEN``, as another machine runs it."""
    home.mkdir(exist_ok=True)
    environment = dict(os.environ, MILVUS_URI=embedded_server_uri(data_dir), MILVUS_TOKEN=embedded_server_token(data_dir),
                       MILVUS_DATA_DIR=str(home / "no_server_here"))
    return subprocess.Popen([sys.executable, str(PROJECT / "main.py"), "--no-display", "--quiet", *arguments],
                            cwd=home, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_species_on_two_machines_is_seen_whole_from_each_of_their_run_folders(settings, collection_name, tmp_path):
    here = RunFolder(tmp_path / "first" / collection_name)
    there = RunFolder(tmp_path / "second" / "runs" / collection_name)
    species = main_py("--instance", collection_name, "--workers", "2", "--population", "2", "--trials", "5000",
                      "--preset", "landing", "--search-backend", "replica", data_dir=settings.milvus_data_dir,
                      runs_dir=tmp_path / "first")
    try:
        wait_for_rows(here, 4, species)
        joined = on_another_machine("--instance", collection_name, "--join", "--trials", "12", "--population", "3",
                                    home=tmp_path / "second", data_dir=settings.milvus_data_dir)
        _, errors = joined.communicate(timeout=180)
        assert joined.returncode == 0, errors
        seen_there = there.trials()
        joiners = set(seen_there["worker"]) - {0, 1}
        assert len(joiners) == 1  # its number drawn at random, its trials in a namespace of their own
        joiner = joiners.pop()
        assert (seen_there["worker"] == joiner).sum() == 12
        assert (seen_there["worker"] != joiner).sum() >= 4  # the first machine's, taken in as it joined and left
        assert there.settings().preset == "landing"  # it joined with the species' settings, not its settings.py's
    finally:
        species.send_signal(signal.SIGINT)
        output, errors = species.communicate(timeout=120)
    assert species.returncode == 130, errors
    seen_here = here.trials()
    assert set(seen_there["trial"]) <= set(seen_here["trial"])  # every trial of the second machine is here too
    assert (seen_here["worker"] == joiner).sum() == 12
    memory_and_folder_agree(settings, collection_name, here)  # every engram's trial, from both machines, is a row here
    summary = json.loads((here.path / "summary.json").read_text())
    assert (summary["trials"], summary["steps"]) == (len(seen_here), int(seen_here["length"].sum()))
    assert f"{len(seen_here)} trials by 3 workers" in output

    # The second machine resumes the species and goes on after every trial, its own and the first's.
    resumed = on_another_machine("--instance", collection_name, "--keep", "--workers", "2", "--trials", "4",
                                 home=tmp_path / "second", data_dir=settings.milvus_data_dir)
    _, errors = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, errors
    after = there.trials()
    assert len(after) == len(seen_here) + 4 and after["trial"].is_unique
    assert set(seen_here["trial"]) < set(after["trial"])
    memory_and_folder_agree(settings, collection_name, there)


def record(trial: int, worker: int, wall_time: float) -> TrialRecord:
    return TrialRecord(trial=trial, worker=worker, lander=0, reward=-50.0 + trial % 7, length=20, solved=False,
                       end="crashed", success=-0.5, mean_success=-0.5, engrams=20 * (trial + 1),
                       neighbour_distance=0.3, noise=0.1, epsilon=0.0, wall_time=wall_time)


@pytest.fixture
def memory(settings, collection_name):
    """A real memory of the test's own name (its book's rows need a memory to belong to)."""
    collection = EngramCollection(collection_name, settings.replace(instance_name=collection_name))
    collection.open_kept()
    yield settings.replace(instance_name=collection_name)
    collection.drop()
    SpeciesBook(settings.replace(instance_name=collection_name)).drop()


def test_a_run_folder_and_the_book_end_up_with_every_row_and_settings_file_of_both(memory, tmp_path):
    book, folder = SpeciesBook(memory), RunFolder(tmp_path / memory.instance_name)
    folder.path.mkdir()
    (folder.path / SETTINGS_JSON).write_text(json.dumps({"preset": "landing"}))
    folder.append([record(0, 0, 1.0), record(1, 0, 2.0)], worker=0)  # the second one's book write a kill lost
    book.open_for(book.memory_id())
    book.add([dataclasses.asdict(record(0, 0, 1.0)), dataclasses.asdict(record(30_000_000, 3, 1.5))])  # worker 3's: elsewhere
    assert share_rows(folder, book) == 1
    assert sorted(folder.trials()["trial"]) == [0, 1, 30_000_000]
    assert (folder.path / "trials-w3.csv").exists()
    assert sorted(row["trial"] for row in book.rows()) == [0, 1, 30_000_000]
    assert json.loads(book.files()[SETTINGS_JSON]) == {"preset": "landing"}
    assert share_rows(folder, book) == 0 and len(folder.trials()) == 3  # a second share changes nothing

    elsewhere = RunFolder(tmp_path / "elsewhere" / memory.instance_name)  # another machine's folder, empty
    assert share_rows(elsewhere, book, create=False) == 3
    assert elsewhere.settings().preset == "landing" and len(elsewhere.trials()) == 3


def test_a_run_folder_of_an_earlier_memory_is_refused_and_nothing_is_changed(memory, tmp_path):
    book, folder = SpeciesBook(memory), RunFolder(tmp_path / memory.instance_name)
    folder.path.mkdir()
    folder.append([record(0, 0, 1.0)], worker=0)
    folder.note_memory_of_rows(book.memory_id() + 1)  # its rows were flown into a memory started afresh since
    for create in (True, False):  # a start with or without a book of the species' memory
        with pytest.raises(SharedRowsError, match="earlier memory"):
            share_rows(folder, book, create=create)
    assert not book.exists() and len(folder.trials()) == 1


def test_without_a_book_a_start_on_another_machine_creates_none(memory, tmp_path):
    folder = RunFolder(tmp_path / memory.instance_name)
    assert share_rows(folder, SpeciesBook(memory), create=False) == 0
    assert not SpeciesBook(memory).exists() and not folder.path.exists()


def test_a_training_of_one_process_gives_the_species_book_its_rows_as_it_ends(memory, tmp_path):
    book, folder = SpeciesBook(memory), RunFolder(tmp_path / memory.instance_name)
    book.open_for(book.memory_id())  # a species trained the instance before (here or on another machine)
    with Trainer(settings=memory.replace(drop_collection=False, population_size=1, max_trial_length=30), quiet=True,
                 run_folder=folder) as trainer:
        trainer.train(3)
    assert sorted(row["trial"] for row in book.rows()) == sorted(folder.trials()["trial"]) == [0, 1, 2]


def test_rows_taken_in_from_the_book_are_written_whole_or_not_at_all(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    folder.take_in([record(0, 3, 1.0)], worker=3)
    before = folder.trials_file(3).read_text()

    def cut_midway():  # as a kill, or Ctrl-C, midway through thousands of rows
        yield record(1, 3, 2.0)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        folder.take_in(cut_midway(), worker=3)
    assert folder.trials_file(3).read_text() == before
    folder.take_in([record(1, 3, 2.0)], worker=3)
    assert list(folder.trials()["trial"]) == [0, 1]


def test_a_run_folder_of_one_process_is_refused_once_another_machine_started_its_instance_afresh(
        settings, collection_name, tmp_path, main_on_test_server, capsys):
    def train(runs_dir, *flags):
        return main.main(["--instance", collection_name, "--no-display", "--quiet", "--runs-dir", str(runs_dir),
                          "--trials", "2", *flags])

    assert train(tmp_path / "first") == 0
    assert train(tmp_path / "second") == 0  # afresh, elsewhere: the first machine's memory is kept by another name
    capsys.readouterr()
    assert train(tmp_path / "first", "--keep") == 2
    assert "holds the trials of an earlier memory" in capsys.readouterr().err
    assert len(RunFolder(tmp_path / "first" / collection_name).trials()) == 2  # nothing changed
