"""The schedules' shared thread: named, a pass at start when asked, one per interval, stopped by stop()."""

from __future__ import annotations

import threading

from inferlog.periodic import Periodic
from tests.helpers import wait_for


def test_it_runs_in_a_named_thread_until_stopped() -> None:
    """first_now makes a pass before the first interval; stop() ends the thread and says it was running."""
    calls: list[str] = []
    ticker = Periodic(
        "test-ticker", 3600.0, lambda: calls.append(threading.current_thread().name), first_now=True
    )
    ticker.start()
    wait_for(lambda: calls, "the first pass")
    assert calls == ["test-ticker"]  # the hour-long interval has not passed: one pass only
    assert ticker.stop(5.0) is True
    assert not any(t.name == "test-ticker" for t in threading.enumerate())
    assert ticker.stop(5.0) is False  # stopping twice is harmless


def test_without_first_now_it_waits_one_interval() -> None:
    """The first pass comes after the interval, then one per interval."""
    calls: list[int] = []
    ticker = Periodic("test-ticker-2", 0.01, lambda: calls.append(1), first_now=False)
    ticker.start()
    wait_for(lambda: len(calls) >= 3, "three passes")
    ticker.stop()
    done = len(calls)
    assert not any(t.name == "test-ticker-2" for t in threading.enumerate())
    assert len(calls) == done  # nothing runs after stop()
