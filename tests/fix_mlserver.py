"""A real MLServer (Seldon's OIP server, from PyPI) serving a scikit-learn model, and `inferlog proxy`.

MLServer pins many packages (FastAPI, pydantic, gRPC, OpenTelemetry ...), so it lives in a venv of its
own, never in the project's: ``<repo>/.cache/mlserver-venv``, built on first use with ``python -m venv``
and pip, and kept until ``MLSERVER_REQUIREMENTS`` change. A venv that cannot be built fails the test
run; it is never a skip. The model is trained by the MLServer venv's own Python, so the pickle always
matches the scikit-learn that loads it. :class:`ProxyProcess` runs ``python -m inferlog proxy``
in front of it. The bench (``bench/proxy.py``) uses the same helpers.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import pytest

from inferlog.record.model import InferenceRecord
from inferlog.store.base import Query
from inferlog.store.sqlite import SQLiteStore
from tests.helpers import free_port, inferences, wait_for

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".cache" / "mlserver-venv"
MLSERVER_REQUIREMENTS = (
    "mlserver==1.7.1",
    "mlserver-sklearn==1.7.1",
    "scikit-learn==1.9.1",
    "joblib==1.6.0",
)
MODEL = "iris"
VERSION = "v1.2"
_STAMP = "inferlog-requirements.txt"

_TRAIN = """
import sys
import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

x, y = load_iris(return_X_y=True)
joblib.dump(LogisticRegression(max_iter=500).fit(x, y), sys.argv[1])
"""


class MLServerUnavailable(RuntimeError):
    """The MLServer venv could not be built, or the server did not come up."""


def _clean_env() -> dict[str, str]:
    """This process's environment without what ties a child Python to the project's venv."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


def ensure_venv(path: Path = VENV) -> Path:
    """The MLServer venv's python, building the venv first if it is missing or out of date.

    A file lock beside it lets a test run and a bench run share one build.
    """
    wanted = "\n".join(MLSERVER_REQUIREMENTS) + "\n"
    python = path / "bin" / "python"
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / f"{path.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = path / _STAMP
        if python.exists() and stamp.exists() and stamp.read_text() == wanted:
            return python
        shutil.rmtree(path, ignore_errors=True)
        steps = [
            [sys.executable, "-m", "venv", str(path)],
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *MLSERVER_REQUIREMENTS,
            ],
        ]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, env=_clean_env(), check=False)
            if done.returncode != 0:
                tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
                raise MLServerUnavailable(f"building the MLServer venv failed: {' '.join(step)}\n{tail}")
        stamp.write_text(wanted)
    return python


def write_model_repo(python: Path, root: Path, http_port: int, grpc_port: int) -> None:
    """Train iris with ``python`` and lay out MLServer's settings.json and model-settings.json under ``root``."""
    model_dir = root / MODEL
    model_dir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [str(python), "-c", _TRAIN, str(model_dir / "model.joblib")],
        capture_output=True,
        text=True,
        env=_clean_env(),
        check=False,
    )
    if done.returncode != 0:
        raise MLServerUnavailable(f"training the iris model failed:\n{done.stderr[-2000:]}")
    settings = {
        "debug": False,
        "host": "127.0.0.1",
        "http_port": http_port,
        "grpc_port": grpc_port,
        "metrics_endpoint": None,  # no metrics server (and no third port) needed
        "parallel_workers": 0,  # infer in the server process: one process to start and stop
    }
    model_settings = {
        "name": MODEL,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "platform": "sklearn",
        "versions": [VERSION],
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [-1, 4]}],
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1, 1]}],
        "parameters": {"uri": "./model.joblib", "version": VERSION},
    }
    (root / "settings.json").write_text(json.dumps(settings, indent=2))
    (model_dir / "model-settings.json").write_text(json.dumps(model_settings, indent=2))


@dataclass
class MLServer:
    """One ``mlserver start`` process over a model repository; ``stop()`` ends it (and only it)."""

    python: Path
    root: Path
    http_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.root / "mlserver.log"

    def start(self, timeout: float = 120.0) -> None:
        write_model_repo(self.python, self.root, self.http_port, self.grpc_port)
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(self.python.parent / "mlserver"), "start", str(self.root)],
                cwd=self.root,
                env=_clean_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() reaches any child it forks
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise MLServerUnavailable(f"mlserver exited with {self.proc.returncode}:\n{self._log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/v2/models/{MODEL}/ready", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        self.stop()
        raise MLServerUnavailable(f"mlserver was not ready within {timeout:.0f}s:\n{self._log_tail()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return "(no log)"


@dataclass
class ProxyProcess:
    """`python -m inferlog proxy` in a subprocess; ``stop()`` ends it with SIGTERM so its Log flushes."""

    upstream: str
    db: Path
    timeout: float = 30.0
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.db.with_suffix(".proxy.log")
        with log.open("wb") as err:
            proc = self.proc = self._spawn(err)

        def up() -> bool:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{self.url}/v2/health/live", timeout=2)  # any answer will do
                return True
            return False

        wait_for(up, "inferlog proxy to come up", seconds=30, interval=0.1)

    def _spawn(self, err: IO[bytes]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable, "-m", "inferlog", "--db", f"sqlite:///{self.db}", "proxy",
                "--upstream", self.upstream, "--port", str(self.port), "--system", "iris",
                "--identity-header", "X-User", "--timeout", str(self.timeout),
            ],
            env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )  # fmt: skip

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(90)  # the Log's close() gives its shipper up to 30 s to drain
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("inferlog proxy did not stop within 90s of SIGTERM") from None
        self.proc = None

    def records(self) -> list[InferenceRecord]:
        """Every inference record in the proxy's log (call after ``stop()``, which flushes the spool)."""
        store = SQLiteStore(f"sqlite:///{self.db}")
        try:
            page = store.query(Query(kind="inference", limit=10_000))
            return inferences(page)
        finally:
            store.close()


@pytest.fixture(scope="session")
def mlserver_python() -> Path:
    """The MLServer venv's python (built once, cached in .cache/); fails the run if it cannot be built."""
    try:
        return ensure_venv()
    except MLServerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def mlserver(mlserver_python: Path, tmp_path: Path) -> Iterator[MLServer]:
    """A running MLServer serving iris (LogisticRegression) as version v1.2; stopped after the test."""
    server = MLServer(mlserver_python, tmp_path / "models")
    try:
        server.start()
    except MLServerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()
