"""Nothing lost: a Milvus that restarts or dies mid-training, a crashed data folder, and trainers
running at once. Every test injects a real fault into a real embedded Milvus."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resonant_vectors.config import Settings
from resonant_vectors.loop.trainer import Trainer
from resonant_vectors.memory.claims import CollectionInUseError
from resonant_vectors.memory.ledger import WORKER_ID_FROM, SpeciesLedger, new_worker_id, species_ledger_name
from resonant_vectors.memory.milvus.collection import EngramsNotStoredError, connect
from resonant_vectors.memory.store import EngramStore
from resonant_vectors.runs.folder import RunFolder
from resonant_vectors.server.supervision import STATE_FILE
from resonant_vectors.species.training import SpeciesNotTrainingError, join_species

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def faulty_data_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("faulty_milvus"))


@pytest.fixture
def own_server_settings(settings, faulty_data_dir):
    """Settings of an embedded server of these tests' own, so that its faults touch no other test."""
    return settings.replace(milvus_data_dir=faulty_data_dir, population_size=4)


def server_state(settings) -> dict:
    return json.loads((Path(settings.milvus_data_dir) / STATE_FILE).read_text())


def kill_server_and_keeper(settings) -> None:
    """The whole embedded Milvus dies, as in a crash: its keeper is killed, and the server with it."""
    state = server_state(settings)
    os.kill(state["keeper_pid"], signal.SIGKILL)
    wait_until_dead(state["pid"])


def a_fresh_start_where_milvus_dies_in(step: str, name: str, settings, folder: RunFolder, monkeypatch) -> None:
    """A fresh start whose Milvus dies (server and keeper) as it comes to ``EngramCollection.<step>``:
    the start fails within its 3-s retries."""
    from resonant_vectors.memory.milvus.collection import EngramCollection, MilvusUnavailableError

    original = getattr(EngramCollection, step)

    def milvus_dies_there(collection, *arguments):
        kill_server_and_keeper(settings)
        return original(collection, *arguments)

    monkeypatch.setattr(EngramCollection, step, milvus_dies_there)
    with pytest.raises(MilvusUnavailableError, match="did not answer for 3 s"):
        Trainer(name, settings=settings.replace(milvus_retry_timeout=3.0), quiet=True, run_folder=folder)
    monkeypatch.undo()


