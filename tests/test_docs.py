"""Docs keep up with the code: every command, setting and route is documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from inferlog.config import SETTINGS
from inferlog.server import create_app
from inferlog.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parent.parent


def test_generated_references_are_current() -> None:
    """docs/cli-reference.md and docs/settings.md match what scripts/gen_docs.py makes from the code."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
        capture_output=True,
        text=True,
        env={"COLUMNS": "100", "PATH": ""},
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_every_setting_is_documented(name: str) -> None:
    """Each INFERLOG_* variable appears in docs/settings.md."""
    assert f"`{name}`" in (ROOT / "docs" / "settings.md").read_text()


def test_every_route_is_documented(tmp_path: Path) -> None:
    """Each route of the HTTP API appears in docs/http-api.md."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 'd.db'}")
    app = create_app(store)
    text = (ROOT / "docs" / "http-api.md").read_text()
    spec_paths = app.openapi()["paths"]
    store.close()
    paths = [p for p in spec_paths if p.startswith(("/v1", "/healthz", "/metrics"))]
    assert len(paths) >= 10
    missing = [p for p in sorted(paths) if p.split("{")[0].rstrip("/") not in text]
    assert not missing


def test_readme_links_resolve() -> None:
    """Every docs/ (and CHANGELOG) link in the README points at a file that exists."""
    import re

    readme = (ROOT / "README.md").read_text()
    for link in re.findall(r"\]\(((?:docs/|CHANGELOG)[^)]+)\)", readme):
        assert (ROOT / link).exists(), link


_NOT_SHIPPED = re.compile(
    r"shared/spec|shared/|\bspec §|\bR(?:[1-9]|1[0-6])\b|DESIGN\.md|formats\.md|integrity\.md §"
)


def _user_facing_texts() -> list[Path]:
    """What a user of the package reads: README.md, docs/, and the package source (docstrings, CLI help)."""
    return [
        ROOT / "README.md",
        ROOT / "CHANGELOG.md",
        *sorted((ROOT / "docs").glob("*.md")),
        *sorted((ROOT / "src" / "inferlog").rglob("*.py")),
    ]


def test_docs_stand_alone() -> None:
    """No doc, docstring or help text cites the design notes (shared/spec, DESIGN.md) or requirement ids like R10."""
    cited = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _user_facing_texts()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if _NOT_SHIPPED.search(line)
    ]
    assert not cited, "\n".join(cited)


_SDK_SETUP = """
from opentelemetry.sdk.trace import TracerProvider
import opentelemetry.trace
opentelemetry.trace.set_tracer_provider(TracerProvider())
"""
_SPAN = """
from opentelemetry import trace as _t
with _t.get_tracer("docs").start_as_current_span("chat", attributes={"gen_ai.operation.name": "chat"}):
    pass
_t.get_tracer_provider().shutdown()
"""


def test_the_llm_traces_in_process_snippet_runs_as_written(tmp_path: Path) -> None:
    """docs/llm-traces.md's "two lines", pasted into an app that set up the OTel SDK, run and log a span."""
    text = (ROOT / "docs" / "llm-traces.md").read_text()
    section = text[text.index("## In process") :]
    snippet = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert snippet is not None
    script = tmp_path / "app.py"
    script.write_text(_SDK_SETUP + "\n" + snippet.group(1) + _SPAN)
    db = tmp_path / "log.db"
    env = {"PATH": "/usr/bin:/bin", "INFERLOG_DB": f"sqlite:///{db}", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    store = SQLiteStore(f"sqlite:///{db}")
    try:
        assert store.size() == 1
    finally:
        store.close()
