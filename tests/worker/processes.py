"""Worker processes for the broker tests: ``inferlog worker`` started as a user would, stopped by signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.helpers import free_port, wait_for


class WorkerProcess:
    """One ``python -m inferlog worker`` with its own metrics port and log file."""

    def __init__(
        self, nats_url: str, db_url: str, log_file: Path, *extra: str, env: dict[str, str] | None = None
    ) -> None:
        self.metrics_port = free_port()
        self.log_file = log_file
        command = [
            sys.executable, "-m", "inferlog", "worker", "--nats", nats_url, "--db", db_url,
            "--metrics-host", "127.0.0.1", "--metrics-port", str(self.metrics_port), *extra,
        ]  # fmt: skip
        with open(log_file, "ab") as out:
            self.proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
            )
        wait_for(self._serving, f"worker {self.proc.pid} to serve /healthz", seconds=30, interval=0.1)

    def _serving(self) -> bool:
        assert self.proc.poll() is None, (
            f"worker exited with {self.proc.returncode}: {self.log_file.read_text()}"
        )
        try:
            httpx.get(f"http://127.0.0.1:{self.metrics_port}/healthz", timeout=1)
        except httpx.HTTPError:
            return False
        return True

    def metric(self, name: str) -> float | None:
        """A metric's value from /metrics (None if the worker does not answer)."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return None
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def terminate(self, timeout: float = 60) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.terminate(30)
            except subprocess.TimeoutExpired:
                self.kill()
