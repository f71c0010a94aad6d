"""A real `inferlog serve` in a subprocess, on a free loopback port, that tests can kill and restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import free_port, wait_until_serving


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))


def run_cli(*args: str) -> str:
    """Run the inferlog command in a subprocess; returns stdout, fails the test on a non-zero exit."""
    done = subprocess.run(
        [sys.executable, "-m", "inferlog", *args], capture_output=True, text=True, env=_env(), check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclass
class ServerProcess:
    """One `inferlog serve` process; stop() SIGKILLs it, start() brings it back on the same port."""

    db: str
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with tempfile.TemporaryFile() as errors:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "inferlog", "--db", self.db, "serve", "--port", str(self.port)],
                env=_env(),
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
            try:
                wait_until_serving(f"{self.url}/healthz", "inferlog serve to come up", self.proc)
            except AssertionError as exc:
                errors.seek(0)
                said = errors.read().decode(errors="replace").strip().splitlines()[-20:]
                raise AssertionError("\n".join([str(exc), *said])) from None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[ServerProcess]:
    """`inferlog serve` on a SQLite file in tmp_path (auth on); killed at the end of the test."""
    server = ServerProcess(f"sqlite:///{tmp_path / 'served.db'}")
    server.start()
    yield server
    server.stop()
