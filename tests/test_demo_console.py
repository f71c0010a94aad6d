"""`inferlog demo --serve` (what ./scripts/run ends with): the console up on the demo's log, showing
its models, their charts and the drift alert the demo planted."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.helpers import free_port, wait_until_serving


def test_the_demo_ends_with_the_console_showing_models_charts_and_the_drift_alert(tmp_path: Path) -> None:
    """The printed URL answers; the overview lists both model versions and the firing drift alert; the
    canary's monitoring page carries the volume chart's data and flags the planted feature."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "inferlog", "--db", f"sqlite:///{tmp_path / 'demo.db'}", "demo", "--serve", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_serving(f"{url}healthz", "the demo's console", proc)
        overview = httpx.get(url).text
        assert "tumor-classifier" in overview
        assert re.search(r">1\.0\.0<.*>1\.1\.0<", overview, flags=re.DOTALL)
        alerts = overview.split('id="overview-alerts"')[1].split("</section>")[0]
        assert "canary input drift" in alerts
        assert "psi:mean texture" in alerts
        page = httpx.get(url + "monitor", params={"system": "breast-cancer-screening", "model": "tumor-classifier",
                                                  "version": "1.1.0"}).text  # fmt: skip
        assert 'id="data-volume"' in page
        drifted = re.findall(r'<tr class="drifted">\s*<th scope="row">([^<]+)</th>', page)
        assert "mean texture" in drifted
        assert (tmp_path / "inferlog-demo.toml").is_file()
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert f"The console is at http://127.0.0.1:{port}/" in out
