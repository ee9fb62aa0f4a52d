"""The population loop flies real Gymnasium trials as one vector environment and remembers exactly
one engram per step (on an in-process FAISS memory: no database)."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import in_process_loop

from resonant_vectors.config import Settings, SettingsError
from resonant_vectors.environments.profiles import END_CAUSES, make_env
from resonant_vectors.loop.callbacks import EachTrial, FollowLander, ProgressReport, Revaluation


def test_a_short_run_remembers_exactly_one_engram_per_step(local_settings):
    loop, memory = in_process_loop(local_settings)
    records = loop.run(range(3))
    assert [record.trial for record in records] == [0, 1, 2]
    assert memory.count() == sum(record.length for record in records) == loop.steps == records[-1].engrams


def test_trials_end_at_max_trial_length_as_timed_out(local_settings):
    loop, _ = in_process_loop(local_settings.replace(max_trial_length=5))
    records = loop.run(range(2))
    assert [(record.length, record.end) for record in records] == [(5, "timed_out"), (5, "timed_out")]


def test_running_out_of_hit_points_ends_the_trial_as_a_death(local_settings):
    loop, memory = in_process_loop(local_settings.replace(hit_points=10, metabolic_cost=4.0))
    records = loop.run(range(2))
    assert all(record.end == "died" and record.length <= 4 for record in records)
    assert not memory.engrams().ended.any()  # a death cut the flight short: it is no end of the episode


def test_only_the_environments_own_end_is_remembered_as_an_end(local_settings):
    cut_short, memory = in_process_loop(local_settings.replace(max_trial_length=5))
    cut_short.run(range(2))
    assert not memory.engrams().ended.any()
    flown, memory = in_process_loop(local_settings.replace(use_hit_points=False))
    records = flown.run(range(1))  # a random lander crashes (LunarLander ends the episode) well before 400 steps
    ended = memory.engrams().ended
    assert records[0].length < 400 and ended.sum() == 1 and ended[-1]  # its last step, only
    assert records[0].end in ("crashed", "flew_off", "at_rest")


def test_a_callback_returning_false_stops_once_the_trials_in_flight_end(local_settings):
    loop, _ = in_process_loop(local_settings, callbacks=[EachTrial(lambda record: record.trial < 1)])
    assert len(loop.run(range(10))) == 2


@pytest.mark.parametrize("preset", ["", "steady"], ids=["seed_rule", "steady"])
def test_the_same_seed_flies_the_same_trials(local_settings, preset):
    settings = Settings.from_module(preset=preset, display=False, seed=0, population_size=2,
                                    milvus_data_dir=local_settings.milvus_data_dir)
    runs = []
    for _ in range(2):
        loop, _ = in_process_loop(settings)
        runs.append([(record.trial, record.reward, record.length) for record in loop.run(range(6))])
    assert runs[0] == runs[1]


def test_a_population_shares_one_memory_and_counts_trials_across_landers(local_settings):
    loop, memory = in_process_loop(local_settings.replace(population_size=4))
    records = loop.run(range(10))
    assert sorted(record.trial for record in records) == list(range(10))
    assert {record.lander for record in records} == {0, 1, 2, 3}
    assert memory.count() == sum(record.length for record in records) == loop.steps


def test_each_lander_of_a_population_keeps_its_own_trials(local_settings):
    loop, _ = in_process_loop(local_settings.replace(population_size=3))
    records = loop.run(range(9))
    for lander in range(3):
        own = [record.trial for record in records if record.lander == lander]
        assert own == sorted(own) and own[0] == lander  # the first three trials start together
    assert len(loop.policy.recent_success) == min(9, local_settings.success_window)


def test_alone_trial_0_acts_on_an_empty_memory_and_trial_1_resonates_with_it(local_settings):
    loop, _ = in_process_loop(local_settings)
    first, second = loop.run(range(2))
    assert np.isnan(first.neighbour_distance) and first.engrams == first.length
    assert np.isfinite(second.neighbour_distance)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "LunarLander-v3"])
def test_any_discrete_gymnasium_environment_trains_with_its_own_sizes_and_threshold(local_settings, env_id):
    settings = local_settings.replace(env_id=env_id, population_size=2)
    loop, memory = in_process_loop(settings)
    records = loop.run(range(3))
    assert memory.count() == sum(record.length for record in records)
    assert memory.engrams().vector.shape[1] == settings.resonator_size == settings.environment.state_size + 1
    assert set(memory.engrams().action.tolist()) <= set(range(settings.action_count))
    threshold = settings.environment.solved_at
    assert all(record.solved == (record.reward >= threshold) for record in records)
    assert all(record.end in END_CAUSES for record in records)
    assert all(-1.0 <= record.success <= 1.0 for record in records)


def test_the_resonator_and_actions_follow_the_environment_and_other_sizes_are_refused():
    cart = Settings.from_module(env_id="CartPole-v1")  # settings.py's seed values 9, 4 and 400 stand for its own
    assert (cart.state_vector_size, cart.output_vector_size, cart.max_trial_length) == (9, 4, 400)
    assert (cart.resonator_size, cart.action_count, cart.trial_length) == (5, 2, 500)
    with pytest.raises(SettingsError, match="STATE_VECTOR_SIZE = 7 contradicts ENV_ID = 'CartPole-v1', whose "
                                            "resonators have 5 numbers"):
        Settings.from_module(env_id="CartPole-v1", state_vector_size=7)
    with pytest.raises(SettingsError, match="OUTPUT_VECTOR_SIZE = 3 contradicts ENV_ID = 'CartPole-v1', which has 2"):
        Settings.from_module(env_id="CartPole-v1", output_vector_size=3)
    with pytest.raises(SettingsError, match="STATE_VECTOR_SIZE = 5 contradicts ENV_ID = 'LunarLander-v3'"):
        Settings.from_module(state_vector_size=5)
    assert Settings.from_module(env_id="CartPole-v1", max_trial_length=100).trial_length == 100


@pytest.mark.parametrize("name, value", [("gravity", -5.0), ("enable_wind", True), ("wind_power", 5.0),
                                         ("lander_mass", 2.0)])
def test_lunarlanders_own_settings_are_refused_on_another_environment(name, value):
    with pytest.raises(SettingsError, match=f"{name.upper()}: it is LunarLander's, and CartPole-v1 has no such"):
        Settings.from_module(env_id="CartPole-v1", **{name: value})


def fall(settings: Settings, action: int, steps: int = 30) -> np.ndarray:
    """The lander's state after firing ``action`` for ``steps`` frames from one start."""
    env = make_env(settings.replace(display=False))
    env.reset(seed=3)
    for _ in range(steps):
        observation, *_ = env.step(action)
    env.close()
    return observation


