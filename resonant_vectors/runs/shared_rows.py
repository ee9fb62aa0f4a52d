"""A species' rows on every machine: a run folder and the species' book made to agree.

Why its own module: a species may fly on several machines, each writing its trials into its own run
folder. Its members also write them into the species' book in Milvus (``memory.book``), and here a
run folder takes in the rows it lacks from the book and gives the book those the book lacks (a
worker killed before its last write, trials recovered from their engrams), and the same for the
run's settings files. Afterwards the folder holds every trial of the species so far and the
settings it trains with, so ``summary.json``, ``compare``, ``evaluate`` and ``--keep`` on that
machine see them all. Members share as they start (a resume and a join) and as they leave.
"""
from __future__ import annotations

import sys
from collections import defaultdict
from typing import Dict, List

import pandas as pd

from resonant_vectors.errors import ResonantVectorsError
from resonant_vectors.memory.book import SpeciesBook
from resonant_vectors.runs.folder import RunFolder
from resonant_vectors.runs.records import TrialRecord, trial_columns


class SharedRowsError(ResonantVectorsError, ValueError):
    """A run folder holds the rows of an earlier memory of its instance than the one there now."""


def share_rows(folder: RunFolder, book: SpeciesBook, create: bool = True) -> int:
    """Make the folder and the species' book hold the same trials; returns how many rows the folder
    took in. Nothing happens where the memory does not exist, nor, unless ``create``, where the
    species has no book of this memory (a training of one process keeps none). A folder that shared
    an earlier memory's rows is refused first, whether or not there is a book.

    :raises SharedRowsError: the folder's rows are of an earlier memory of the instance (one
        started afresh since, maybe on another machine); nothing is changed.
    """
    memory_id = book.memory_id()
    if memory_id is None:
        return 0
    noted = folder.memory_of_rows() if folder.path.is_dir() else None
    if noted is not None and noted != memory_id and folder.has_trials():
        raise SharedRowsError(
            f"{folder.path}/ holds the trials of an earlier memory of {book.memory_name!r} than the one there now "
            f"(that memory was started afresh or dropped since, perhaps on another machine), so they were not mixed "
            f"in; nothing was changed. Move {folder.path}/ aside (or give --runs-dir another folder) and run the "
            f"command again.")
    if not (create or book.kept_for() == memory_id):
        return 0
    with folder.sharing():
        book.open_for(memory_id)
        _share_settings(folder, book)
        shared = book.rows()
        own = folder.trials()  # read after the book: a row of this machine's workers is in their file before the book
        in_book, in_folder = {int(row["trial"]) for row in shared}, set(own["trial"].astype(int))
        book.add(row for row in _rows_of(own) if int(row["trial"]) not in in_book)
        taken = _by_worker([row for row in shared if int(row["trial"]) not in in_folder])
        for worker, records in taken.items():
            folder.take_in(records, worker)
        folder.note_memory_of_rows(memory_id)
    return sum(len(records) for records in taken.values())


def share_on_leaving(folder: RunFolder, book: SpeciesBook, create: bool = True) -> None:
    """``share_rows`` as a training leaves: a failure is a warning, never instead of the training's
    own end (the rows are in the run folder, and the next share gives them to the book)."""
    try:
        share_rows(folder, book, create)
    except ResonantVectorsError as error:
        print(f"warning: the run folder's rows were not shared with the species' book ({error}); they "
              "are in the run folder, and the species' next share gives them to it.", file=sys.stderr)


def _share_settings(folder: RunFolder, book: SpeciesBook) -> None:
    """The run's settings files: those the book lacks written there, those the folder lacks taken in."""
    shared, own = book.files(), folder.saved_settings()
    book.add_files({name: text for name, text in own.items() if name not in shared})
    folder.take_in_settings({name: text for name, text in shared.items() if name not in own})


def _rows_of(frame: pd.DataFrame) -> List[Dict]:
    """A folder's rows as the book keeps them: the run folder's columns, plain Python values."""
    return frame.reindex(columns=trial_columns()).to_dict("records") if len(frame) else []


def _by_worker(rows: List[Dict]) -> Dict[int, List[TrialRecord]]:
    records = defaultdict(list)
    for row in sorted(rows, key=lambda row: (row["wall_time"], row["trial"])):
        records[int(row["worker"])].append(TrialRecord(**{name: row[name] for name in trial_columns()}))
    return records
