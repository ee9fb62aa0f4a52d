"""Outcome rules on hand-made trials: known rewards give known outcomes; the noise schedule; presets."""
from __future__ import annotations

import types

import numpy as np
import pytest

from resonant_vectors.agent.credit import (
    discounted_returns,
    n_step_returns,
    novelty,
    step_outcomes,
    trial_epsilon,
    trial_noise,
    value_in_reward_units,
)
from resonant_vectors.config import Settings, SettingsError


def test_the_discounted_return_sums_the_rewards_that_follow_each_step():
    np.testing.assert_allclose(discounted_returns(np.array([1.0, 2.0, 3.0]), 0.5), [2.75, 3.5, 3.0])


def test_the_seed_rule_scales_clips_and_weights_each_steps_own_reward():
    settings = Settings.from_module(outcome_rule="reward", outcome_reward_scale=20.0, success_weight=0.5)
    outcomes = step_outcomes(np.array([10.0, -10.0, -40.0, 100.0]), success=0.5, settings=settings)
    np.testing.assert_allclose(outcomes, [0.5 * 1.25, -0.5 * 1.25, -1.0, 1.0])


def test_the_return_rule_credits_a_step_with_the_landing_that_followed_it():
    settings = Settings.from_module(outcome_rule="return", discount=0.9, outcome_reward_scale=200.0,
                                    success_weight=0.0)
    outcomes = step_outcomes(np.array([0.0, 0.0, 100.0]), success=0.3, settings=settings)
    np.testing.assert_allclose(outcomes, [0.405, 0.45, 0.5])


def test_a_situation_is_as_new_as_its_neighbours_are_far_up_to_the_radius_and_wholly_new_without_any():
    settings = Settings.from_module(novelty_radius=0.2)
    squared_distances = np.array([0.0, 0.01, 0.04, 1.0, np.nan])  # distances 0, 0.1, 0.2, 1, no neighbours
    np.testing.assert_allclose(novelty(squared_distances, settings), [0.0, 0.5, 1.0, 1.0, 1.0])


def test_the_novelty_bonus_credits_the_steps_that_led_somewhere_new():
    settings = Settings.from_module(outcome_rule="return", discount=0.5, outcome_reward_scale=10.0,
                                    success_weight=0.0, novelty_bonus=4.0, novelty_radius=0.1)
    rewards = np.zeros(3)
    familiar, then_new = np.array([0.0, 0.0, 0.0]), np.array([0.0, 0.0, 0.01])  # the last step's neighbours at 0.1
    np.testing.assert_allclose(step_outcomes(rewards, 0.0, settings, distances=familiar), [0.0, 0.0, 0.0])
    np.testing.assert_allclose(step_outcomes(rewards, 0.0, settings, distances=then_new), [0.1, 0.2, 0.4])
    np.testing.assert_allclose(step_outcomes(rewards, 0.0, settings.replace(novelty_bonus=0.0), distances=then_new),
                               [0.0, 0.0, 0.0])


def test_the_noise_falls_linearly_to_its_final_value_then_stays():
    settings = Settings.from_module(noise=0.5, noise_final=0.1, noise_decay_trials=100)
    assert [trial_noise(t, settings) for t in (0, 50, 100, 500)] == pytest.approx([0.5, 0.3, 0.1, 0.1])
    assert trial_noise(500, settings.replace(noise_final=None)) == 0.5


def settings_module(**names) -> types.ModuleType:
    module = types.ModuleType("my_settings")
    module.__dict__.update({name: value for name, value in vars(__import__("settings")).items() if name.isupper()})
    module.__dict__.update(names)
    return module


def test_a_preset_applies_its_values_and_a_flag_still_wins():
    module = settings_module(PRESETS={"sharp": {"NOISE": 0.0, "MIN_RESULTS": 50}}, PRESET="sharp")
    assert (Settings.from_module(module).noise, Settings.from_module(module).min_results) == (0.0, 50)
    assert Settings.from_module(module, min_results=7).min_results == 7
    assert Settings.from_module(module, preset="").min_results == settings_module().MIN_RESULTS


def test_an_unknown_preset_or_credit_rule_gets_a_clear_error():
    with pytest.raises(SettingsError, match="PRESET: unknown preset 'fast'; expected \"\" or one of 'sharp'"):
        Settings.from_module(settings_module(PRESETS={"sharp": {}}), preset="fast")
    with pytest.raises(SettingsError, match="OUTCOME_RULE: expected one of .*got 'returns'") as error:
        Settings.from_module(outcome_rule="returns", neighbour_weighting="nearest", discount=1.5)
    assert "NEIGHBOUR_WEIGHTING" in str(error.value) and "DISCOUNT" in str(error.value)


def test_the_n_step_return_adds_the_memorys_value_of_the_state_n_steps_later():
    values = np.array([0.0, 0.0, 10.0, 20.0])
    np.testing.assert_allclose(n_step_returns(np.ones(4), 0.5, 2, values), [1 + 0.5 + 0.25 * 10, 1 + 0.5 + 0.25 * 20,
                                                                            1.5, 1.0])
    settings = Settings.from_module(outcome_rule="return", discount=0.5, bootstrap_steps=2,
                                    outcome_reward_scale=100.0, success_weight=0.0)
    outcomes = step_outcomes(np.ones(4), 0.0, settings, values=values)  # values in reward units
    np.testing.assert_allclose(outcomes, [0.04, 0.065, 0.015, 0.01])


def test_where_the_memory_knew_nothing_the_n_step_return_is_the_return_itself():
    unknown = np.array([0.0, 0.0, np.nan, np.nan])
    np.testing.assert_allclose(n_step_returns(np.ones(4), 0.5, 2, unknown), discounted_returns(np.ones(4), 0.5))


def test_the_memorys_values_are_taken_back_to_reward_units_undoing_the_success_weighting():
    settings = Settings.from_module(outcome_reward_scale=20.0, success_weight=0.5)
    np.testing.assert_allclose(value_in_reward_units(np.array([0.75, -0.3]), 0.5, settings), [12.0, -4.8])


def test_the_episodic_preset_is_selectable_from_main_py():
    from resonant_vectors.cli.main import parse_arguments, settings_from

    settings = settings_from(vars(parse_arguments(["--preset", "episodic", "--trials", "5", "--noise", "0.2"])))
    assert (settings.preset, settings.outcome_rule, settings.min_results, settings.neighbour_weighting) == \
        ("episodic", "return", 50, "distance")
    assert (settings.trials, settings.noise) == (5, 0.2)  # flags still win over the preset


def test_epsilon_falls_linearly_to_its_final_value_then_stays():
    settings = Settings.from_module(epsilon=1.0, epsilon_final=0.02, epsilon_decay_trials=200)
    assert [trial_epsilon(t, settings) for t in (0, 100, 200, 900)] == pytest.approx([1.0, 0.51, 0.02, 0.02])
    assert trial_epsilon(50, Settings.from_module()) == 0.0  # settings.py: the seed never explores so
