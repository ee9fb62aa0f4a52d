"""The resonator is the weighted, normalised state with the success appended."""
from __future__ import annotations

import numpy as np
import pytest

from gym.lander_environment import normalise
from resonant_vectors.agent.resonators import WeightedResonatorFactory
from resonant_vectors.config import Settings, SettingsError


def test_resonator_is_weights_times_state_then_success():
    factory = WeightedResonatorFactory([1, 2, 3, 4, 5, 6, 7, 8])
    resonator = factory.make_resonator([1, 1, 1, 1, 0.5, 0.5, 0, 1], success=0.25)
    np.testing.assert_allclose(resonator, [1, 2, 3, 4, 2.5, 3, 0, 8, 0.25])
    assert resonator.dtype == np.float32


def test_many_resonators_are_made_row_by_row_with_their_own_success():
    factory = WeightedResonatorFactory([2.0] * 8)
    states = np.arange(16, dtype=np.float32).reshape(2, 8)
    resonators = factory.make_resonators(states, np.array([-1.0, 1.0]))
    np.testing.assert_allclose(resonators[:, :8], states * 2)
    np.testing.assert_allclose(resonators[:, 8], [-1.0, 1.0])


def test_a_state_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match=r"expected \(n, 8\)"):
        WeightedResonatorFactory([1.0] * 8).make_resonator([1.0] * 7, 0.0)


@pytest.mark.parametrize("weights", [[1.0] * 7, [1.0] * 9, [1.0] * 7 + [float("nan")], "heavy"])
def test_weights_of_the_wrong_length_or_kind_are_refused_at_the_settings(weights):
    with pytest.raises(SettingsError, match=r"VECTOR_COMPONENT_WEIGHTS: expected None \(all 1\) or 8 finite numbers"):
        Settings.from_module(vector_component_weights=weights)


def test_the_factory_refuses_weights_that_are_not_numbers():
    with pytest.raises(ValueError, match="expected"):
        WeightedResonatorFactory(["a", "b"])


def test_observations_are_normalised_by_the_documented_scales():
    raw = np.array([1.5, -3.0, 5.0, -10.0, np.pi, 2.5, 1.0, 0.0])
    np.testing.assert_allclose(normalise(raw), [1, -2, 1, -2, 1, 0.5, 1, 0], rtol=1e-6)
