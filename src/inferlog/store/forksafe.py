"""Fork safety for SQLite: no thread of ours is inside SQLite at the moment the process forks.

SQLite keeps process-wide state in C: global mutexes (memory, VFS), and per-file lock bookkeeping
that every connection to a file in the process shares. A child forked while a parent thread is
inside SQLite inherits that state as it was: a mutex held by a thread that does not exist in the child
(its first SQLite call hangs), or a write lock the child believes some connection of its own holds
(every write is ``database is locked``). Prefork servers (gunicorn, uvicorn ``--workers``,
multiprocessing pools) fork exactly like that.

So every SQLite call inferlog makes goes through :data:`GATE`, and a before-fork hook closes the gate:
it waits until no thread is inside, keeps new ones out while ``fork()`` runs, and opens it again
after (in the parent; the child gets a fresh gate). A fork therefore waits at most for the SQLite
calls in flight, each bounded by its busy timeout. Forks by other means (``subprocess`` uses
``posix_spawn``/``vfork`` + exec) do not run the hooks and need none: the child execs at once.

Objects that hold what must not cross a fork (a store's connections or pool) register with
:func:`reset_in_child`, which rebuilds or sets it aside in the child.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class ForkGate:
    """Counts threads inside SQLite; before a fork, waits until none is and keeps new ones out."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._inside = 0
        self._forking = False
        self._depth = threading.local()  # nested calls of one thread count once

    @contextlib.contextmanager
    def inside(self) -> Iterator[None]:
        """Hold the gate open around one SQLite call (re-entrant within a thread)."""
        depth: int = getattr(self._depth, "value", 0)
        if depth:
            self._depth.value = depth + 1
            try:
                yield
            finally:
                self._depth.value = depth
            return
        with self._cond:
            while self._forking:
                self._cond.wait()
            self._inside += 1
        self._depth.value = 1
        try:
            yield
        finally:
            self._depth.value = 0
            with self._cond:
                self._inside -= 1
                if not self._inside:
                    self._cond.notify_all()

    def before_fork(self) -> None:
        """Wait until no other thread is inside SQLite, and keep the gate shut through the fork."""
        own = 1 if getattr(self._depth, "value", 0) else 0  # forking from inside a call: not ourselves
        self._cond.acquire()
        self._forking = True
        while self._inside > own:
            self._cond.wait()

    def after_in_parent(self) -> None:
        self._forking = False
        self._cond.notify_all()
        self._cond.release()

    def after_in_child(self) -> None:
        """The child's threads are gone, and with them every count: start afresh."""
        self._reset()


GATE = ForkGate()
os.register_at_fork(
    before=GATE.before_fork, after_in_parent=GATE.after_in_parent, after_in_child=GATE.after_in_child
)


def gated(method: Callable[P, T]) -> Callable[P, T]:
    """Run ``method`` (which touches SQLite) inside :data:`GATE`."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with GATE.inside():
            return method(*args, **kwargs)

    return wrapper


def reset_in_child(reset: Callable[[T], object]) -> Callable[[T], None]:
    """Call ``reset`` on every tracked object in a forked child; returns the function that tracks one.

    For objects that hold what must not cross a fork (connections, pools, locks): their class makes
    one tracker at import and tracks each instance it makes. Held weakly: what is gone is not reset.
    """
    live: weakref.WeakSet[Any] = weakref.WeakSet()

    def after_in_child() -> None:
        for obj in list(live):
            reset(obj)

    os.register_at_fork(after_in_child=after_in_child)
    return live.add
