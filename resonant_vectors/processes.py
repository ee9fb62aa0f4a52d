"""``process_alive``: whether a process recorded earlier (by pid and start time) still runs.

Why one function: the run folder's crash recovery, the embedded server's keeper and the species
ledger all ask it, and must agree. A pid alone lies twice: a zombie (dead, not yet reaped) still
has one, and the kernel gives a dead process's pid to a new one. The start time tells them apart.
"""
from __future__ import annotations

import fcntl
import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional

import psutil

START_TIME_TOLERANCE_S = 1.0  # psutil's create_time is read from /proc with a clock tick's rounding


def process_alive(pid: Optional[int], started: Optional[float] = None) -> bool:
    """Whether ``pid`` runs and is not a zombie; with ``started`` (``process_start_time`` of it, taken
    when it was recorded), also that it is that same process and not a newer one given its pid."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(process.create_time() - started) <= START_TIME_TOLERANCE_S
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's process: it exists
        return True


def process_start_time(pid: Optional[int] = None) -> float:
    """When the process ``pid`` (this one by default) started, in seconds since the epoch."""
    return psutil.Process(pid or os.getpid()).create_time()


PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # the folder holding resonant_vectors/


def module_command(module: str, *arguments: str) -> List[str]:
    """``python -m module arguments...`` in this interpreter: how the project starts its own helpers
    (the server's keeper, a species' worker)."""
    return [sys.executable, "-m", module, *arguments]


def module_environment(environment: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The environment a helper started by ``module_command`` finds this very package in, whatever
    its working folder and whether or not the package is installed."""
    environment = dict(os.environ if environment is None else environment)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), environment.get("PYTHONPATH", "")]))
    return environment


def locked_by_another(handle) -> bool:
    """Whether another process holds a lock (shared or exclusive) on this open file: the kernel frees
    a dead process's locks, so a held lock means a live holder. Takes nothing if free."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(handle, fcntl.LOCK_UN)
    return False


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block has ended, then deliver each one that came, once.

    Why: a few steps must not be cut in two. A fresh start sets the earlier memory aside and then
    puts the new run folder in place; a Ctrl-C between the two left a folder whose trials' memory
    had gone under another name. Held, the signal stops the program right after the step, as it
    would have a moment later. Outside the main thread (where Python handles no signals) it holds
    nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: List[int] = []
    previous = {number: signal.signal(number, lambda signum, frame: received.append(signum)) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number in dict.fromkeys(received):
            signal.raise_signal(number)
