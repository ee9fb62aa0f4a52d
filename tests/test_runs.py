"""Each training run leaves a folder people can read, resume, evaluate and compare."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import in_process_loop
from PIL import Image

from resonant_vectors.cli import main
from resonant_vectors.config import Settings, SettingsError
from resonant_vectors.loop.evaluation import evaluate
from resonant_vectors.loop.trainer import Trainer
from resonant_vectors.runs.folder import RunFolder, RunFolderError, compare, plot_comparison, summarise
from resonant_vectors.runs.records import TrialRecord

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture
def trained_run(settings, collection_name, tmp_path):
    """A run of 4 short trials of its own, for the tests that change it."""
    folder = RunFolder(tmp_path / collection_name)
    trainer = Trainer(collection_name, settings=settings.replace(max_trial_length=80), quiet=True, run_folder=folder)
    trainer.train(4)
    return trainer, folder


@pytest.fixture(scope="module")
def kept_run(milvus_data_dir, tmp_path_factory):
    """One run of 4 short trials shared by the tests that only read it: (trainer, folder, its settings)."""
    settings = Settings.from_module(milvus_data_dir=milvus_data_dir, milvus_uri="", display=False, seed=0,
                                    max_trial_length=80, instance_name="kept_run")
    folder = RunFolder(tmp_path_factory.mktemp("kept") / "kept_run")
    with Trainer(settings=settings, quiet=True, run_folder=folder) as trainer:
        trainer.train(4)
    return trainer, folder, settings


def test_a_run_folder_holds_settings_one_row_per_trial_a_summary_and_a_curve(kept_run):
    trainer, folder, settings = kept_run
    trials = pd.read_csv(folder.path / "trials.csv")
    assert list(trials["trial"]) == [0, 1, 2, 3]
    assert json.loads((folder.path / "settings.json").read_text())["noise"] == settings.noise
    summary = json.loads((folder.path / "summary.json").read_text())
    assert summary["trials"] == 4
    assert summary["mean_reward"] == pytest.approx(trials["reward"].mean(), abs=0.01)
    assert summary["best"] == pytest.approx(trials["reward"].max(), abs=0.01)
    assert summary["engrams"] == trainer.store.get_count() == trials["length"].sum()
    assert summary["steps_per_s"] > 0
    with Image.open(folder.path / "learning_curve.png") as image:
        assert image.format == "PNG" and image.size[0] > 100


def test_rows_are_on_disk_as_soon_as_each_trial_finishes(settings, collection_name, tmp_path):
    folder = RunFolder(tmp_path / "live")
    rows_seen = []
    trainer = Trainer(collection_name, settings=settings, quiet=True, run_folder=folder)
    trainer.train(3, callback=lambda record: rows_seen.append(len(folder.trials())))
    assert rows_seen == [1, 2, 3]


def test_resuming_continues_trial_numbers_memory_and_folder(trained_run, settings, collection_name):
    first, folder = trained_run
    resumed = Trainer(collection_name, clear_collection=False, settings=settings, quiet=True, run_folder=folder)
    resumed.train(2)
    assert [record.trial for record in resumed.metrics] == [4, 5]
    assert list(folder.trials()["trial"]) == [0, 1, 2, 3, 4, 5]
    assert resumed.store.get_count() == first.steps_taken + resumed.steps_taken
    assert json.loads((folder.path / "summary.json").read_text())["trials"] == 6


def test_resuming_restores_the_success_window_best_and_wall_time(trained_run, settings, collection_name):
    first, folder = trained_run
    resumed = Trainer(collection_name, clear_collection=False, settings=settings, quiet=True, run_folder=folder)
    assert list(resumed.recent_success) == list(first.recent_success)
    assert resumed.best_success == first.best_success
    resumed.train(1)
    window = [*first.recent_success, resumed.metrics[0].success]
    assert resumed.metrics[0].mean_success == pytest.approx(np.mean(window))  # it aims where the run left off
    assert resumed.metrics[0].wall_time > first.metrics[-1].wall_time


def test_wall_time_goes_on_across_train_calls(settings, collection_name):
    trainer = Trainer(collection_name, settings=settings.replace(max_trial_length=20), quiet=True)
    trainer.train(3)
    started = time.monotonic()
    trainer.train(1)
    assert trainer.metrics[-1].wall_time > time.monotonic() - started  # the first call's time is in it
    assert trainer.metrics[-1].wall_time > trainer.metrics[-2].wall_time


def test_each_resume_keeps_its_settings_and_says_when_it_changes_the_credit_rule(trained_run, settings,
                                                                               collection_name, capsys):
    _, folder = trained_run
    first_settings = (folder.path / "settings.json").read_text()
    changed = settings.replace(outcome_rule="return", discount=0.9)
    Trainer(collection_name, clear_collection=False, settings=changed, quiet=True, run_folder=folder).close()
    assert (folder.path / "settings.json").read_text() == first_settings
    assert json.loads((folder.path / "settings-resume-1.json").read_text())["outcome_rule"] == "return"
    assert folder.settings().discount == 0.9  # evaluate and watch read the latest
    said = capsys.readouterr().err
    assert "changes the credit rule (OUTCOME_RULE 'reward' -> 'return'; DISCOUNT 0.99 -> 0.9)" in said
    Trainer(collection_name, clear_collection=False, settings=changed, quiet=True, run_folder=folder).close()
    assert (folder.path / "settings-resume-2.json").exists()
    assert "credit rule" not in capsys.readouterr().err


def test_training_prints_the_steps_per_second_it_saves(settings, collection_name, tmp_path, capsys,
                                                       main_on_test_server):
    assert main.main(["--instance", collection_name, "--trials", "2", "--no-display", "--quiet", "--runs-dir",
                      str(tmp_path)]) == 0
    saved = json.loads((tmp_path / collection_name / "summary.json").read_text())["steps_per_s"]
    assert f"; {saved:.1f} steps/s" in capsys.readouterr().out


def test_starting_afresh_keeps_the_earlier_run_with_its_memory_and_says_where(trained_run, settings,
                                                                            collection_name, capsys):
    first, folder = trained_run
    first.close()
    engrams = first.store.get_count()
    with Trainer(collection_name, settings=settings, quiet=True, run_folder=folder) as second:
        second.train(1)
    assert list(folder.trials()["trial"]) == [0]
    kept = folder.path.with_name(f"{folder.path.name}_1")
    assert list(RunFolder(kept).trials()["trial"]) == [0, 1, 2, 3]
    assert f"its {engrams} engrams are kept as the instance {kept.name}" in capsys.readouterr().err


def test_evaluation_is_read_only_and_its_figures_are_its_episodes(kept_run):
    trainer, _, settings = kept_run
    before = trainer.store.get_count()
    result = evaluate(settings, episodes=3)
    rewards = np.array(result["rewards"])
    assert result["episodes"] == len(rewards) == 3
    assert result["mean"] == pytest.approx(rewards.mean(), abs=0.01)
    assert result["std"] == pytest.approx(rewards.std(), abs=0.01)
    assert result["solved_rate"] == np.mean(rewards >= 200)
    assert trainer.store.get_count() == before


def test_evaluation_is_noise_free_whatever_noise_the_run_trained_with(kept_run):
    _, _, settings = kept_run

    def actions_of(noise: float, noise_final) -> list:
        actions = []
        evaluate(settings.replace(noise=noise, noise_final=noise_final), 2,
                 on_step=lambda env, action, reward: actions.append(action))
        return actions

    quiet_memory = actions_of(0.0, None)
    assert len(quiet_memory) > 0
    assert actions_of(0.0, None) == quiet_memory
    assert actions_of(0.8, 0.3) == quiet_memory


def test_the_same_evaluation_gives_the_same_figures(kept_run):
    _, _, on_memory = kept_run
    assert evaluate(on_memory, episodes=2) == evaluate(on_memory, episodes=2)


def test_metrics_convert_to_a_dataframe_in_one_call(kept_run):
    trainer, _, _ = kept_run
    frame = trainer.metrics_frame()
    assert len(frame) == 4 and {"reward", "length", "solved", "end", "engrams"} <= set(frame.columns)


def test_compare_tables_two_real_runs_and_overlays_their_curves(kept_run, tmp_path, capsys):
    _, first, settings = kept_run
    settings = settings.replace(instance_name="second_run", max_trial_length=None)
    second = RunFolder(tmp_path / "second_run")
    Trainer("second_run", settings=settings, quiet=True, run_folder=second).train(2)
    assert main.main(["compare", str(first.path), str(second.path), "--plot", str(tmp_path / "both.png")]) == 0
    printed = capsys.readouterr().out
    assert first.path.name in printed and "second_run" in printed and "last100_mean" in printed
    with Image.open(tmp_path / "both.png") as image:
        assert image.format == "PNG"
    assert list(compare([first.path, second.path], tmp_path / "again.png").tables["LunarLander-v3"]["trials"]) \
        == [4, 2]


def flown_run(settings: Settings, folder: RunFolder, trials: int) -> RunFolder:
    """A run folder of a few real trials flown on an in-process memory (no server needed to compare)."""
    loop, _ = in_process_loop(settings)
    with folder.starting(settings, afresh=True):
        pass
    folder.append(loop.run(range(trials)))
    return folder


def test_compare_tables_and_draws_each_environment_apart_with_its_own_solved_line(local_settings, tmp_path,
                                                                                  capsys):
    cart = flown_run(local_settings.replace(env_id="CartPole-v1", population_size=2), RunFolder(tmp_path / "cart"), 2)
    lander = flown_run(local_settings.replace(max_trial_length=40, population_size=2),
                       RunFolder(tmp_path / "lander"), 2)
    assert main.main(["compare", str(cart.path), str(lander.path), "--plot", str(tmp_path / "both.png")]) == 0
    printed = capsys.readouterr().out
    cart_part, lander_part = printed.split("LunarLander-v3 (solved at reward >= 200):")
    assert "CartPole-v1 (solved at reward >= 475):" in cart_part and "cart" in cart_part
    assert "lander" not in cart_part and "cart" not in lander_part.split("learning curves")[0]
    comparison = compare([cart.path, lander.path], tmp_path / "again.png")
    assert {env_id: list(table.index) for env_id, table in comparison.tables.items()} == {
        "CartPole-v1": ["cart"], "LunarLander-v3": ["lander"]}
    panels = [axis for axis in comparison.figure.axes if axis.get_title()]
    assert [axis.get_title() for axis in panels] == ["CartPole-v1", "LunarLander-v3"]
    assert [[line.get_ydata()[0] for line in axis.lines if line.get_label().startswith("solved")] for axis in panels] \
        == [[475], [200]]
    with Image.open(tmp_path / "both.png") as image:
        assert image.format == "PNG"


def test_an_environment_without_a_threshold_gets_a_panel_without_a_solved_line():
    frame = pd.DataFrame({"trial": [0, 1], "reward": [1.0, 2.0], "solved": [False, False]})
    figure = plot_comparison({"Pendulum-v1": {"run": frame}}, {"Pendulum-v1": None})
    panel, = [axis for axis in figure.axes if axis.get_title()]
    assert panel.get_title() == "Pendulum-v1"
    assert not [line for line in panel.lines if line.get_label().startswith("solved")]


def test_a_run_folder_that_does_not_exist_gets_a_clear_error(tmp_path, capsys):
    assert main.main(["compare", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_corrupt_csv_gets_a_clear_error(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "trials.csv").write_bytes(b"trial,reward\n1,2,3,4\n\xff\xfe")
    with pytest.raises(RunFolderError, match="trials.csv"):
        RunFolder(folder).trials()


def test_an_unknown_setting_name_in_a_settings_file_gets_a_clear_error(tmp_path):
    (tmp_path / "settings.json").write_text(json.dumps({**Settings.from_module().as_dict(), "nosie": 0.2}))
    with pytest.raises(SettingsError, match="unknown setting.*nosie"):
        RunFolder(tmp_path).settings()


def test_an_unknown_uppercase_name_in_a_settings_module_gets_a_clear_error():
    import types
    module = types.ModuleType("my_settings")
    module.NOSIE = 0.2
    with pytest.raises(SettingsError, match="unknown setting.*NOSIE"):
        Settings.from_module(module)


def test_summaries_of_no_trials_say_so():
    assert summarise(pd.DataFrame()) == {"trials": 0}


def test_evaluation_never_explores_whatever_the_run_explored_with(kept_run):
    _, _, on_memory = kept_run
    exploring = on_memory.replace(noise=0.5, epsilon=1.0, epsilon_final=0.5, probabilistic_choice=True)
    assert evaluate(exploring, episodes=2) == evaluate(on_memory.replace(noise=0.0), episodes=2)


def test_plotting_a_run_leaves_the_users_matplotlib_backend_alone(tmp_path):
    script = ("import matplotlib; matplotlib.use('svg'); import pandas as pd; "
              "from resonant_vectors.runs.folder import plot_learning_curves; "
              "frame = pd.DataFrame({'trial': [0, 1], 'reward': [1.0, 2.0], 'solved': [False, True]}); "
              "plot_learning_curves({'run': frame}).savefig(r'%s'); print(matplotlib.get_backend())"
              % (tmp_path / "curve.png"))
    plotted = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, timeout=60)
    assert plotted.returncode == 0, plotted.stderr
    assert plotted.stdout.strip() == "svg"
    with Image.open(tmp_path / "curve.png") as image:
        assert image.format == "PNG"


def test_seed_none_means_fresh_entropy_while_an_unset_flag_keeps_settings_py():
    assert Settings.from_module(seed=None).seed is None
    assert Settings.from_module(preset="episodic", noise_final=None).noise_final is None
    assert main.settings_from(vars(main.parse_arguments(["--trials", "3"]))).seed == Settings.from_module().seed


def test_compare_without_plot_writes_under_runs_not_the_current_folder(kept_run, tmp_path, monkeypatch):
    _, folder, _ = kept_run
    monkeypatch.chdir(tmp_path)
    assert main.main(["compare", str(folder.path)]) == 0
    assert (tmp_path / "runs" / "comparison.png").exists() and not (tmp_path / "comparison.png").exists()


def test_a_milvus_token_is_never_written_into_a_run_folder(tmp_path):
    folder = RunFolder(tmp_path / "secret")
    with folder.starting(Settings.from_module(milvus_token="root:hunter2"), afresh=True):
        pass
    assert "hunter2" not in (folder.path / "settings.json").read_text()
    assert folder.settings().milvus_token == Settings.from_module().milvus_token


def test_keep_goes_on_with_the_runs_own_settings_checked_with_the_flags_typed(tmp_path):
    """A species trained with 8 landers resumes with `--keep --workers 2` although settings.py flies
    one lander: the run's settings and the flags are checked together."""
    folder = RunFolder.for_instance("kept_landers", tmp_path)
    with folder.starting(Settings.from_module(instance_name="kept_landers", population_size=8, workers=2,
                                              display=False), afresh=True):
        pass
    flags = ["--instance", "kept_landers", "--keep", "--workers", "2", "--runs-dir", str(tmp_path)]
    resumed = main.training_settings(vars(main.parse_arguments(flags)))
    assert (resumed.population_size, resumed.workers, resumed.drop_collection) == (8, 2, False)
    with pytest.raises(SettingsError, match="WORKERS = 9"):
        main.training_settings(vars(main.parse_arguments([*flags[:4], "9", *flags[5:]])))