def wait_until_dead(pid: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z":
        assert time.monotonic() < deadline, f"process {pid} still alive"
        time.sleep(0.1)


def stored_lengths(folder: RunFolder) -> int:
    return int(folder.trials()["length"].sum())


@pytest.mark.parametrize("backend", ["replica"])  # the Milvus backend's retries: the "gone for good" test below
def test_a_milvus_restart_mid_training_pauses_it_and_loses_nothing(own_server_settings, tmp_path, capfd, backend):
    folder = RunFolder(tmp_path / f"restarted_{backend}")
    trainer = Trainer(f"restarted_{backend}", settings=own_server_settings.replace(search_backend=backend),
                      quiet=True, run_folder=folder)
    killed = []

    def kill_the_server_once(record):
        if len(trainer.metrics) >= 4 and not killed:
            killed.append(server_state(own_server_settings)["pid"])
            os.kill(killed[0], signal.SIGKILL)

    trainer.train(16, callback=kill_the_server_once)
    trainer.close()
    assert server_state(own_server_settings)["pid"] != killed[0]  # the keeper restarted it
    assert "retrying" in capfd.readouterr().err
    assert len(trainer.metrics) == 16
    assert trainer.store.get_count() == stored_lengths(folder) == trainer.engram_count
    if backend == "replica":  # the replica holds exactly the collection's engrams, each once
        stored = trainer.store.collection.rows_where("id > 0", ["id"], limit=16384)
        held = trainer.store.memory.engrams().id
        assert len(held) == len(set(held.tolist())) == len(stored)
        assert set(held.tolist()) == {row["id"] for row in stored}


def test_a_milvus_gone_for_good_stops_training_and_the_finished_trials_are_stored_on_resume(
        own_server_settings, tmp_path):
    folder = RunFolder(tmp_path / "gone")
    settings = own_server_settings.replace(milvus_retry_timeout=3.0)
    trainer = Trainer("gone", settings=settings, quiet=True, run_folder=folder)
    real_add = trainer.store.memory.add
    inserts = []

    def kill_server_and_keeper_then_insert(engrams):  # the whole embedded Milvus dies, as in a crash
        inserts.append(len(engrams))
        if len(inserts) == 3:
            kill_server_and_keeper(settings)
        return real_add(engrams)

    trainer.store.memory.add = kill_server_and_keeper_then_insert
    started = time.monotonic()
    with pytest.raises(EngramsNotStoredError, match="did not answer for 3 s.*kept in.*unstored_engrams.jsonl"):
        trainer.train(40)
    assert time.monotonic() - started < 60
    trainer.close()
    assert len(folder.unstored(9)) == inserts[-1] > 0
    assert len(trainer.metrics) == len(folder.trials())  # the trials whose engrams were not stored are saved

    resumed = Trainer("gone", clear_collection=False, settings=own_server_settings, quiet=True, run_folder=folder)
    resumed.train(2)  # restarts the server on the crashed folder, then stores the kept engrams first
    resumed.close()
    assert len(folder.unstored(9)) == 0
    assert resumed.store.get_count() == stored_lengths(folder) == resumed.engram_count


def main_py(*arguments: str, data_dir: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "main.py", "--no-display", "--quiet", *arguments], cwd=PROJECT,
                            env=dict(os.environ, MILVUS_DATA_DIR=data_dir, MILVUS_URI=""),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_trainers_in_separate_processes_share_one_server_with_exact_counts(settings, collection_name, tmp_path):
    names = [f"{collection_name}_{n}" for n in range(2)]
    trainers = [main_py("--instance", name, "--trials", "6", "--population", "3", "--seed", str(n),
                        "--runs-dir", str(tmp_path), data_dir=settings.milvus_data_dir)
                for n, name in enumerate(names)]
    for trainer in trainers:
        _, errors = trainer.communicate(timeout=300)
        assert trainer.returncode == 0, errors
        assert "starting the embedded Milvus" not in errors  # each reused the running server
    for name in names:
        folder = RunFolder(tmp_path / name)
        assert len(folder.trials()) == 6
        assert EngramStore(name, settings=settings).get_count() == stored_lengths(folder)


def test_a_second_trainer_of_a_collection_in_training_is_refused(settings, collection_name, tmp_path):
    first = main_py("--instance", collection_name, "--trials", "2000", "--runs-dir", str(tmp_path),
                    data_dir=settings.milvus_data_dir)
    deadline = time.monotonic() + 120
    while not (tmp_path / collection_name / "trials.csv").exists():
        assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
        time.sleep(0.2)
    try:
        with pytest.raises(CollectionInUseError, match=f"being trained by process {first.pid}.*another --instance"):
            Trainer(collection_name, clear_collection=False, settings=settings, quiet=True)
        reader = Trainer(collection_name, settings=settings.replace(read_only=True), quiet=True)
        reader.train(1)  # reading the memory in training is allowed
        named = settings.replace(instance_name=collection_name)
        assert SpeciesLedger(named).alive() == [f"{socket.gethostname()}:{first.pid} (one process)"]
        with pytest.raises(SpeciesNotTrainingError, match="trained by one process .*not joined"):
            join_species(named, tmp_path, quiet=True)
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    assert SpeciesLedger(named).alive() == []  # it left the ledger as it stopped
    Trainer(collection_name, clear_collection=False, settings=settings, quiet=True).close()  # free again


ELSEWHERE = "another-machine:4242 (one process) @1.00"  # a training's row as another machine writes it


def trained_run(settings, name: str, runs_dir: Path) -> RunFolder:
    folder = RunFolder(runs_dir / name)
    with Trainer(name, settings=settings.replace(max_trial_length=40), quiet=True, run_folder=folder) as trainer:
        trainer.train(2)
    return folder


@pytest.mark.parametrize("fresh", [True, False], ids=["fresh", "keep"])
def test_a_start_is_refused_while_a_training_on_another_machine_is_alive_in_the_ledger(
        settings, collection_name, tmp_path, fresh):
    folder = trained_run(settings, collection_name, tmp_path)
    engrams, rows = EngramStore(collection_name, settings=settings).get_count(), len(folder.trials())
    ledger, elsewhere = SpeciesLedger(settings.replace(instance_name=collection_name)), new_worker_id()
    ledger.heartbeat(elsewhere, ELSEWHERE)
    with pytest.raises(CollectionInUseError, match=r"trained by another-machine:4242 \(one process\); a plain start "
                                                   r"would drop or mix into its memory.*another --instance"):
        Trainer(collection_name, clear_collection=fresh, settings=settings, quiet=True, run_folder=folder)
    assert EngramStore(collection_name, settings=settings).get_count() == engrams and len(folder.trials()) == rows
    ledger.leave(elsewhere)
    Trainer(collection_name, clear_collection=fresh, settings=settings, quiet=True, run_folder=folder).close()


def test_of_two_starts_at_once_on_two_machines_the_one_that_sees_the_other_changes_nothing(
        settings, collection_name, tmp_path, monkeypatch):
    """The other machine's row lands just after this start looked for one, before it wrote its own:
    it looks again once its own row is written, and is refused before the memory changes."""
    folder = trained_run(settings, collection_name, tmp_path)
    engrams, rows = EngramStore(collection_name, settings=settings).get_count(), len(folder.trials())
    elsewhere, create = new_worker_id(), SpeciesLedger.create

    def create_as_another_machine_starts(ledger: SpeciesLedger) -> None:
        create(ledger)
        ledger.heartbeat(elsewhere, ELSEWHERE)

    monkeypatch.setattr(SpeciesLedger, "create", create_as_another_machine_starts)
    with pytest.raises(CollectionInUseError, match=r"trained by another-machine:4242 \(one process\)"):
        Trainer(collection_name, settings=settings, quiet=True, run_folder=folder)  # a fresh start
    assert EngramStore(collection_name, settings=settings).get_count() == engrams and len(folder.trials()) == rows
    workers = connect(settings).query(species_ledger_name(collection_name), filter=f"id >= {WORKER_ID_FROM}",
                                      output_fields=["place"], consistency_level="Strong")
    assert [row["place"] for row in workers] == [ELSEWHERE]  # its own row left with it


def test_every_bad_setting_is_reported_at_once():
    from resonant_vectors.config import SettingsError

    with pytest.raises(SettingsError) as error:
        Settings.from_module(noise=-1.0, population_size=0, vector_component_weights=(1.0,) * 7, gravity=5.0,
                             min_results=0, discount=2.0)
    problems = str(error.value).split("\n  - ")[1:]
    assert [problem.split(":")[0] for problem in problems] == [
        "NOISE", "MIN_RESULTS", "POPULATION_SIZE", "DISCOUNT", "VECTOR_COMPONENT_WEIGHTS", "GRAVITY"]
    assert "8 finite numbers (one per state dim of LunarLander-v3), got (1.0" in str(error.value)


def test_bad_flags_stop_training_before_it_touches_the_memory_and_name_the_flags(settings, collection_name,
                                                                                tmp_path, capsys, main_on_test_server):
    from resonant_vectors.cli import main
    from resonant_vectors.memory.milvus.collection import connect

    assert main.main(["--instance", collection_name, "--noise", "-1", "--population", "0", "--no-display",
                      "--runs-dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "NOISE (--noise): expected a finite number >= 0" in error and "POPULATION_SIZE (--population):" in error
    assert not connect(settings).has_collection(collection_name)
    assert list(tmp_path.iterdir()) == []


def test_a_fresh_start_whose_setting_aside_fails_puts_the_run_folder_back_and_keeps_the_memory(
        own_server_settings, tmp_path, monkeypatch):
    from resonant_vectors.memory.store import EngramStore

    settings = own_server_settings.replace(population_size=1, max_trial_length=30)
    folder = RunFolder(tmp_path / "undropped")
    with Trainer("undropped", settings=settings, quiet=True, run_folder=folder) as trainer:
        trainer.train(2)
    before = {path: path.read_bytes() for path in sorted(tmp_path.rglob("*")) if path.is_file()}
    a_fresh_start_where_milvus_dies_in("set_aside_as", "undropped", settings, folder, monkeypatch)
    assert {path: path.read_bytes() for path in sorted(tmp_path.rglob("*")) if path.is_file()} == before
    store = EngramStore("undropped", settings=settings)  # starts the server again on the crashed folder
    assert store.get_count() == stored_lengths(folder)
    store.close()


def test_a_fresh_start_that_fails_after_setting_the_memory_aside_keeps_the_new_run_folder(
        own_server_settings, tmp_path, monkeypatch):
    from resonant_vectors.memory.store import EngramStore

    settings = own_server_settings.replace(population_size=1, max_trial_length=30)
    folder = RunFolder(tmp_path / "redropped")
    with Trainer("redropped", settings=settings, quiet=True, run_folder=folder) as trainer:
        trainer.train(2)
    earlier, engrams = folder.trials(), stored_lengths(folder)
    # the memory is kept aside as redropped_1; the new collection cannot be made
    a_fresh_start_where_milvus_dies_in("_create", "redropped", settings, folder, monkeypatch)
    assert len(folder.trials()) == 0  # the run folder says what the memory is now: a fresh start
    assert RunFolder(folder.path.with_name("redropped_1")).trials().equals(earlier)  # the earlier run, kept aside
    store = EngramStore("redropped", settings=settings)  # starts the server again; the memory is empty
    assert store.get_count() == 0
    store.close()
    kept = EngramStore("redropped_1", settings=settings)  # with its memory, every engram of it
    assert kept.get_count() == engrams
    kept.close()
