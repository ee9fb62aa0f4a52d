"""Recovery: the trials a killed worker stored in the memory but never wrote down, recorded from its engrams."""
from __future__ import annotations

from typing import Dict, List

import pandas as pd

from resonant_vectors.config import Settings
from resonant_vectors.memory.lifecycle import InstanceMemory
from resonant_vectors.runs.folder import RunFolder
from resonant_vectors.runs.records import TrialRecord, trial_columns

RECOVERED = "recovered"        # the end cause of a trial recorded from its engrams after its worker died


def unrecorded_trials(folder: RunFolder, memory: InstanceMemory, settings: Settings) -> Dict[int, List[TrialRecord]]:
    """For each worker of the run folder that did not end cleanly (and whose process is gone): the
    trials whose engrams it stored but whose rows it had not written when it died, as records made
    from the engrams (end ``recovered``); worker -> records. Reads only: see ``recover_unrecorded_trials``."""
    recorded = folder.trials() if folder.path.is_dir() else pd.DataFrame(columns=trial_columns())
    wall_time = float(recorded["wall_time"].max()) if len(recorded) else 0.0
    found = {}
    for worker, writer in folder.unclean_workers().items():
        own = set(recorded.loc[recorded["worker"] == worker, "trial"].astype(int)) if "worker" in recorded else set()
        steps = pd.concat([pd.DataFrame({"trial": page.trial, "reward": page.reward}) for page in
                           memory.written_by(writer)] or [pd.DataFrame(columns=["trial", "reward"])])
        missing = steps[~steps["trial"].isin(own)].groupby("trial")["reward"].agg(["sum", "count"])
        found[worker] = [_recovered(int(trial), worker, float(row["sum"]), int(row["count"]), wall_time, settings)
                         for trial, row in missing.iterrows()]
    return found


def recover_unrecorded_trials(folder: RunFolder, memory: InstanceMemory, settings: Settings) -> int:
    """Write down ``unrecorded_trials`` and mark those workers clean; returns how many trials. Afterwards
    the memory and the run folder agree, engram for step."""
    recovered = unrecorded_trials(folder, memory, settings)
    for worker, records in recovered.items():
        if records:
            folder.append(records, worker)
        folder.worker_ended(worker)
    return sum(len(records) for records in recovered.values())


def _recovered(trial: int, worker: int, reward: float, length: int, wall_time: float, settings: Settings
               ) -> TrialRecord:
    environment = settings.environment
    return TrialRecord(trial=trial, worker=worker, lander=-1, reward=reward, length=length,
                       solved=environment.solved(reward), end=RECOVERED, success=environment.success(reward),
                       mean_success=float("nan"), engrams=-1, neighbour_distance=float("nan"), noise=float("nan"),
                       epsilon=float("nan"), wall_time=wall_time)
