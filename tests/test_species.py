"""A species across processes: workers share one memory, join from another terminal, and a killed
worker or a Ctrl-C loses nothing of what finished (real processes, a real embedded Milvus)."""
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
from pymilvus import DataType

from resonant_vectors.config import Settings, SettingsError
from resonant_vectors.memory.ledger import AliveInLedger, SpeciesLedger, gone_from_here, new_worker
from resonant_vectors.memory.milvus.collection import EngramCollection, connect
from resonant_vectors.memory.seam import WORKER_TRIALS
from resonant_vectors.processes import process_alive, process_start_time
from resonant_vectors.runs.folder import RunFolder

PROJECT = Path(__file__).resolve().parent.parent


def main_py(*arguments: str, data_dir: str, runs_dir: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "main.py", "--no-display", "--quiet", "--runs-dir", str(runs_dir),
                             *arguments], cwd=PROJECT, env=dict(os.environ, MILVUS_DATA_DIR=data_dir, MILVUS_URI=""),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def memory_and_folder_agree(settings: Settings, name: str, folder: RunFolder) -> None:
    """Engrams in Milvus = steps of the saved trials, no engram twice, no trial number twice: each
    worker's trials in its own namespace, and every engram left by one of those trials."""
    collection = EngramCollection(name, settings.replace(instance_name=name))
    pages = list(collection.pages("", "Strong"))
    ids = [engram_id for page in pages for engram_id in page.id.tolist()]
    trials = folder.trials()
    assert len(ids) == len(set(ids)) == collection.count() == int(trials["length"].sum())
    assert trials["trial"].is_unique
    assert (trials["trial"] // WORKER_TRIALS == trials["worker"]).all()
    assert {trial for page in pages for trial in page.trial.tolist()} == set(trials["trial"])


def wait_for_rows(folder: RunFolder, rows: int, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not (folder.path.is_dir() and len(folder.trials()) >= rows):
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.3)


def test_two_workers_train_one_species_and_a_replica_holds_the_others_engrams(settings, collection_name, tmp_path):
    # 40 trials a worker: a few seconds of flight, longer than REPLICA_REFRESH (1 s), so each polls the other
    species = main_py("--instance", collection_name, "--workers", "2", "--population", "4", "--trials", "80",
                      "--search-backend", "replica", data_dir=settings.milvus_data_dir, runs_dir=tmp_path)
    output, errors = species.communicate(timeout=300)
    assert species.returncode == 0, errors
    assert "80 trials by 2 workers" in output
    assert "holds no engrams" not in errors  # a species starts empty: its workers are not warned as readers are
    folder = RunFolder(tmp_path / collection_name)
    trials = folder.trials()
    assert len(trials) == 80 and set(trials["worker"]) == {0, 1}
    memory_and_folder_agree(settings, collection_name, folder)
    # The worker that finished later held the other's engrams (polled while both flew, or loaded at its
    # start): which one it is depends on how the machine scheduled them.
    held_more = [(own["engrams"] > own["length"].cumsum()).iloc[-1]
                 for own in (trials[trials["worker"] == worker].sort_values("wall_time") for worker in (0, 1))]
    assert any(held_more)
    assert json.loads((folder.path / "summary.json").read_text())["trials"] == 80


def test_a_join_adds_a_worker_a_plain_start_is_refused_and_ctrl_c_stops_them_all(settings, collection_name,
                                                                                tmp_path):
    folder = RunFolder(tmp_path / collection_name)
    species = main_py("--instance", collection_name, "--workers", "2", "--population", "2", "--trials", "5000",
                      "--search-backend", "replica", data_dir=settings.milvus_data_dir, runs_dir=tmp_path)
    try:
        wait_for_rows(folder, 4, species)
        plain = main_py("--instance", collection_name, "--trials", "1", data_dir=settings.milvus_data_dir,
                        runs_dir=tmp_path)
        _, refused = plain.communicate(timeout=120)
        assert plain.returncode == 2 and "--join" in refused
        before = EngramCollection(collection_name, settings.replace(instance_name=collection_name)).count()
        joined = main_py("--instance", collection_name, "--join", "--trials", "12", "--population", "3",
                         "--search-backend", "replica", data_dir=settings.milvus_data_dir, runs_dir=tmp_path)
        _, errors = joined.communicate(timeout=180)
        assert joined.returncode == 0, errors
        joiner = set(RunFolder(folder.path).trials()["worker"]) - {0, 1}  # drawn at random: trials-w<k>.csv
        assert len(joiner) == 1 and len(RunFolder(folder.path).trials().query(f"worker == {joiner.pop()}")) == 12
        left = json.loads((folder.path / "summary.json").read_text())  # the joiner rewrote it as it left
        assert left["trials"] >= 4 + 12
        assert EngramCollection(collection_name, settings.replace(instance_name=collection_name)).count() > before
        workers = [json.loads((folder.path / "workers" / f"w{k}.json").read_text())["pid"] for k in (0, 1)]
    finally:
        species.send_signal(signal.SIGINT)
        output, errors = species.communicate(timeout=120)
    assert species.returncode == 130, errors
    assert "every worker stopped between steps" in errors
    assert not any(process_alive(pid) for pid in workers)
    memory_and_folder_agree(settings, collection_name, folder)
    trials, summary = folder.trials(), json.loads((folder.path / "summary.json").read_text())
    assert (summary["trials"], summary["steps"]) == (len(trials), int(trials["length"].sum()))
    assert summary["engrams"] == EngramCollection(collection_name, settings.replace(instance_name=collection_name)).count()
    assert f"{len(trials)} trials by 3 workers" in output  # the joiner flew in this run too


def test_a_killed_worker_loses_only_its_trials_in_flight_and_keep_resumes_the_species(settings, collection_name,
                                                                                     tmp_path):
    folder = RunFolder(tmp_path / collection_name)
    species = main_py("--instance", collection_name, "--workers", "2", "--population", "4", "--trials", "40",
                      "--search-backend", "replica", data_dir=settings.milvus_data_dir, runs_dir=tmp_path)
    wait_for_rows(folder, 6, species)
    victim = json.loads((folder.path / "workers" / "w1.json").read_text())["pid"]
    os.kill(victim, signal.SIGKILL)
    _, errors = species.communicate(timeout=300)
    assert species.returncode == 1 and "worker 1" in errors and "SIGKILL" in errors, errors
    trials = folder.trials()
    assert 6 <= len(trials) < 40 and (trials["worker"] == 0).sum() == 20  # the other worker finished its share
    memory_and_folder_agree(settings, collection_name, folder)
    resumed = main_py("--instance", collection_name, "--keep", "--workers", "2", "--population", "4", "--trials", "8",
                      "--search-backend", "replica", data_dir=settings.milvus_data_dir, runs_dir=tmp_path)
    _, errors = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, errors
    assert len(folder.trials()) == len(trials) + 8
    memory_and_folder_agree(settings, collection_name, folder)


def test_a_workers_schedules_follow_the_trials_every_member_of_its_species_started(settings, collection_name):
    settings = settings.replace(instance_name=collection_name)
    ledger = SpeciesLedger(settings)
    ledger.create()
    with AliveInLedger(ledger, "species command") as command:
        command.relabel("species command", started=100)  # the run had 100 trials before this start
        first = new_worker(0, settings, [0, 1, 2, 10_000_000])  # the run folder's trial numbers
        second = new_worker(1, settings, [0, 1, 2, 10_000_000])
        first.beat()
        started = [(trial, first.progress(trial)) for trial in first.trial_numbers(5)]
        assert started == [(3, 100), (4, 101), (5, 102), (6, 103), (7, 104)]  # its own namespace, the species' count
        first.beat()
        second.beat()
        assert [(trial, second.progress(trial)) for trial in second.trial_numbers(2)] == [(10_000_001, 105),
                                                                                          (10_000_002, 106)]
        first.leave()  # its trials still count...
        second.beat()
        assert ledger.species_started() == 100 + 5 + 2
        ledger.forget_earlier_starts()  # ...until the species' next start, which keeps only the live members
        assert ledger.species_started() == 100 + 2


def test_a_ledger_of_an_earlier_version_is_made_again_by_a_start_that_finds_nobody_alive(settings, collection_name):
    settings = settings.replace(instance_name=collection_name)
    ledger, client = SpeciesLedger(settings), connect(settings)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)  # the trial blocks' ledger
    for field in ("id", "holder", "seen_us"):
        schema.add_field(field, DataType.INT64, is_primary=field == "id")
    schema.add_field("place", DataType.VARCHAR, max_length=255)
    schema.add_field("unused", DataType.FLOAT_VECTOR, dim=2)
    index = client.prepare_index_params()
    index.add_index(field_name="unused", index_type="FLAT", metric_type="L2")
    client.create_collection(ledger.name, schema=schema, index_params=index)
    client.insert(ledger.name, [{"id": 3, "holder": 7, "seen_us": 0, "place": "block", "unused": [0.0, 0.0]}])
    assert ledger.alive() == []
    ledger.create()
    ledger.heartbeat(new_worker(0, settings, []).worker_id, "here:1 (worker 0)", started=4)
    assert ledger.species_started() == 4


