"""Stopping training cleanly on Ctrl-C or SIGTERM: between two steps, never inside a request.

Why its own module: signal handling is a concern of its own, apart from the trial loop that
checks for a stop request between steps.
"""
from __future__ import annotations

import signal
import threading
from typing import Optional


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C or SIGTERM, between two steps: every finished trial is stored."""


class StopRequest:
    """The first Ctrl-C or SIGTERM during ``train`` asks it to stop at the next step.

    Why: an exception raised wherever the signal lands can break a gRPC call half-way and hang the
    store (seen in CI); a flag read between steps stops with the store and the run folder intact. A
    second signal raises ``KeyboardInterrupt`` at once, for a store that no longer answers.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signal_name: Optional[str] = None
        self._previous = {}

    def _request(self, signum, frame) -> None:
        if self.signal_name is not None:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():  # only it may handle signals
            self._previous = {number: signal.signal(number, self._request) for number in self.SIGNALS}
        return self

    def __exit__(self, *exc_info) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def check(self) -> None:
        if self.signal_name is not None:
            raise TrainingInterrupted(f"{self.signal_name}: stopped between steps; the finished trials are stored")