def test_settings_py_decides_a_resume_and_a_read_only_start_as_the_flags_do(tmp_path, monkeypatch):
    import settings as settings_module

    folder = RunFolder.for_instance("kept_landers", tmp_path)
    with folder.starting(Settings.from_module(instance_name="kept_landers", population_size=8, display=False),
                         afresh=True):
        pass
    flags = ["--instance", "kept_landers", "--runs-dir", str(tmp_path)]
    monkeypatch.setattr(settings_module, "DROP_COLLECTION", False)  # a resume without --keep
    resumed = main.training_settings(vars(main.parse_arguments(flags)))
    assert (resumed.population_size, resumed.drop_collection) == (8, False)  # never the saved start's drop
    monkeypatch.setattr(settings_module, "READ_ONLY", True)  # read-only wins: settings.py and the flags
    read_only = main.training_settings(vars(main.parse_arguments([*flags, "--keep"])))
    assert read_only.read_only and read_only.population_size == 1
    with pytest.raises(SettingsError, match="READ_ONLY with --join"):
        main.training_settings(vars(main.parse_arguments([*flags, "--join"])))


def test_a_trial_recovered_from_its_engrams_reads_back_with_its_unknown_figures(tmp_path):
    """A worker killed between storing a trial's engrams and writing its row: the row made from the
    engrams knows neither the aim nor the noise, and the run folder reads it back as it is."""
    folder = RunFolder(tmp_path / "recovered")
    folder.path.mkdir()
    folder.append([TrialRecord(trial=3, worker=1, lander=-1, reward=-120.0, length=80, solved=False, end="recovered",
                               success=-0.4, mean_success=float("nan"), engrams=-1, neighbour_distance=float("nan"),
                               noise=float("nan"), epsilon=float("nan"), wall_time=2.0)], worker=1)
    [row] = folder.trials().to_dict("records")
    assert (row["trial"], row["end"], row["reward"]) == (3, "recovered", -120.0)
    assert np.isnan(row["mean_success"]) and np.isnan(row["noise"])
