"""Every command tells the truth: reading never creates, bad arguments stop before anything starts,
errors are one clear line, and watch shows the flight that evaluate scores."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from PIL import Image

from resonant_vectors.cli import main
from resonant_vectors.config import Settings
from resonant_vectors.errors import EmptyMemoryWarning
from resonant_vectors.loop.evaluation import evaluate
from resonant_vectors.loop.trainer import Trainer
from resonant_vectors.loop.watching import fly
from resonant_vectors.memory.lifecycle import InstanceMemory
from resonant_vectors.memory.milvus.collection import connect
from resonant_vectors.memory.store import MemoryNotFoundError
from resonant_vectors.runs.folder import RunFolder

PROJECT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("main_on_test_server")


@pytest.fixture(scope="module")
def short_memory(milvus_data_dir, tmp_path_factory):
    """A memory of 3 short trials (its run folder beside it), for the commands that read one."""
    settings = Settings.from_module(milvus_data_dir=milvus_data_dir, milvus_uri="", display=False, seed=0,
                                    max_trial_length=60, instance_name="commands_memory")
    runs_dir = tmp_path_factory.mktemp("command_runs")
    with Trainer(settings=settings, quiet=True, run_folder=RunFolder.for_instance("commands_memory", runs_dir)) as t:
        t.train(3)
    return settings, runs_dir


def memory_flags(settings, runs_dir) -> list:
    return ["--runs-dir", str(runs_dir)]


@pytest.mark.parametrize("command", [["evaluate", "--episodes", "1"], ["watch", "--gif", "{tmp}/x.gif"],
                                     ["train", "--read-only", "--trials", "1"]], ids=["evaluate", "watch", "read_only"])
def test_reading_a_memory_that_does_not_exist_names_the_instances_and_creates_nothing(
        command, short_memory, tmp_path, capsys):
    settings, _ = short_memory
    argv = [part.format(tmp=tmp_path) for part in command] + ["--instance", "nosuch"]
    assert main.main(argv + memory_flags(settings, tmp_path)) == 2
    error = capsys.readouterr().err
    assert "no memory named 'nosuch'" in error and "commands_memory" in error
    assert not connect(settings).has_collection("nosuch")
    assert list(tmp_path.iterdir()) == []


def test_newcomers_on_a_memory_that_does_not_exist_are_refused(short_memory):
    settings, _ = short_memory
    with pytest.raises(MemoryNotFoundError, match="no memory named 'nosuch_either'.*commands_memory"):
        Trainer(settings=settings.replace(instance_name="nosuch_either", read_only=True, population_size=2))
    assert not connect(settings).has_collection("nosuch_either")


@pytest.mark.parametrize("argv, flag", [
    (["evaluate", "--episodes", "0"], "--episodes"), (["evaluate", "--episodes", "-1"], "--episodes"),
    (["watch", "--episodes", "0"], "--episodes"), (["watch", "--gif", "/missing/dir/x.gif"], "--gif"),
    (["--trials", "-1"], "--trials")])
def test_bad_arguments_are_refused_by_their_flag_before_anything_starts(argv, flag, capsys):
    with pytest.raises(SystemExit) as stop:
        main.main(argv + ["--milvus-uri", "http://nothing.invalid:1"])  # a server would be an error of its own
    assert stop.value.code == 2
    assert f"argument {flag}: " in capsys.readouterr().err


def test_a_failed_evaluation_keeps_the_saved_evaluation(short_memory, capsys):
    settings, runs_dir = short_memory
    saved = runs_dir / "nosuch_evaluated"
    saved.mkdir()
    (saved / "evaluation.json").write_text('{"mean": 123.0}')
    assert main.main(["evaluate", "--instance", "nosuch_evaluated"] + memory_flags(settings, runs_dir)) == 2
    with pytest.raises(SystemExit):
        main.main(["evaluate", "--instance", "nosuch_evaluated", "--episodes", "0"] + memory_flags(settings, runs_dir))
    assert (saved / "evaluation.json").read_text() == '{"mean": 123.0}'


def test_evaluate_shows_progress_and_saves_beside_the_run(short_memory, capsys):
    settings, runs_dir = short_memory
    assert main.main(["evaluate", "--instance", "commands_memory", "--episodes", "2"]
                     + memory_flags(settings, runs_dir)) == 0
    printed = capsys.readouterr()
    assert "evaluating commands_memory" in printed.err and "2/2" in printed.err
    assert json.loads((runs_dir / "commands_memory" / "evaluation.json").read_text())["episodes"] == 2


def test_watch_flies_what_evaluate_scores(short_memory, tmp_path):
    settings, _ = short_memory
    steps = []
    scored = evaluate(settings, 2, first_seed=7, on_step=lambda env, action, reward: steps.append(action))
    watched = fly("commands_memory", 2, str(tmp_path / "flight.gif"), seed=7, settings=settings)
    assert watched == scored["rewards"]
    with Image.open(tmp_path / "flight.gif") as gif:
        assert gif.n_frames == len(steps) <= 2 * settings.max_trial_length  # the same steps, the step limit kept


@pytest.fixture(scope="module")
def empty_memory(short_memory):
    """A memory that exists on the test server and holds no engrams."""
    settings, runs_dir = short_memory
    empty = settings.replace(instance_name="empty_memory", max_trial_length=30)
    memory = InstanceMemory(empty)
    memory.open_kept()
    memory.close()
    return empty, runs_dir


def test_evaluating_an_empty_memory_warns_in_one_line_what_to_do(empty_memory, capsys):
    settings, runs_dir = empty_memory
    assert main.main(["evaluate", "--instance", "empty_memory", "--episodes", "1"] + memory_flags(settings, runs_dir)) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line.lower()]
    assert warned == ["warning: the memory 'empty_memory' holds no engrams, so every decision read from it is a "
                      "guess. Train it first: python main.py --instance empty_memory --trials 100"]


def test_watching_an_empty_memory_warns_and_a_trained_one_does_not(empty_memory, short_memory, tmp_path):
    empty, _ = empty_memory
    with pytest.warns(EmptyMemoryWarning, match="'empty_memory' holds no engrams"):
        fly("empty_memory", 1, str(tmp_path / "empty.gif"), settings=empty)
    trained, _ = short_memory
    with warnings.catch_warnings():
        warnings.simplefilter("error", EmptyMemoryWarning)
        fly("commands_memory", 1, str(tmp_path / "trained.gif"), settings=trained)


@pytest.fixture(scope="module")
def cart_memory(milvus_data_dir, tmp_path_factory) -> Path:
    """A CartPole memory of 2 trials (CartPole's renderer starts all of pygame, display included)."""
    settings = Settings.from_module(milvus_data_dir=milvus_data_dir, milvus_uri="", display=False, seed=0,
                                    env_id="CartPole-v1", population_size=2, instance_name="cart_watched")
    runs_dir = tmp_path_factory.mktemp("cart_runs")
    with Trainer(settings=settings, quiet=True, run_folder=RunFolder.for_instance("cart_watched", runs_dir)) as t:
        t.train(2)
    return runs_dir


def test_recording_a_flight_without_a_display_prints_no_display_library_errors(cart_memory, milvus_data_dir,
                                                                               tmp_path):
    without_sdl = {name: value for name, value in os.environ.items() if not name.startswith("SDL_")}
    headless = {"DISPLAY": "", "WAYLAND_DISPLAY": "", "XDG_RUNTIME_DIR": "", "MILVUS_DATA_DIR": milvus_data_dir,
                "MILVUS_URI": ""}
    result = subprocess.run([sys.executable, "main.py", "watch", "--instance", "cart_watched", "--gif",
                             str(tmp_path / "cart.gif"), "--runs-dir", str(cart_memory)], cwd=PROJECT,
                            capture_output=True, text=True, timeout=120, env={**without_sdl, **headless})
    assert result.returncode == 0, result.stderr
    assert "XDG_RUNTIME_DIR" not in result.stderr and "ALSA" not in result.stderr
    assert (tmp_path / "cart.gif").exists()


def project_copy(tmp_path: Path) -> Path:
    """The project's Python files in a folder of their own, to run with a settings.py of the test's."""
    copy = tmp_path / "project"
    shutil.copytree(PROJECT, copy, ignore=shutil.ignore_patterns(".*", "runs", "tests", "docs", "__pycache__"))
    return copy


def run(arguments: list, cwd: Path, **environment) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *arguments], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **environment})