def test_a_heavier_lander_falls_as_fast_but_its_main_engine_lifts_it_less():
    usual, heavy = Settings.from_module(), Settings.from_module(lander_mass=3.0)
    assert fall(heavy, action=0)[3] == pytest.approx(fall(usual, action=0)[3], abs=0.02)  # vertical speed, engines off
    assert fall(heavy, action=2)[3] < fall(usual, action=2)[3] - 0.1


def test_an_action_map_wires_the_brains_actions_to_other_engines():
    crossed = Settings.from_module(action_map=[0, 3, 1, 2])  # "left" fires the right engine, "main" the left, ...
    assert np.array_equal(fall(crossed, action=1), fall(Settings.from_module(), action=3))
    assert np.array_equal(fall(crossed, action=2), fall(Settings.from_module(), action=1))
    with pytest.raises(SettingsError, match=r"ACTION_MAP: expected None .* each of LunarLander-v3's actions 0 … 3 "
                                            r"once.*got \(0, 1, 1, 2\)"):
        Settings.from_module(action_map=[0, 1, 1, 2])


def test_an_unknown_or_unsuitable_environment_is_refused_with_what_to_use():
    with pytest.raises(SettingsError, match="ENV_ID: 'NoSuch-v0' is not a registered Gymnasium environment.*CartPole-v1"):
        Settings.from_module(env_id="NoSuch-v0")
    with pytest.raises(SettingsError, match="ENV_ID: Pendulum-v1: its actions are Box.*expected Discrete actions"):
        Settings.from_module(env_id="Pendulum-v1")


