"""How a run starts: afresh, keeping the run before it (its memory and its run folder together, as
an instance of its own) unless asked to drop it by name; or resumed, with what a killed worker left
unrecorded. ``open_for_training`` is the one way the trainer and the species open a memory to train.

Why its own module: what a start does involves the memory and the run folder at once, and neither
should know the other's rules. A run kept from ``t0`` is the instance ``t0_1`` (``t0_2``, ... where
taken): its collection is ``t0_1`` and its folder ``runs/t0_1/``, with a ``kept.json`` saying where it
came from, so ``evaluate``, ``watch``, ``--keep`` and the run's files work on it by that name, as on
any instance. Only the ``drop`` command, or ``KEPT_RUNS``, deletes a kept run.
"""
from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

import pandas as pd

from resonant_vectors.config import Settings
from resonant_vectors.memory.book import SpeciesBook
from resonant_vectors.memory.claims import CollectionClaim
from resonant_vectors.memory.lifecycle import InstanceMemory
from resonant_vectors.memory.seam import EngramColumns
from resonant_vectors.memory.store import MemoryNotFoundError
from resonant_vectors.processes import stop_signals_held
from resonant_vectors.runs.folder import RunFolder, Start
from resonant_vectors.runs.records import trial_columns
from resonant_vectors.runs.recovery import unrecorded_trials
from resonant_vectors.runs.shared_rows import SharedRowsError, share_rows


def open_for_training(settings: Settings, run_folder: Optional[RunFolder], search_backend: Optional[str] = None,
                      drop: bool = False, alive_as: Optional[str] = None) -> Tuple[InstanceMemory, Start]:
    """Open the instance's memory to train it, with its run folder, and say how it started.
    Everything that can fail is checked first (an existing collection's schema; a species training
    it elsewhere; the folder can be written, a resume's rows read; the rows a species flew on other
    machines taken in). Afresh (``DROP_COLLECTION``):
    ``start_afresh``. Without a run folder, the seed's way: the memory is emptied (nowhere keeps the
    run). A resume records the trials a killed worker stored but did not write down
    (``recovery.unrecorded_trials``) with its settings, once it opened.

    :param search_backend: who will search the store (``SEARCH_BACKEND`` by default; a species'
        command, which searches nothing, opens it without a replica).
    :param drop: a fresh start drops the earlier memory instead of keeping it (asked by name).
    :param alive_as: the training's label in the instance's ledger, from just before the memory
        changes (``InstanceMemory.to_train``).
    :raises CollectionInUseError: the instance trains elsewhere (its ledger says so).
    """
    memory = InstanceMemory.to_train(settings, search_backend, alive_as)
    try:
        start, report = _start(settings, run_folder, memory, drop)
    except BaseException:
        memory.close()
        raise
    for line in report:
        print(line, file=sys.stderr)
    return memory, start


def _start(settings: Settings, run_folder: Optional[RunFolder], memory: InstanceMemory, drop: bool
           ) -> Tuple[Start, List[str]]:
    name = settings.instance_name
    if run_folder is None:
        store = memory.open_afresh() if settings.drop_collection else memory.open_kept()
        dropped = [f"{name}: starting afresh, dropped its {store.engrams_dropped} engrams."] \
            if store.engrams_dropped else []
        return Start(pd.DataFrame(columns=trial_columns()), EngramColumns.empty(settings.resonator_size)), dropped
    book = memory.species_book()
    _take_in_species_rows(settings, run_folder, book)
    if settings.drop_collection:
        fresh = start_afresh(settings, run_folder, memory, drop)
        run_folder.note_memory_of_rows(book.memory_id())
        return fresh.start, [line for line in [fresh.report(name)] if line]
    recovered = unrecorded_trials(run_folder, memory, settings) if memory.exists else {}
    with run_folder.starting(settings, False, recovered) as start:
        memory.open_kept()
    run_folder.note_memory_of_rows(book.memory_id())  # so that a folder of an earlier memory is refused, book or not
    report = [f"{name}: recorded the trials a stopped worker had stored but not written down (end: recovered)."] \
        if any(recovered.values()) else []
    if start.credit_changes:
        report.append(f"{name}: this resume changes the credit rule ({'; '.join(start.credit_changes)}): "
                      "engrams stored before and after it are credited differently.")
    return start, report


def _take_in_species_rows(settings: Settings, folder: RunFolder, book: SpeciesBook) -> None:
    """Where a species trained the instance (it has a book), its run folder first takes in the rows
    and settings flown on other machines (``runs.shared_rows``): a resume goes on after every trial,
    and a fresh start keeps them all with the run it sets aside. A folder of an earlier memory of
    the instance is refused on a resume, and set aside as it is on a fresh start."""
    try:
        share_rows(folder, book, create=False)
    except SharedRowsError:
        if not settings.drop_collection:
            raise


