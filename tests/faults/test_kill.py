"""SIGKILL a producing process at random moments, many times: every acknowledged record is in the log once."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import inferlog

WRITER = Path(__file__).with_name("_writer.py")


def _run_and_kill(url: str, spool: Path, threads: int, durability: str, rng: random.Random) -> list[str]:
    """Start a writer, let it run a random while, SIGKILL it; return the ids it acknowledged."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), url, str(spool), str(threads), durability],
        stdout=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    acked: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.endswith(b"\n"):  # a line cut by the kill was never acknowledged
                acked.append(line.decode().strip())

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 30
    while not acked and time.monotonic() < deadline:  # wait until it is really producing
        time.sleep(0.01)
    time.sleep(rng.uniform(0.05, 1.2))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reader.join()
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return acked


@pytest.mark.parametrize(("durability", "rounds", "threads"), [("process", 12, 2), ("machine", 4, 3)])
def test_every_acknowledged_record_survives_sigkill_exactly_once(
    tmp_path: Path, durability: str, rounds: int, threads: int
) -> None:
    """Across many SIGKILLs (while spooling, syncing and shipping), no acknowledged id is lost or doubled."""
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    spool = tmp_path / "spool"
    acked: list[str] = []
    for _ in range(rounds):
        acked += _run_and_kill(url, spool, threads, durability, rng)
    assert len(acked) > rounds * 10, "the writer barely ran; the test proves nothing"
    print(f"{len(acked)} acknowledged records over {rounds} kills")

    log = inferlog.open(url, system="verifier", spool_dir=spool)  # adopts and replays the dead spools
    assert log.flush(timeout=120)
    log.close()

    conn = sqlite3.connect(tmp_path / "kill.db")
    stored = [row[0] for row in conn.execute("SELECT id FROM entries ORDER BY seq")]
    (max_seq,) = conn.execute("SELECT max(seq) FROM entries").fetchone()
    conn.close()
    missing = set(acked) - set(stored)
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {sorted(missing)[:3]}"
    assert len(stored) == len(set(stored)), "a record was stored twice"
    assert max_seq == len(stored), "seq has a gap"
    assert not list(spool.glob("w-*")), "spool directories left behind after full delivery"
