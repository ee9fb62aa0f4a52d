"""``TrialRecord``: the figures of one finished trial, the row format of every run folder."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import List


@dataclass
class TrialRecord:
    """The figures of one finished trial (one row of a run's ``trials.csv``).

    :param worker: which worker of the species flew it (0 when one process trains).
    :param length: its decisions, an engram each (with ``ACTION_REPEAT``, each held that many frames).
    :param solved: the trial's reward reached the environment's ``spec.reward_threshold``
        (LunarLander: 200, a landing).
    :param end: why it ended (``gym.environments.END_CAUSES``: at_rest, crashed, flew_off, ended,
        timed_out, died).
    :param success: the trial's success in [-1, 1]; ``mean_success`` the running mean after it.
    :param engrams: the memory's engrams once this trial was stored.
    :param neighbour_distance: the mean distance of the neighbours its decisions resonated with.
    :param wall_time: seconds of training up to its end (counted on across resumes).
    """

    trial: int
    worker: int
    lander: int
    reward: float
    length: int
    solved: bool
    end: str
    success: float
    mean_success: float
    engrams: int
    neighbour_distance: float
    noise: float
    epsilon: float
    wall_time: float


def trial_columns() -> List[str]:
    """The columns of ``trials.csv``: the fields of ``TrialRecord``."""
    return [f.name for f in fields(TrialRecord)]
