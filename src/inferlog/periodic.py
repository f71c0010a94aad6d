"""A named background thread that does one piece of work every so often, until it is closed.

The server's schedules (alert rules, retention, checkpoints, the sweep of lone halves) all have this
shape; each keeps what a pass does and how a failure is counted, and hands the thread to this.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Periodic:
    """Calls ``work`` every ``interval`` seconds in a daemon thread named ``name``.

    ``first_now`` runs a pass as soon as it starts (else the first pass comes after one interval).
    ``work`` must not raise: a schedule outlives any one failed pass, so each counts and logs its own.
    """

    def __init__(self, name: str, interval: float, work: Callable[[], object], *, first_now: bool) -> None:
        self.name = name
        self.interval = interval
        self.work = work
        self.first_now = first_now
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        if self.first_now:
            self.work()
        while not self._stop.wait(self.interval):
            self.work()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop after the pass under way (waiting up to ``timeout``); True if the thread was running."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is None:
            return False
        thread.join(timeout)
        return True
