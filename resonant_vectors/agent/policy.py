"""``Policy``: how landers act — the one decision function of training, evaluation, watching and
the instinct experiment's newcomers.

Why its own module: what a lander does in a situation (the success it aims at, the noise and the
exploration of its trial, then the brain's scores) must be the same wherever it flies, so that
what ``watch`` shows is what ``evaluate`` scores and what training learned. Evaluation is this
policy with its exploration set to zero (``greedy_settings``).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Iterable, Tuple

import numpy as np

from resonant_vectors.agent.brain import Consultation, EngramBrain
from resonant_vectors.agent.credit import trial_epsilon, trial_noise
from resonant_vectors.config import Settings


@dataclass(frozen=True)
class Decision:
    """What the landers do this step, and why.

    :param actions: one action per lander.
    :param consultation: the memory's scores behind them.
    :param query_success: the success the decisions aimed at.
    """

    actions: np.ndarray
    consultation: Consultation
    query_success: float


class Policy:
    """Landers decide by resonance: each situation's resonator aims at the population's running mean
    success plus ``SUCCESS_MARGIN``; the brain scores every action from the memory (with its
    trial's noise); ``choose`` takes the best, or with the trial's ε a random action.

    **Aim.** The running mean is over the last ``SUCCESS_WINDOW`` finished trials
    (``record_success``); ``best_success`` is the best of them all.

    :param brain: the brain whose memory is consulted.
    :param settings: margin, window, noise and ε schedules.
    :param earlier_successes: successes of trials flown before (a resumed run), oldest first.
    """

    def __init__(self, brain: EngramBrain, settings: Settings, earlier_successes: Iterable[float] = ()) -> None:
        self.brain = brain
        self.settings = settings
        self.recent_success: deque = deque(maxlen=settings.success_window)
        self.best_success = -math.inf
        for success in earlier_successes:
            self.record_success(success)

    @property
    def mean_success(self) -> float:
        """The running mean success of the last ``SUCCESS_WINDOW`` trials (0 before any)."""
        return float(np.mean(self.recent_success)) if self.recent_success else 0.0

    def record_success(self, success: float) -> None:
        self.recent_success.append(success)
        self.best_success = max(self.best_success, success)

    def exploration(self, trial: int) -> Tuple[float, float]:
        """The noise std and the ε of a trial, by the schedules (computed once, when it starts)."""
        return trial_noise(trial, self.settings), trial_epsilon(trial, self.settings)

    def act(self, states: np.ndarray, noise: np.ndarray, epsilon: np.ndarray) -> Decision:
        """One decision for each lander (its normalised state and its trial's exploration), in one
        consultation of the memory."""
        query_success = float(np.clip(self.mean_success + self.settings.success_margin, -1.0, 1.0))
        consultation = self.brain.consult(states, query_success, noise)
        return Decision(self.brain.choose(consultation.scores, epsilon), consultation, query_success)


def greedy_settings(settings: Settings) -> Settings:
    """The same settings without exploration: no noise on the scores, no random actions, and the
    best score taken rather than sampled."""
    return settings.replace(noise=0.0, noise_final=None, epsilon=0.0, epsilon_final=None, probabilistic_choice=False)
