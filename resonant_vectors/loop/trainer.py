"""``Trainer``: Gymnasium trials that teach an ``EngramBrain`` by leaving engrams in its memory."""
from __future__ import annotations

import warnings
from dataclasses import asdict
from typing import TYPE_CHECKING, Callable, List, Optional

import gymnasium
import numpy as np
import pandas as pd

from resonant_vectors.agent.brain import EngramBrain
from resonant_vectors.agent.credit import Flight
from resonant_vectors.agent.policy import Policy
from resonant_vectors.config import Settings
from resonant_vectors.environments.display import render_mode_for
from resonant_vectors.environments.profiles import make_population
from resonant_vectors.errors import ResonantVectorsWarning
from resonant_vectors.loop.callbacks import (
    BookLog,
    FollowLander,
    Heartbeat,
    ProgressReport,
    Revaluation,
    RunFolderLog,
    StopOnSignal,
    TrainCallback,
    as_callbacks,
)
from resonant_vectors.loop.population import PopulationLoop, remembering
from resonant_vectors.loop.tensorboard import TensorBoardLog, require_writer
from resonant_vectors.memory.claims import CollectionClaim
from resonant_vectors.memory.ledger import ONE_PROCESS
from resonant_vectors.memory.lifecycle import InstanceMemory
from resonant_vectors.memory.milvus.collection import EngramsNotStoredError, MilvusUnavailableError, release_unused_server
from resonant_vectors.memory.seam import EngramColumns, next_in_namespace
from resonant_vectors.runs.folder import RunFolder, Start
from resonant_vectors.runs.records import TrialRecord, trial_columns
from resonant_vectors.runs.shared_rows import share_on_leaving
from resonant_vectors.runs.starts import open_for_training

if TYPE_CHECKING:
    from resonant_vectors.memory.ledger import SpeciesWorker