@dataclass
class FreshStart:
    """What a fresh start did to the run before it."""

    start: Start
    engrams: int                       # of the earlier memory: kept, or dropped
    kept_as: Optional[str] = None      # the instance the earlier run is kept as (None: dropped)
    removed: List[Tuple[str, int]] = field(default_factory=list)  # oldest kept runs removed (KEPT_RUNS)

    def report(self, name: str) -> Optional[str]:
        """The line that says it (None: there was nothing before)."""
        removed = "".join(f"; KEPT_RUNS removed the oldest kept run, {old}, and its {engrams} engrams"
                          for old, engrams in self.removed)
        if self.kept_as is not None:
            return (f"{name}: starting afresh; its earlier run and its {self.engrams} engrams are kept as the "
                    f"instance {self.kept_as} (python main.py evaluate --instance {self.kept_as}; "
                    f"python main.py drop --instance {self.kept_as} deletes it){removed}.")
        if self.engrams or self.start.moved_to is not None:
            folder = f"; its earlier run folder is kept in {self.start.moved_to}/" if self.start.moved_to else ""
            return f"{name}: starting afresh, dropped its {self.engrams} engrams{folder} (--keep resumes instead)."
        return None


def start_afresh(settings: Settings, folder: RunFolder, memory: InstanceMemory, drop: bool = False) -> FreshStart:
    """Start the instance afresh in its run folder: the earlier run, where there was one (trials in
    the folder, or engrams in the memory), is kept with its memory as ``<name>_<n>`` — unless
    ``drop`` (the user asked for it by name, as the seed's ``clear_collection=True``) or
    ``KEPT_RUNS = 0``, when its memory is dropped. Then the oldest kept runs past ``KEPT_RUNS`` are
    removed. The memory's store is opened, empty. Changing the memory is the last step of the run
    folder's preparation: if it fails, the folder is as it was."""
    keep = not drop and settings.kept_runs > 0 and (folder.has_trials() or memory.count() > 0)
    keep_as = free_name(settings.instance_name, folder.path.parent, memory) if keep else None
    with stop_signals_held(), folder.starting(settings, True, keep_as=keep_as) as start:  # one step, never half
        engrams = memory.set_aside(keep_as) if keep_as else memory.drop()
    memory.open_afresh()
    removed = remove_oldest_kept(settings, folder.path.parent) if keep_as else []
    return FreshStart(start, engrams, keep_as, removed)


def free_name(name: str, runs_dir: Path, memory: InstanceMemory) -> str:
    """``<name>_<n>`` for the smallest n that names neither a run folder nor a memory."""
    number = 1
    while (runs_dir / f"{name}_{number}").exists() or memory.is_taken(f"{name}_{number}"):
        number += 1
    return f"{name}_{number}"


def kept_runs(name: str, runs_dir: Path) -> List[RunFolder]:
    """The runs kept aside from instance ``name``, oldest first."""
    kept = [RunFolder(path) for path in runs_dir.glob(f"{name}_*") if path.name[len(name) + 1:].isdigit()]
    kept = [folder for folder in kept if folder.kept_from() == name]
    return sorted(kept, key=lambda folder: int(folder.path.name[len(name) + 1:]))


def remove_oldest_kept(settings: Settings, runs_dir: Path) -> List[Tuple[str, int]]:
    """Remove the oldest runs kept from this instance, memory and folder, until ``KEPT_RUNS`` remain;
    returns each removed one's name and engrams."""
    kept = kept_runs(settings.instance_name, runs_dir)
    removed = []
    for folder in kept[:max(0, len(kept) - settings.kept_runs)]:
        memory = InstanceMemory(settings.replace(instance_name=folder.path.name))
        try:
            with stop_signals_held():  # never a kept folder whose memory is gone, nor half a folder
                removed.append((folder.path.name, memory.drop_with_its_species()))
                shutil.rmtree(folder.path)
        finally:
            memory.close()
    return removed


def drop_for_good(settings: Settings, runs_dir: Path) -> str:
    """The ``drop`` command: delete an instance's memory (and its species' ledger and book) for good. Its run
    folder, the record of its trials, stays. Refused while the instance trains, here or in a
    species; says what it dropped.

    :raises MemoryNotFoundError: no memory has that name (the message lists those there).
    :raises CollectionInUseError: the instance is training.
    """
    claim = CollectionClaim.take(settings)
    try:
        memory = InstanceMemory.to_train(settings)
        try:
            if not memory.exists:
                instances = ", ".join(memory.instance_names()) or "none"
                raise MemoryNotFoundError(f"drop: no memory named {settings.instance_name!r}, so nothing was "
                                          f"dropped. Instances there: {instances}. Check --instance.")
            engrams = memory.drop_with_its_species()
        finally:
            memory.close()
    finally:
        claim.release()
    folder = RunFolder.for_instance(settings.instance_name, runs_dir)
    stays = f"; its run folder {folder.path}/ stays, with its records" if folder.path.exists() else ""
    return f"dropped the memory {settings.instance_name} for good: its {engrams} engrams are deleted{stays}."