def test_the_lunarlander_success_is_the_seeds_reward_clipped_to_300_over_300():
    success = Settings.from_module().environment.success
    assert [success(r) for r in (-600, -150, 0, 150, 300, 900)] == [-1, -0.5, 0, 0.5, 1, 1]


def test_async_environments_fly_the_same_trials_as_sync_ones(local_settings):
    flown = {}
    for vector_env in ("sync", "async"):
        loop, _ = in_process_loop(local_settings.replace(population_size=2, vector_env=vector_env))
        flown[vector_env] = [(r.trial, r.reward, r.length) for r in loop.run(range(4))]
        loop.envs.close()
    assert flown["sync"] == flown["async"]


def test_re_valuation_during_a_run_keeps_one_engram_per_step(local_settings):
    revaluing = local_settings.replace(search_backend="replica", revalue_every=2, per_action_memory=True,
                                       min_results=10, outcome_rule="return", success_weight=0.0)
    loop, memory = in_process_loop(revaluing)
    credited = []  # the outcomes as each trial left them, before any re-valuation that trial triggers
    loop.callbacks.append(EachTrial(lambda record: credited.append(memory.engrams().outcome.copy()) and None))
    loop.callbacks.append(Revaluation(memory, revaluing, quiet=True))
    records = loop.run(range(4))
    assert memory.count() == sum(record.length for record in records)
    assert not np.array_equal(credited[1], memory.engrams().outcome[:len(credited[1])])  # they were re-valued


def test_one_line_is_printed_per_trial(local_settings, capsys):
    loop, _ = in_process_loop(local_settings, callbacks=[ProgressReport(2)])
    loop.run(range(2))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("trial")]
    assert len(lines) == 2 and "reward" in lines[0] and "engrams" in lines[0]


def test_a_followed_lander_is_seen_at_every_step_it_flies(local_settings):
    seen = []
    loop, _ = in_process_loop(local_settings.replace(population_size=2),
                              callbacks=[FollowLander(lambda env, action, reward: seen.append(reward), lander=1)])
    records = loop.run(range(3))
    assert len(seen) == sum(record.length for record in records if record.lander == 1)


def test_a_held_action_is_one_decision_of_several_frames_with_their_rewards_summed(local_settings):
    from resonant_vectors.environments.profiles import ActionRepeat, make_env

    held, frames = ActionRepeat(make_env(local_settings), 3), make_env(local_settings)
    held.reset(seed=5)
    frames.reset(seed=5)
    observation, reward, *_ = held.step(2)
    rewards = []
    for _ in range(3):
        expected, frame_reward, *_ = frames.step(2)
        rewards.append(frame_reward)
    np.testing.assert_allclose(observation, expected)
    assert reward == pytest.approx(sum(rewards))


def test_with_action_repeat_a_trial_of_20_frames_is_5_decisions_and_engrams(local_settings):
    loop, memory = in_process_loop(local_settings.replace(action_repeat=4, max_trial_length=20))
    records = loop.run(range(2))
    assert [(record.length, record.end) for record in records] == [(5, "timed_out"), (5, "timed_out")]
    assert memory.count() == 10


def test_frames_count_what_the_environment_stepped_where_decisions_are_held(local_settings):
    held, _ = in_process_loop(local_settings.replace(action_repeat=4, max_trial_length=22))
    held.run(range(2))  # each trial: five decisions of 4 frames, and a sixth cut off after 2
    every_frame, _ = in_process_loop(local_settings.replace(max_trial_length=22))
    every_frame.run(range(2))
    assert (held.steps, held.frames) == (12, 44)
    assert (every_frame.steps, every_frame.frames) == (44, 44)
