"""``provenance``: which code, on which versions, made a record.

Why its own module: a figure in the docs is only as good as the ability to make it again, and a
record that gives its command but not its code cannot say whether a later figure differs because
the code did. Every record written by ``lab.write_record`` carries this.
"""
from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Optional

# The distributions whose versions decide a figure: the client, the server, the environments, the
# replica's index and the arithmetic.
MEASURED_PACKAGES = ("pymilvus", "milvus", "gymnasium", "faiss-cpu", "numpy")


def provenance(project: Path) -> dict:
    """The code version (git commit, and whether tracked files differed from it), the versions of
    Python and of ``MEASURED_PACKAGES``, and the machine's core count."""
    return {"code_version": code_version(project),
            "versions": {"python": platform.python_version(), **{name: installed(name) for name in MEASURED_PACKAGES}},
            "cpus": os.cpu_count()}


def code_version(project: Path) -> dict:
    """``{"commit": ..., "dirty": ...}`` of the checkout at ``project``; both None outside a git checkout
    (an installed copy of the package says so rather than guessing)."""
    commit = _git(project, "rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(_git(project, "status", "--porcelain", "--untracked-files=no"))}


def installed(distribution: str) -> Optional[str]:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _git(project: Path, *arguments: str) -> Optional[str]:
    try:
        answer = subprocess.run(["git", "-C", str(project), *arguments], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):  # no git on this machine
        return None
    return answer.stdout.strip() if answer.returncode == 0 else None
