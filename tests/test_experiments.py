"""The learning benchmark and the instinct experiment run end to end (tiny sizes) and report what
the README says they report."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import in_process_loop
from PIL import Image
from test_milvus_server import processes_of, wait_until_stopped

import main
import settings as settings_module
from resonant_vectors.errors import ResonantVectorsError
from resonant_vectors.experiments import doses, kinds
from resonant_vectors.experiments import lab as experiments
from resonant_vectors.memory.milvus.collection import connect
from resonant_vectors.runs.records import trial_columns

PROJECT = Path(__file__).resolve().parent.parent
LEARNING_KEYS = {"train_mean", "last100_mean", "solved_rate", "eval_mean", "eval_std", "eval_solved_rate"}


def test_the_learning_benchmark_reports_each_variant_over_seeds(settings, tmp_path):
    result = experiments.learning_benchmark(["seed", "return"], seeds=[0, 1], trials=6, population=3,
                                            eval_episodes=2, runs_dir=tmp_path, base=settings.replace(max_trial_length=60),
                                            jobs=2)
    for variant, entry in result["variants"].items():
        assert LEARNING_KEYS <= set(entry)
        assert [len(run["rewards"]) for run in entry["seeds"]] == [6, 6]
        assert all(run["blocks"] and sum(run["ends"].values()) == pytest.approx(1.0) for run in entry["seeds"])
        assert all(sum(run["lengths"]) == run["decisions"] for run in entry["seeds"])  # each trial's decisions
        assert entry["train_mean"] == round(sum(run["train_mean"] for run in entry["seeds"]) / 2, 4)
        assert (tmp_path / f"learning_{variant}_s1" / "evaluation.json").exists()
    assert result["variants"]["return"]["settings"] == {"outcome_rule": "return", "outcome_reward_scale": 200.0}
    figure = experiments.plot_learning(result)
    assert [axis.get_xlabel() for axis in figure.axes] == ["trial", "environment frames (mean over seeds at each trial)"]
    experiments.save(result, figure, tmp_path / "learning.json")
    assert json.loads((tmp_path / "learning.json").read_text())["trials"] == 6
    assert Image.open(tmp_path / "learning.png").size[0] > 0


def test_the_instinct_command_compares_newcomers_on_trained_and_empty_memories(milvus_data_dir, tmp_path):
    result_path = tmp_path / "instinct.json"
    earlier_heirs = tmp_path / "instinct_seed_s0_gen2"  # an earlier experiment's second generation
    earlier_heirs.mkdir()
    (earlier_heirs / "trials.csv").write_text(",".join(trial_columns()) + "\n" + "0," * (len(trial_columns()) - 1) + "0\n")
    command = subprocess.run(
        [sys.executable, "main.py", "instinct", "--variant", "seed", "--seeds", "0", "1", "--trials", "6",
         "--population", "3", "--newcomers", "2", "--first-trials", "2", "--second-trials", "3",
         "--runs-dir", str(tmp_path), "--json", str(result_path)],
        cwd=PROJECT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "MILVUS_DATA_DIR": milvus_data_dir, "MILVUS_URI": ""})
    assert command.returncode == 0, command.stderr
    result = json.loads(result_path.read_text())
    assert set(result["groups"]) == {"trained_last", "newcomers_trained_memory", "newcomers_empty_memory",
                                     "similar_trained_memory", "similar_empty_memory"}
    for seed_result in result["per_seed"]:
        assert {group["trials"] for name, group in seed_result.items() if name not in ("seed", "generations")} == {4}
        assert set(seed_result["generations"]) == {"target", "first", "second"}
    heirs = pd.read_csv(tmp_path / "instinct_seed_s0_gen2" / "trials.csv")  # the second generation's own run
    assert sorted(heirs["trial"]) == [0, 1, 2]
    assert (tmp_path / "instinct_seed_s0_gen2.1" / "trials.csv").exists()  # the earlier one, moved aside
    assert result["groups"]["trained_last"]["mean_ci95"] is not None
    for group in result["groups"].values():  # how the group's trials ended, as shares
        assert sum(group["ends"].values()) == pytest.approx(1.0, abs=1e-3)
    assert "newcomers_empty_memory" in command.stdout
    assert Image.open(result_path.with_suffix(".png")).size[0] > 0


def test_the_doses_command_flies_newcomers_on_memories_of_the_first_trials_and_on_an_empty_one(milvus_data_dir,
                                                                                               tmp_path):
    result_path = tmp_path / "doses.json"
    command = subprocess.run(
        [sys.executable, "main.py", "experiment", "doses", "--seeds", "0", "--doses", "3", "12", "--population", "3",
         "--newcomers", "2", "--first-trials", "2", "--runs-dir", str(tmp_path), "--json", str(result_path)],
        cwd=PROJECT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "MILVUS_DATA_DIR": milvus_data_dir, "MILVUS_URI": ""})
    assert command.returncode == 0, command.stderr
    result = json.loads(result_path.read_text())
    trained = pd.read_csv(tmp_path / "doses_steady_s0" / "trials.csv")
    assert sorted(trained["trial"]) == list(range(12))  # one training, for the largest dose
    seed_result, = result["per_seed"]
    assert [row["dose"] for row in seed_result["doses"]] == [3, 12] and seed_result["empty"]["trials"] == 4
    for row in seed_result["doses"]:
        assert row["trials"] == 4 and row["past_landings"] == int(trained[trained["trial"] < row["dose"]]["solved"].sum())
        assert row["benefit"] == pytest.approx(row["mean"] - seed_result["empty"]["mean"], abs=0.01)
    assert result["seeds_held_out"] is False and "past landings" in command.stdout
    assert Image.open(result_path.with_suffix(".png")).size[0] > 0


def test_the_doses_experiment_refuses_a_variant_whose_engrams_it_cannot_read_or_whose_outcomes_change(
        local_settings, tmp_path, monkeypatch):
    monkeypatch.setitem(settings_module.PRESETS, "revaluing", {**settings_module.PRESETS["steady"], "REVALUE_EVERY": 10})
    for variant in ("seed", "revaluing"):
        with pytest.raises(ResonantVectorsError, match="SEARCH_BACKEND must be \"replica\" and REVALUE_EVERY 0"):
            doses.doses_experiment(variant, [0], [3], 1, 1, 1, tmp_path, base=local_settings)
    assert list(tmp_path.iterdir()) == []  # refused before anything was trained


def test_a_memory_of_the_first_trials_holds_exactly_their_engrams(local_settings):
    loop, memory = in_process_loop(local_settings.replace(max_trial_length=20))
    records = loop.run(range(5))
    first_two = doses.memory_of_first_trials(memory.engrams(), 2, local_settings)
    assert first_two.count() == sum(record.length for record in records if record.trial < 2)
    assert set(first_two.engrams().trial) == {0, 1}


def test_a_bench_script_leaves_no_collection_in_the_users_memory(settings, tmp_path):
    users_memory = set(connect(settings).list_collections())
    command = subprocess.run(
        [sys.executable, "bench/learning.py", "--env", "CartPole-v1", "--variants", "landing_rule", "--seeds", "0",
         "--trials", "2", "--population", "1", "--eval-episodes", "1",
         "--runs-dir", str(tmp_path / "runs"), "--json", str(tmp_path / "learning.json")],
        cwd=PROJECT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "MILVUS_DATA_DIR": settings.milvus_data_dir, "MILVUS_URI": ""})
    assert command.returncode == 0, command.stderr
    record = json.loads((tmp_path / "learning.json").read_text())
    assert record["trials"] == 2 and list(record["variants"]) == ["landing_rule"]
    variant, = record["variants"].values()
    run, = variant["seeds"]
    assert variant["search_backend"] == "replica" and record["seeds_held_out"] is False
    assert run["frames"] == run["decisions"] > 0 and run["steps_per_s"] > 0  # CartPole: no action held
    made_meanwhile = set(connect(settings).list_collections()) - users_memory  # (other tests share the server)
    assert not [name for name in made_meanwhile if name.startswith("learning_CartPole")]  # the bench's are elsewhere


def test_a_scratch_memory_is_a_server_of_its_own_stopped_and_removed_afterwards(settings):
    with experiments.scratch_memory(settings) as scratch:
        scratch_folder = Path(scratch.milvus_data_dir)
        assert scratch_folder != Path(settings.milvus_data_dir) and scratch.milvus_uri == ""
        assert connect(scratch).list_collections() == []  # a server of its own, started on first use
        assert processes_of(scratch_folder)
    assert not scratch_folder.exists()
    assert wait_until_stopped(scratch_folder, 10)  # its keeper exits once it stopped the server


def test_the_kinds_command_flies_newcomers_of_every_kind_on_the_trained_memory_and_on_an_empty_one(milvus_data_dir,
                                                                                                   tmp_path):
    result_path = tmp_path / "kinds.json"
    command = subprocess.run(
        [sys.executable, "main.py", "experiment", "kinds", "--seeds", "0", "--trials", "6", "--population", "3",
         "--newcomers", "2", "--first-trials", "1", "--runs-dir", str(tmp_path), "--json", str(result_path)],
        cwd=PROJECT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "MILVUS_DATA_DIR": milvus_data_dir, "MILVUS_URI": ""})
    assert command.returncode == 0, command.stderr
    result = json.loads(result_path.read_text())
    assert sorted(pd.read_csv(tmp_path / "kinds_steady_s0" / "trials.csv")["trial"]) == list(range(6))
    seed_result, = result["per_seed"]
    rows = seed_result["kinds"]
    assert [(row["family"], row["distance"]) for row in rows] == [(kind.family, kind.distance) for kind in kinds.KINDS]
    for row in rows:
        assert row["trained_memory"]["trials"] == row["empty_memory"]["trials"] == 2
        assert row["benefit"] == pytest.approx(row["trained_memory"]["mean"] - row["empty_memory"]["mean"], abs=0.01)
    usual_by_gravity, usual_by_mass = (next(row for row in rows if row["family"] == family and row["distance"] == 0)
                                       for family in ("gravity", "mass"))
    assert usual_by_gravity["trained_memory"] == usual_by_mass["trained_memory"]  # one kind, flown once
    assert rows[-1]["changes"] == {"action_map": kinds.CROSSED_WIRING}
    assert result["seeds_held_out"] is False and "wiring" in command.stdout
    assert Image.open(result_path.with_suffix(".png")).size[0] > 0


def test_the_kinds_experiment_refuses_another_environment_or_a_memory_it_cannot_copy(local_settings, tmp_path):
    with pytest.raises(ResonantVectorsError, match="changes LunarLander's gravity, wind and mass, but variant 'seed' "
                                                   "trains CartPole-v1"):
        kinds.kinds_experiment("seed", [0], 3, 1, 1, 1, tmp_path, base=local_settings.replace(env_id="CartPole-v1"))
    with pytest.raises(ResonantVectorsError, match="SEARCH_BACKEND must be \"replica\" \\(variant 'seed' has 'milvus'"):
        kinds.kinds_experiment("seed", [0], 3, 1, 1, 1, tmp_path, base=local_settings.replace(search_backend="milvus"))
    assert list(tmp_path.iterdir()) == []  # refused before anything was trained


def test_the_generations_command_raises_a_trained_a_control_and_an_isolated_line(milvus_data_dir, tmp_path):
    result_path = tmp_path / "generations.json"
    command = subprocess.run(
        [sys.executable, "main.py", "experiment", "generations", "--seeds", "0", "--generations", "2", "--trials", "3",
         "--test-trials", "2", "--population", "2", "--runs-dir", str(tmp_path), "--json", str(result_path)],
        cwd=PROJECT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "MILVUS_DATA_DIR": milvus_data_dir, "MILVUS_URI": ""})
    assert command.returncode == 0, command.stderr
    result = json.loads(result_path.read_text())
    first, second = result["per_seed"][0]["generations"]
    assert first["trained"] == first["isolated"]  # the same newborns on an empty memory, on the same seeds
    assert first["control"]["trials"] == second["control"]["trials"] == 2

    def trials(folder: str) -> pd.DataFrame:
        return pd.read_csv(tmp_path / f"generations_steady_s0_{folder}" / "trials.csv").sort_values("trial")

    def held_before(folder: str) -> int:
        """The engrams the memory held when the generation stored its first trial."""
        rows = trials(folder)
        return int((rows["engrams"] - rows["length"]).min())

    assert held_before("g1") == trials("g0")["engrams"].max()  # the trained line adds to the species' memory
    assert held_before("isolated_g1") == 0  # a memory of its own: nothing inherited
    assert set(result["by_generation"][1]) == {"generation", "trained", "control", "isolated"}
    assert "isolated" in command.stdout and Image.open(result_path.with_suffix(".png")).size[0] > 0


def test_the_shared_command_trains_landers_on_one_memory_and_as_many_on_a_memory_each(main_on_test_server, tmp_path,
                                                                                      capsys):
    result_path = tmp_path / "shared.json"
    assert main.main(["experiment", "shared", "--seeds", "0", "--landers", "2", "--trials", "3",
                      "--runs-dir", str(tmp_path), "--json", str(result_path)]) == 0
    result = json.loads(result_path.read_text())
    together = pd.read_csv(tmp_path / "shared_steady_s0" / "trials.csv").sort_values("trial")
    assert len(together) == 6 and set(together["lander"]) == {0, 1}  # one memory, two landers at once
    seed_result, = result["per_seed"]
    for lander, figures in enumerate(seed_result["shared"]["landers"]):  # each lander's own trials, in order
        assert figures["rewards"] == pytest.approx(together[together["lander"] == lander]["reward"].head(3).tolist(),
                                                   abs=0.01)
    for lander in (0, 1):
        alone = pd.read_csv(tmp_path / f"shared_steady_s0_alone{lander}" / "trials.csv")
        assert len(alone) == 3 and int((alone["engrams"] - alone["length"]).min()) == 0  # a memory of its own
        assert seed_result["isolated"]["landers"][lander]["rewards"] == pytest.approx(
            alone.sort_values("trial")["reward"].tolist(), abs=0.01)
    for arm, rewards_of in (("shared", lambda lander: together[together["lander"] == lander].head(3)),
                            ("isolated", lambda lander: pd.read_csv(
                                tmp_path / f"shared_steady_s0_alone{lander}" / "trials.csv").sort_values("trial"))):
        for lander, figures in enumerate(seed_result[arm]["landers"]):
            landed = rewards_of(lander)["solved"].tolist()
            assert figures["first_landing"] == (landed.index(True) + 1 if True in landed else None)
            assert figures["rolling_target"] is None  # 3 trials: no window of 20 is full
        assert result["arms"][arm]["rolling_target_censored_mean"] == 3  # counted as all their trials
    assert "isolated" in capsys.readouterr().out and Image.open(result_path.with_suffix(".png")).size[0] > 0
