"""One liveness check for every process the project records: zombies and reused pids are dead."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from resonant_vectors.processes import process_alive, process_start_time


def test_a_running_process_is_alive_and_an_ended_one_is_not():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert process_alive(child.pid, process_start_time(child.pid))
    finally:
        child.kill()
        child.wait()
    assert not process_alive(child.pid)


def test_a_zombie_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:  # ended, not reaped
        assert time.monotonic() < deadline
        time.sleep(0.05)
    try:
        assert os.path.exists(f"/proc/{child.pid}") and not process_alive(child.pid)
    finally:
        child.wait()


def test_a_process_that_took_a_dead_ones_pid_is_not_taken_for_it():
    started = process_start_time()
    assert process_alive(os.getpid(), started)
    assert not process_alive(os.getpid(), started - 60)  # what was recorded started earlier: another process


def test_nonsense_pids_are_not_alive():
    assert [process_alive(pid) for pid in (None, 0, -1, True, "12")] == [False] * 5
