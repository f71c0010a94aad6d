"""A real NATS server with JetStream for the tests: its own process, port and storage folder per test.

Tests kill and restart it (``nats.restart()``): the storage folder is kept, so streams, messages and
consumers survive, as they do on a real broker's disk. A missing ``nats-server`` binary is a failure,
never a skip (install it with ``apt-get install nats-server``).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, wait_for


class NatsServer:
    """``nats-server -js`` on a free loopback port, with a monitoring port for readiness."""

    def __init__(self, store_dir: Path, log_file: Path) -> None:
        binary = shutil.which("nats-server")
        if binary is None:
            pytest.fail("nats-server is not installed: apt-get install nats-server", pytrace=False)
        self.binary = binary
        self.store_dir = store_dir
        self.log_file = log_file
        self.port = free_port()
        self.monitor_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    self.binary, "-js", "-sd", str(self.store_dir), "-a", "127.0.0.1",
                    "-p", str(self.port), "-m", str(self.monitor_port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for(
            self._ready, f"nats-server on port {self.port} to serve JetStream", seconds=30, interval=0.05
        )

    def _ready(self) -> bool:
        assert self.proc is not None
        assert self.proc.poll() is None, (
            f"nats-server exited with {self.proc.returncode}; see {self.log_file}"
        )
        try:
            url = f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true"
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL: the broker dies without a goodbye, as a crashed node does."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def restart(self) -> None:
        """Kill and start again on the same port and storage (streams and consumers survive)."""
        self.kill()
        self.start()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A running JetStream server of this test's own, stopped after it."""
    server = NatsServer(tmp_path / "nats-store", tmp_path / "nats-server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
