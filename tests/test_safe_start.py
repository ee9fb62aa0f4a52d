"""A start that fails loses nothing: the memory's engrams and the run folder are exactly as they
were, and one message says what to fix (real Milvus, real commands)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from resonant_vectors.cli import main
from resonant_vectors.config import Settings
from resonant_vectors.loop.trainer import Trainer
from resonant_vectors.memory.store import EngramStore
from resonant_vectors.runs.folder import RunFolder

PROJECT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("main_on_test_server")


def snapshot(folder: Path) -> dict:
    """Every file under a folder, with its content: "exactly as it was"."""
    return {str(path.relative_to(folder.parent)): path.read_bytes()
            for path in sorted(folder.parent.rglob("*")) if path.is_file()}


def train_three_trials(settings: Settings, name: str, runs_dir: Path) -> int:
    """A memory of 3 short trials and its run folder, as `python main.py` leaves them; its engrams."""
    with Trainer(name, settings=settings.replace(max_trial_length=60), quiet=True,
                 run_folder=RunFolder.for_instance(name, runs_dir)) as trainer:
        trainer.train(3)
    return trainer.store.get_count()


@pytest.fixture(scope="module")
def unchanged(milvus_data_dir, tmp_path_factory):
    """One trained memory shared by the tests whose failing starts must leave it as it was:
    (runs folder, instance, engrams)."""
    settings = Settings.from_module(milvus_data_dir=milvus_data_dir, milvus_uri="", display=False, seed=0)
    runs_dir = tmp_path_factory.mktemp("unchanged") / "runs"
    return runs_dir, "unchanged", train_three_trials(settings, "unchanged", runs_dir)


@pytest.fixture
def trained(settings, collection_name, tmp_path):
    """A trained memory of the test's own, for tests that change it: (runs folder, engrams)."""
    runs_dir = tmp_path / "runs"
    return runs_dir, train_three_trials(settings, collection_name, runs_dir)


def engrams_now(settings, name: str) -> int:
    return EngramStore(name, settings=settings).get_count()


def test_a_negative_seed_is_refused_before_the_memory_is_touched(unchanged, settings, capsys):
    runs_dir, collection_name, count = unchanged
    before = snapshot(runs_dir / collection_name)
    assert main.main(["--instance", collection_name, "--seed", "-5", "--no-display", "--runs-dir", str(runs_dir)]) == 2
    error = capsys.readouterr().err
    assert "SEED (--seed): expected a whole number >= 0" in error and "Traceback" not in error
    assert engrams_now(settings, collection_name) == count
    assert snapshot(runs_dir / collection_name) == before


@pytest.mark.parametrize("flags, complaint", [
    (["--noise", "inf"], "NOISE (--noise): expected a finite number >= 0, got inf"),
    (["--population", "2000"], "POPULATION_SIZE (--population): expected a whole number from 1 to 1024"),
    (["--env", "Pendulum-v1"], "ENV_ID (--env): Pendulum-v1: its actions are Box"),
])
def test_a_bad_value_is_one_message_naming_its_flag_and_nothing_changes(unchanged, settings, capsys, flags,
                                                                        complaint):
    runs_dir, collection_name, count = unchanged
    before = snapshot(runs_dir / collection_name)
    assert main.main(["--instance", collection_name, "--no-display", "--runs-dir", str(runs_dir), *flags]) == 2
    assert complaint in capsys.readouterr().err
    assert engrams_now(settings, collection_name) == count and snapshot(runs_dir / collection_name) == before


def test_a_damaged_trials_csv_row_is_one_message_and_a_resume_writes_nothing(trained, settings, collection_name,
                                                                            capsys):
    runs_dir, count = trained
    csv_path = runs_dir / collection_name / "trials.csv"
    lines = csv_path.read_text().splitlines()
    lines[2] = "abc," + lines[2].split(",", 1)[1]  # parses as CSV, but its trial is no number
    csv_path.write_text("\n".join(lines) + "\n")
    before = snapshot(runs_dir / collection_name)
    assert main.main(["--instance", collection_name, "--keep", "--trials", "1", "--no-display",
                      "--runs-dir", str(runs_dir)]) == 2
    error = capsys.readouterr().err
    assert "trials.csv, row 2 (line 3): trial is 'abc', expected a whole number" in error
    assert "Traceback" not in error
    assert snapshot(runs_dir / collection_name) == before  # no settings-resume-1.json left behind
    assert engrams_now(settings, collection_name) == count


