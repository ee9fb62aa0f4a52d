"""The times the README states, measured by running its commands as a user would, each on a scratch
memory and run folder (the user's `.milvus/` and `runs/` are never touched).

    python bench/readme_times.py --json bench/records/readme-times.json
    python bench/readme_times.py --quick                     # the short commands only, a minute

Measures, one after the other (run it on an otherwise idle machine):
- the first start of the embedded server on a machine that has never run it (its binary unpacked
  into an empty cache, then started on an empty data folder);
- ``python -m pytest -m "not milvus"``, the in-process half of the suite;
- ``python main.py --preset steady --trials 3000 --no-display``, the README's best preset.

Each entry of the record carries the command, its wall seconds, the phrase the README prints
(``stated``) and, for a training, its run's summary; ``tests/test_docs.py`` checks that the README
prints each phrase.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from resonant_vectors.experiments.lab import write_record  # noqa: E402
from resonant_vectors.server.supervision import wait_until_stopped  # noqa: E402

FIRST_SERVER_START = [sys.executable, "-c",
                      "from resonant_vectors.server.supervision import EmbeddedMilvus; "
                      "import sys; server = EmbeddedMilvus(sys.argv[1], idle_grace_s=0); "
                      "server.start_or_reuse(); server.release()"]
IN_PROCESS_TESTS = [sys.executable, "-m", "pytest", "-m", "not milvus", "-q", "-p", "no:cacheprovider"]
STEADY_3000 = [sys.executable, "main.py", "--preset", "steady", "--trials", "3000", "--no-display"]


def stated(seconds: float) -> str:
    """How the README says a time: seconds under two minutes, else whole minutes."""
    if seconds < 120:
        return f"{round(seconds)} s on a 2-core machine"
    return f"{round(seconds / 60)} minutes on a 2-core machine"


def timed(label: str, command: list, scratch: Path, extra_args: tuple = ()) -> dict:
    """Wall seconds of one command, run in the project folder on a scratch memory and cache."""
    environment = dict(os.environ, MILVUS_DATA_DIR=str(scratch / "milvus"), XDG_CACHE_HOME=str(scratch / "cache"),
                       MILVUS_URI="")
    print(f"{label}: {shlex.join(command[1:])} ...", flush=True)
    started = time.monotonic()
    subprocess.run([*command, *extra_args], cwd=PROJECT, env=environment, check=True,
                   stdout=subprocess.DEVNULL)
    seconds = round(time.monotonic() - started, 1)
    print(f"  {seconds} s", flush=True)
    return {"label": label, "command": shlex.join(["python", *command[1:]]), "seconds": seconds, "stated": stated(seconds)}


def what_it_trained(scratch: Path) -> dict:
    """A training command's own summary (trials, last-100 mean, solved rate, ...), so that the record
    shows the timed run did what the README says beside its time; nothing for other commands."""
    summaries = sorted((scratch / "runs").glob("*/summary.json"))
    return {"run_summary": json.loads(summaries[0].read_text())} if summaries else {}


def measure(quick: bool) -> list:
    """Every timed README command, each in a scratch folder of its own."""
    plan = [("first server start", FIRST_SERVER_START, lambda scratch: (str(scratch / "milvus"),)),
            ("in-process tests", IN_PROCESS_TESTS, lambda scratch: ())]
    if not quick:
        plan.append(("steady, 3000 trials", STEADY_3000, lambda scratch: ("--runs-dir", str(scratch / "runs"))))
    times = []
    for label, command, extra in plan:
        with tempfile.TemporaryDirectory(prefix="rv-readme-times-") as scratch:
            entry = timed(label, command, Path(scratch), extra(Path(scratch)))
            times.append({**entry, **what_it_trained(Path(scratch))})
            wait_until_stopped(Path(scratch) / "milvus")  # its folder is removed from under no one
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="leave out the 3000-trial training")
    parser.add_argument("--json", type=Path, default=PROJECT / "bench/results/readme-times.json",
                        help="where to write the record (default: bench/results/readme-times.json)")
    arguments = parser.parse_args()
    record = {"times": measure(arguments.quick)}
    write_record(record, arguments.json)
    for entry in record["times"]:
        print(f"{entry['label']}: {entry['stated']}")
    print(f"wrote {arguments.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
