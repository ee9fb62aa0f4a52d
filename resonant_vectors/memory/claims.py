"""``CollectionClaim``: the machine-wide right to write one collection.

Why its own module: a trial loop should not also hold file locking. ``Trainer`` takes a claim
before it opens a collection for writing and gives it back when it closes.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Dict

from resonant_vectors.config import Settings
from resonant_vectors.errors import ResonantVectorsError
from resonant_vectors.processes import locked_by_another

LOCK_DIR = Path(tempfile.gettempdir()) / "resonant-vectors-locks"  # one lock file per trained collection


class CollectionInUseError(ResonantVectorsError, RuntimeError):
    """Another Trainer on this machine is training (writing to) the same collection."""


class CollectionClaim:
    """The machine-wide right to write one collection, held by the Trainers of one process.

    Why refuse a second plain start rather than share: it would drop the first one's memory, or
    write its run folder's files under it; sharing a memory is what a species' workers do
    (``resonant_vectors.species``: ``--workers``, ``--join``), each with its own file. Trainers of one process (a
    notebook re-running a cell) share the claim. It is a file lock, so the kernel releases it when
    the process ends, however it ends; it covers one machine (a species across machines meets in
    its ledger in Milvus).
    """

    held: Dict[Path, "CollectionClaim"] = {}

    def __init__(self, path: Path) -> None:
        self.path = path
        self.users = 0
        self.file = open(path, "a+")

    @staticmethod
    def path_for(settings: Settings) -> Path:
        """The lock file of the settings' collection on the settings' server."""
        server = settings.milvus_uri or f"embedded:{Path(settings.milvus_data_dir).resolve()}"
        return LOCK_DIR / f"{hashlib.sha1(server.encode()).hexdigest()[:12]}-{settings.instance_name}.lock"

    @classmethod
    def take(cls, settings: Settings) -> "CollectionClaim":
        LOCK_DIR.mkdir(parents=True, exist_ok=True)
        path = cls.path_for(settings)
        claim = cls.held.get(path) or cls(path)._locked(settings.instance_name)
        cls.held[path] = claim
        claim.users += 1
        return claim

    @classmethod
    def taken(cls, settings: Settings) -> bool:
        """Whether another process of this machine holds the claim now (a species trains here)."""
        path = cls.path_for(settings)
        if path in cls.held or not path.exists():
            return path in cls.held
        with open(path) as probe:
            return locked_by_another(probe)

    def _locked(self, instance_name: str) -> "CollectionClaim":
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            raise CollectionInUseError(
                f"instance {instance_name!r} is being trained by {holder} on this machine; a second start would "
                "drop or mix into its memory and its run. Wait for it to finish, or use another --instance; if it "
                f"is a species (--workers), add a worker to it with python main.py --instance {instance_name} "
                "--join.") from None
        self.file.truncate(0)
        self.file.write(f"process {os.getpid()}")
        self.file.flush()
        return self

    def release(self) -> None:
        self.users -= 1
        if self.users == 0:
            del self.held[self.path]
            self.file.close()