def test_joining_an_instance_nobody_trains_is_one_message(settings, collection_name, tmp_path):
    joined = main_py("--instance", collection_name, "--join", "--trials", "1", data_dir=settings.milvus_data_dir,
                     runs_dir=tmp_path)
    _, errors = joined.communicate(timeout=120)
    assert joined.returncode == 2
    assert errors.strip().splitlines()[-1].startswith(f"error: no species of {collection_name!r} is training")


@pytest.mark.parametrize("changes, complaint", [
    ({"workers": 3, "population_size": 2}, "WORKERS = 3: each worker flies at least one lander"),
    ({"workers": 2, "population_size": 4, "revalue_every": 10, "outcome_rule": "return", "success_weight": 0.0,
      "search_backend": "replica"}, "REVALUE_EVERY = 10 with WORKERS = 2"),
    ({"workers": 2, "population_size": 4, "read_only": True}, "READ_ONLY with WORKERS = 2"),
])
def test_workers_that_cannot_share_a_species_are_refused(changes, complaint):
    with pytest.raises(SettingsError, match=complaint):
        Settings.from_module(**changes)


def test_a_species_worker_whose_pid_a_newer_process_took_is_seen_as_gone():
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        host, started = socket.gethostname(), process_start_time(worker.pid)
        assert not gone_from_here(f"{host}:{worker.pid} (worker 1) @{started:.2f}")  # that very worker
        assert gone_from_here(f"{host}:{worker.pid} (worker 1) @{started - 60:.2f}")  # an earlier one
        assert not gone_from_here(f"{host}:{worker.pid} (worker 1)")  # a place of an older version
        assert not gone_from_here(f"elsewhere:{worker.pid} (worker 1) @{started - 60:.2f}")  # not ours to judge
    finally:
        worker.kill()
        worker.wait()
    assert gone_from_here(f"{host}:{worker.pid} (worker 1) @{started:.2f}")