def read_only_main(arguments: list, read_only: Path, data_dir: str) -> subprocess.CompletedProcess:
    """``python main.py ARGUMENTS`` in a user + mount namespace where ``read_only`` is a read-only
    file system (a real EROFS, which even root cannot write)."""
    program = (
        "import ctypes, os, runpy, sys\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "uid, gid = os.getuid(), os.getgid()\n"
        "assert libc.unshare(0x10000000 | 0x00020000) == 0, 'no user namespaces'  # CLONE_NEWUSER | CLONE_NEWNS\n"
        "for name, text in (('setgroups', 'deny'), ('uid_map', f'{uid} {uid} 1'), ('gid_map', f'{gid} {gid} 1')):\n"
        "    open(f'/proc/self/{name}', 'w').write(text)\n"
        "path = sys.argv[1].encode()\n"
        "assert libc.mount(None, b'/', None, 16384 | (1 << 18), None) == 0  # MS_REC | MS_PRIVATE\n"
        "assert libc.mount(path, path, None, 4096, None) == 0  # MS_BIND\n"
        "assert libc.mount(None, path, None, 4096 | 32 | 1, None) == 0  # MS_BIND | MS_REMOUNT | MS_RDONLY\n"
        "sys.argv = ['main.py'] + sys.argv[2:]\n"
        "runpy.run_path('main.py', run_name='__main__')\n")
    return subprocess.run([sys.executable, "-c", program, str(read_only), *arguments], cwd=PROJECT,
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, "MILVUS_DATA_DIR": data_dir, "MILVUS_URI": ""})


def namespaces_work() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import ctypes; assert ctypes.CDLL(None).unshare(0x10000000 | "
                            "0x00020000) == 0"], capture_output=True)
    return sys.platform.startswith("linux") and probe.returncode == 0


@pytest.mark.skipif(not namespaces_work(), reason="no user + mount namespaces to make a read-only file system")
def test_a_fresh_start_on_a_read_only_run_folder_drops_nothing(unchanged, settings):
    runs_dir, collection_name, count = unchanged
    before = snapshot(runs_dir / collection_name)
    result = read_only_main(["--instance", collection_name, "--trials", "1", "--no-display", "--runs-dir",
                             str(runs_dir)], runs_dir, settings.milvus_data_dir)
    assert result.returncode == 2, result.stderr
    assert "cannot write the run folder" in result.stderr and "Read-only file system" in result.stderr
    assert "nothing was changed" in result.stderr and "Traceback" not in result.stderr
    assert engrams_now(settings, collection_name) == count
    assert snapshot(runs_dir / collection_name) == before


def test_a_fresh_start_keeps_a_runless_folders_other_files(settings, collection_name, tmp_path):
    folder = tmp_path / collection_name
    folder.mkdir()
    (folder / "flight.gif").write_bytes(b"GIF89a")
    (folder / "evaluation.json").write_text("{}")
    assert main.main(["--instance", collection_name, "--trials", "1", "--no-display", "--quiet",
                      "--runs-dir", str(tmp_path)]) == 0
    assert (folder / "flight.gif").read_bytes() == b"GIF89a"  # the user's file stays
    assert not (folder / "evaluation.json").exists()          # the earlier run's leftovers go
    assert len(RunFolder(folder).trials()) == 1


def test_after_a_resume_the_final_line_is_over_the_runs_last_trials(trained, settings, collection_name, capsys):
    runs_dir, _ = trained
    assert main.main(["--instance", collection_name, "--keep", "--trials", "2", "--no-display", "--quiet",
                      "--runs-dir", str(runs_dir)]) == 0
    printed = capsys.readouterr().out
    rewards = RunFolder(runs_dir / collection_name).trials()["reward"]
    assert len(rewards) == 5
    assert f"the run's last 5: mean {rewards.mean():.1f}" in printed


def test_evaluate_refuses_a_preset_the_memory_was_not_trained_with(unchanged, capsys):
    runs_dir, collection_name, _ = unchanged
    assert main.main(["evaluate", "--instance", collection_name, "--preset", "landing", "--episodes", "1",
                      "--runs-dir", str(runs_dir)]) == 2
    error = capsys.readouterr().err
    assert "PRESET (--preset): " in error and "was trained with preset ''" in error


def project_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(PROJECT, copy, ignore=shutil.ignore_patterns(".*", "runs", "tests", "docs", "bench", "__pycache__"))
    return copy


@pytest.mark.parametrize("line, complaint", [
    ("NOISE = 0.1 +", "settings.py, line {n}: invalid syntax"),
    ("NOISE = nois", "settings.py, line {n}: NameError: name 'nois' is not defined"),
])
def test_a_settings_py_that_does_not_run_is_one_message_with_its_line(tmp_path, line, complaint):
    copy = project_copy(tmp_path)
    settings_py = copy / "settings.py"
    lines = settings_py.read_text().splitlines()
    number = next(n for n, text in enumerate(lines, 1) if text.startswith("NOISE ="))
    lines[number - 1] = line
    settings_py.write_text("\n".join(lines) + "\n")
    for command in (["main.py", "--trials", "1"], ["main.py", "evaluate"], ["main.py", "train", "--help"]):
        result = subprocess.run([sys.executable, *command], cwd=copy, capture_output=True, text=True, timeout=120,
                                env={**os.environ, "MILVUS_DATA_DIR": str(tmp_path / "unused")})
        if command[-1] == "--help":
            assert result.returncode == 0 and "see settings.PRESETS" in result.stdout
            continue
        assert result.returncode == 2, result.stderr
        assert complaint.format(n=number) in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