def test_hello_milvus_with_a_bad_settings_py_says_what_is_wrong_in_one_message(tmp_path):
    copy = project_copy(tmp_path)
    settings_py = copy / "settings.py"
    settings_py.write_text(settings_py.read_text().replace("\nNOISE = 0.1", "\nNOISE = -0.1"))
    result = run(["hello_milvus.py"], copy)
    assert result.returncode == 2
    assert result.stderr.startswith("error: invalid settings:")
    assert "NOISE (settings.py, line " in result.stderr and "): expected a finite number >= 0" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_value_in_settings_py_is_named_with_its_line_never_blamed_on_a_flag(tmp_path):
    copy = project_copy(tmp_path)
    settings_py = copy / "settings.py"
    lines = settings_py.read_text().splitlines()
    line = next(number for number, text in enumerate(lines, 1) if text.startswith("NOISE_DECAY_TRIALS ="))
    lines[line - 1] = "NOISE_DECAY_TRIALS = -5"
    settings_py.write_text("\n".join(lines) + "\n")
    result = run(["main.py", "--trials", "3", "--no-display"], copy, MILVUS_DATA_DIR=str(tmp_path / "unused"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"NOISE_DECAY_TRIALS (settings.py, line {line}): expected a whole number >= 1, got -5" in result.stderr
    assert "--trials" not in result.stderr  # TRIALS was typed; NOISE_DECAY_TRIALS only ends with its name
    assert not (tmp_path / "unused").exists()


@pytest.mark.parametrize("arguments", [["gym/lander.py"], ["main.py", "watch"]], ids=["lander_py", "main_watch"])
def test_watching_without_a_display_says_so_in_one_line(arguments, tmp_path):
    result = run(arguments, PROJECT, DISPLAY="", WAYLAND_DISPLAY="", MILVUS_DATA_DIR=str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: no display here to open a window; pass --gif FILE to record the flight instead"]


@pytest.mark.parametrize("arguments", [["bench/learning.py", "--eval-episodes", "0"],
                                       ["bench/instinct.py", "--newcomers", "0"]], ids=["learning", "instinct"])
def test_the_benchmarks_refuse_bad_arguments_in_one_line(arguments):
    result = run(arguments, PROJECT)
    assert result.returncode == 2 and "expected a whole number >= 1, got 0" in result.stderr
    assert "Traceback" not in result.stderr


def test_another_environment_trains_evaluates_watches_compares_and_resumes(milvus_data_dir, tmp_path, capsys):
    runs = ["--runs-dir", str(tmp_path)]
    assert main.main(["--env", "CartPole-v1", "--instance", "cart", "--trials", "6", "--population", "2",
                      "--no-display", "--quiet", *runs]) == 0
    assert main.main(["evaluate", "--instance", "cart", "--episodes", "2", *runs]) == 0  # the run's environment
    assert "solved (reward >= 475)" in capsys.readouterr().out
    assert main.main(["watch", "--instance", "cart", "--gif", str(tmp_path / "cart.gif"), *runs]) == 0
    with Image.open(tmp_path / "cart.gif") as gif:
        assert gif.n_frames > 1
    assert main.main(["--instance", "cart", "--keep", "--trials", "2", "--no-display", "--quiet", *runs]) == 0
    assert main.main(["compare", str(tmp_path / "cart"), "--plot", str(tmp_path / "cart.png")]) == 0
    trials = RunFolder(tmp_path / "cart").trials()
    assert list(trials["trial"].sort_values()) == list(range(8))
    assert json.loads((tmp_path / "cart" / "settings-resume-1.json").read_text())["env_id"] == "CartPole-v1"