class Trainer:
    """Trains an ``EngramBrain`` on a Gymnasium environment (``ENV_ID``; the seed's LunarLander-v3
    by default) by trial and memory.

    **A trial.** A lander starts with ``HIT_POINTS``; each step it asks the brain for an action
    (aiming at the population's running mean success + ``SUCCESS_MARGIN``), acts, and queues
    (state, action, reward). With ``USE_HIT_POINTS``, each step costs ``reward - METABOLIC_COST``
    hit points and falling below 0 ends the trial as a death. A trial also ends when the
    environment ends it (LunarLander: the lander crashed, flew off or came to rest), or after
    ``MAX_TRIAL_LENGTH`` steps. Each trial's record says how it ended (``end``).

    **Memory.** When a trial ends its queue is flushed in one insert (``credit.trial_engrams``):
    each step becomes an engram whose vector carries the trial's success (for LunarLander
    ``s = clip(reward, ±300) / 300``) and whose outcome is
    ``clip(clip(r / OUTCOME_REWARD_SCALE, ±1) · (1 + SUCCESS_WEIGHT · s), ±1)``, where ``r`` is the
    step's reward, or with ``OUTCOME_RULE = "return"`` the discounted return from that step to the
    trial's end (``DISCOUNT``). With ``READ_ONLY`` nothing is stored (and the collection is never
    dropped). ``NOISE_FINAL`` and ``EPSILON_FINAL`` turn exploration into schedules over trial numbers.

    **Population.** ``POPULATION_SIZE`` landers fly at once on one shared memory, as one
    ``gymnasium.vector`` environment (``population.PopulationLoop``), each with its own trial, hit
    points and queue; each step makes one consultation of the memory for all of them. Success
    statistics (the running mean over ``SUCCESS_WINDOW`` trials and the best) are the population's.
    Size 1 is the seed's behaviour: every search sees the previous trial's engrams ("Session");
    a population's Milvus searches do not wait for the latest inserts (``engram.consistency_for``).

    **Metrics.** ``metrics`` holds a ``population.TrialRecord`` per finished trial
    (``metrics_frame()`` gives a pandas DataFrame); one line is printed per trial under a progress
    bar, unless ``quiet``. With a ``run_folder``, each trial is appended to its CSV as it finishes
    and the summary and learning curve are written when ``train`` returns (or fails); with
    ``TENSORBOARD`` on, each trial's figures also go to its TensorBoard events (``loop.tensorboard``).

    **Faults.** Requests to a Milvus that is down or restarting are retried for
    ``MILVUS_RETRY_TIMEOUT`` seconds, so a restart costs a pause, not the run. If it stays down,
    ``train`` raises ``MilvusUnavailableError``: the trials in flight are lost, and engrams of
    finished trials that could not be stored are kept (``unstored``, and the run folder's
    ``unstored_engrams.jsonl``) and stored first when training resumes. One Trainer at a time may
    write a collection (``CollectionInUseError`` for a second one on the same machine).

    **A start that fails loses nothing.** Everything that can fail is done or checked before the
    memory is touched: the settings, the collection claim, the environments, the connection and an
    existing collection's schema, the run folder (writable; a resume's ``trials.csv`` read). A
    fresh start drops the memory last, and if that fails the run folder is put back as it was.

    **Reading never creates.** A read-only Trainer on a collection that does not exist raises
    ``MemoryNotFoundError`` naming the collections that do; nothing is created.

    **Resume.** Keeping the collection (``clear_collection=False``) keeps the memory; with a run
    folder, training continues where it stopped: trial numbers go on after the last trial saved
    there, the success window and best come back from its ``trials.csv``, and ``wall_time`` goes on
    counting. Starting afresh on a run folder keeps the run before it, memory and folder, as the
    instance ``<name>_1`` (``runs.starts``; ``KEPT_RUNS`` of them) and says so; an explicit
    ``clear_collection=True``, or no run folder, drops the memory, as the seed did.

    **Closing.** ``close()`` (or leaving ``with Trainer(...) as trainer:``) seals the engrams,
    closes the environments and frees the collection for another Trainer.

    :param instance_name: names the run and its collection (``INSTANCE_NAME``).
    :param clear_collection: start from an empty memory (``DROP_COLLECTION``); ``True``, typed, drops
        the earlier memory for good (the seed's meaning), where a run folder would otherwise keep it.
    :param settings: the run's settings; ``settings.py`` by default.
    :param quiet: print nothing per trial and show no progress bar.
    :param run_folder: where to save the run (see ``runs.folder``); nothing is saved without one (nor
        when ``READ_ONLY``).
    :param on_step: called after each step of lander 0 with its environment, the action and the
        reward: how ``watch`` records the very flight that ``evaluate`` scores.
    :param render_mode: lander 0's render mode (``"human"``, ``"rgb_array"``); by default a window
        when ``DISPLAY`` is on and there is a display.
    :param species: this Trainer is a worker of a species (``resonant_vectors.species``): it joins the memory (never
        drops it), numbers its trials in its own namespace, follows the species' progress (both
        ``memory.ledger.SpeciesWorker``), writes its own trials file, and
        draws its decisions from ``default_rng([SEED, worker])``.
    :param clock_offset: seconds of training before this Trainer's first trial (a species' worker
        counts from its run's); by default the run folder's last ``wall_time``.
    """

    def __init__(self, instance_name: Optional[str] = None, clear_collection: Optional[bool] = None,
                 settings: Optional[Settings] = None, quiet: bool = False,
                 run_folder: Optional[RunFolder] = None,
                 on_step: Optional[Callable[[gymnasium.Env, int, float], None]] = None,
                 render_mode: Optional[str] = None, species: Optional["SpeciesWorker"] = None,
                 clock_offset: Optional[float] = None) -> None:
        settings = (settings or Settings.from_module()).replace(
            **{k: v for k, v in (("instance_name", instance_name), ("drop_collection", clear_collection))
               if v is not None})
        self.settings = settings
        self._drop_earlier = clear_collection is True  # asked by name: the seed's clear_collection=True
        self.quiet = quiet
        self.on_step = on_step
        self.run_folder = None if settings.read_only else run_folder
        self.metrics: List[TrialRecord] = []
        self.steps_taken = 0                # decisions, over every train() call
        self.frames_taken = 0               # the environment frames they were held for (ACTION_REPEAT)
        self.steps_per_s = float("nan")     # of the last train() call: the rate printed and saved
        self.trials_per_min = float("nan")
        self.unstored = EngramColumns.empty(settings.resonator_size)
        self.species = species
        self.worker = 0 if species is None else species.index
        self._milvus_failed = False
        self._claim = None if settings.read_only or species is not None else CollectionClaim.take(settings)
        try:
            self._start(render_mode, clock_offset)
        except BaseException:
            self._abandon()  # a Trainer that failed to start keeps neither the collection nor the server
            raise

    def _start(self, render_mode: Optional[str], clock_offset: Optional[float]) -> None:
        """Everything that can fail first; the memory's drop (a fresh start's) last."""
        settings = self.settings
        if self._logs_tensorboard:
            require_writer()
        elif settings.tensorboard:
            warnings.warn(ResonantVectorsWarning(
                "TENSORBOARD is on, but this training saves no run folder (it is read-only, or its Trainer was made "
                "without run_folder), so no events are written. Give it a run folder "
                "(run_folder=RunFolder.for_instance(name)), or set TENSORBOARD = False."), stacklevel=3)
        self.envs = make_population(settings, settings.population_size, render_mode or render_mode_for(settings.display))
        start = self._open_store()
        self.rng = np.random.default_rng(settings.seed if settings.seed is None or self.worker == 0
                                         else [settings.seed, self.worker])
        self.brain = EngramBrain.from_settings(settings, self.store, self.rng)
        own = start.earlier[start.earlier["worker"] == self.worker] if "worker" in start.earlier else start.earlier
        self.policy = Policy(self.brain, settings, own["success"].astype(float))
        self.engram_count = self.store.get_count()
        self._teach = remembering(self.store.memory, self.brain.resonator_factory, settings, self.engram_count)
        self.unstored = start.unstored
        self._earlier = list(zip(start.earlier["reward"].astype(float), start.earlier["solved"].astype(bool))) \
            if "solved" in start.earlier else []
        self._trained_seconds = clock_offset if clock_offset is not None else \
            float(start.earlier["wall_time"].max()) if len(start.earlier) else 0.0
        self.next_trial = next_in_namespace(0, start.earlier["trial"].astype(int))
        self._progress_at = (len(start.earlier), self.next_trial)  # the run's trials before, and the next number
        if self.run_folder is not None:
            self.run_folder.worker_started(self.worker, self.memory.writer)

    def _open_store(self) -> Start:
        """Open the memory (``memory.lifecycle.InstanceMemory``): a reader only an existing one, a
        species' worker the species' one, a training as ``runs.starts.open_for_training`` says.
        Returns what the run folder knew."""
        settings = self.settings
        if settings.read_only or self.species is not None:
            self.memory = InstanceMemory.to_read(settings) if settings.read_only else InstanceMemory.existing(settings)
            start = Start(self.run_folder.trials() if self.run_folder is not None and self.run_folder.path.is_dir()
                          else pd.DataFrame(columns=trial_columns()), EngramColumns.empty(settings.resonator_size))
        else:
            self.memory, start = open_for_training(settings, self.run_folder, drop=self._drop_earlier,
                                                   alive_as=ONE_PROCESS)
        self.store = self.memory.store
        return start

    def _abandon(self) -> None:
        if hasattr(self, "envs"):
            self.envs.close()
        if hasattr(self, "memory"):
            self.memory.close()
        else:
            release_unused_server(self.settings)  # connecting made this process a user of the server
        self._release_claim()

    def __enter__(self) -> "Trainer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def mean_success(self) -> float:
        """The running mean success of the last ``SUCCESS_WINDOW`` trials (0 before any)."""
        return self.policy.mean_success

    @property
    def recent_success(self):
        """The successes of the last ``SUCCESS_WINDOW`` trials, oldest first."""
        return self.policy.recent_success

    @property
    def best_success(self) -> float:
        return self.policy.best_success

    def train(self, trials: int, callback: TrainCallback = None) -> float:
        """Run ``trials`` trials (counted across the population) and return their mean reward.

        :param callback: a function called with each finished trial's record, a ``TrialCallback``
            (``on_start``, ``on_step``, ``on_trial_end``, ``on_end``), or a list of either; a ``False``
            from a function, an ``on_step`` or an ``on_trial_end`` stops training once the trials in
            flight have finished.
        :raises TrainingInterrupted: on Ctrl-C or SIGTERM, at the next step; the trials in flight
            are dropped, every finished one is stored and saved (a second signal stops at once).
        """
        if not isinstance(trials, int) or isinstance(trials, bool) or trials < 0:
            raise ValueError(f"trials: expected a whole number >= 0, got {trials!r}")
        self._store_unstored()
        loop = PopulationLoop(self.envs, self.policy, self.settings, self.settings.seed,
                              remember=None if self.settings.read_only else self._remember,
                              callbacks=self._callbacks(trials, callback), clock_offset=self._trained_seconds,
                              engrams=self.engram_count, records=self.metrics, worker=self.worker)
        first = len(self.metrics)
        try:
            if self.species is None:
                loop.run(range(self.next_trial, self.next_trial + trials), self._progress)
            else:
                loop.run(self.species.trial_numbers(trials), self.species.progress)
        except MilvusUnavailableError:
            self._milvus_failed = True  # so that close() does not wait for it once more
            raise
        finally:
            self.next_trial = max(self.next_trial, loop.next_trial)
            self._trained_seconds = loop.clock_offset
            self.steps_taken += loop.steps
            self.frames_taken += loop.frames
            self.steps_per_s = round(loop.steps / max(loop.seconds, 1e-9), 1)
            self.trials_per_min = round(60 * (len(self.metrics) - first) / max(loop.seconds, 1e-9), 1)
        rewards = [record.reward for record in self.metrics[first:]]
        return float(np.mean(rewards)) if rewards else float("nan")

    def _progress(self, trial: int) -> int:
        """A trial's place in the run: the run's trials before this start, then one per number taken
        (a run started once: its trial number)."""
        before, first = self._progress_at
        return before + trial - first

    def _callbacks(self, trials: int, callback) -> list:
        """Who listens to this call's loop, in order."""
        listeners = [StopOnSignal()]
        if self.on_step is not None:
            listeners.append(FollowLander(self.on_step))
        if self.settings.revalue_every and not self.settings.read_only:
            listeners.append(Revaluation(self.store.memory, self.settings, self.quiet))
        if self.run_folder is not None:
            listeners.append(RunFolderLog(self.run_folder, self.worker, summarise=self.species is None))
        if self._logs_tensorboard:
            stream = self.run_folder.events_dir(None if self.species is None else self.worker)
            listeners.append(TensorBoardLog(stream, self.settings, self._run_so_far()))
        if self.species is not None:
            listeners.extend([Heartbeat(self.species), BookLog(self.species.book)])
        if not self.quiet:
            listeners.append(ProgressReport(trials, self._run_so_far()))
        return listeners + as_callbacks(callback)

    @property
    def _logs_tensorboard(self) -> bool:
        """``TENSORBOARD`` on a run that is saved (a read-only one has no run folder to write into)."""
        return self.settings.tensorboard and self.run_folder is not None

    def _run_so_far(self) -> list:
        """(reward, solved) of every trial of the run so far, those before a resume included."""
        return self._earlier + [(record.reward, record.solved) for record in self.metrics]

    def last_trials(self, count: int = 100) -> dict:
        """The run's last ``count`` trials (those before a resume included): how many, their mean
        reward and how many were solved, as ``summary.json``'s ``last100_mean`` counts them."""
        recent = self._run_so_far()[-count:]
        return {"trials": len(recent), "mean_reward": float(np.mean([r for r, _ in recent])) if recent else float("nan"),
                "solved": int(sum(solved for _, solved in recent))}

    def _remember(self, flights: List[Flight]) -> int:
        """Store finished trials' engrams in one request; the memory's engram count after them. If
        Milvus stayed down, keep them (``unstored``, the run folder's journal) and say where."""
        try:
            self.engram_count = self._teach(flights)
        except EngramsNotStoredError as failure:
            self.unstored = EngramColumns.concatenate([self.unstored, failure.engrams], self.settings.resonator_size)
            kept = "Trainer.unstored"
            if self.run_folder is not None:
                kept += f" and {self.run_folder.keep_unstored(failure.engrams)}"
            trials = sorted(set(failure.engrams.trial.tolist()))
            raise EngramsNotStoredError(f"{failure} The {len(failure.engrams)} engrams of trial(s) {trials} are kept "
                                        f"in {kept}; resuming (--keep) stores them first.", failure.engrams) from None
        return self.engram_count

    def _store_unstored(self) -> None:
        """Store engrams kept from an earlier failure: replacing, since some may have got through."""
        if not len(self.unstored):
            return
        self.store.memory.add(self.unstored, replace=True)
        self.unstored = EngramColumns.empty(self.settings.resonator_size)
        if self.run_folder is not None:
            self.run_folder.forget_unstored()
        self.engram_count = self.store.get_count()
        self._teach = remembering(self.store.memory, self.brain.resonator_factory, self.settings, self.engram_count)

    def metrics_frame(self) -> pd.DataFrame:
        """The finished trials as a pandas DataFrame, one row each."""
        return pd.DataFrame([asdict(record) for record in self.metrics], columns=trial_columns())

    def close(self) -> None:
        """Seal the stored engrams (durable before the embedded server is stopped), close the
        environments and their windows, give a species' book (where the instance has one) this
        training's rows, let another Trainer train this collection, and close the store (the last
        closed store of a process gives up its share of the embedded server)."""
        try:
            if not self.settings.read_only and not self._milvus_failed:
                self.memory.flush()
        finally:
            self.envs.close()
            if self.run_folder is not None and not self._milvus_failed:
                self.run_folder.worker_ended(self.worker)
                if self.species is None:  # a species' member shares as it leaves (species.training)
                    share_on_leaving(self.run_folder, self.memory.species_book(), create=False)
            self._release_claim()
            self.memory.close()

    def _release_claim(self) -> None:
        if self._claim is not None:
            self._claim.release()
            self._claim = None
