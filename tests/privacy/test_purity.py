"""The privacy core stays pure: no database, socket, framework or file writes; a curated surface."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import inferlog.privacy

PACKAGE = Path(inferlog.privacy.__file__).parent
PURE = ["__init__.py", "paths.py", "redact.py", "pseudonym.py", "policy.py"]
# The [monitoring] table's values and their parser are pure too (stdlib and inferlog.errors only).
ALLOWED_INFERLOG = {
    "inferlog.errors",
    "inferlog.record.model",
    "inferlog.monitor.policy",
    "inferlog.monitor.rules",
}
FORBIDDEN_STDLIB = {
    "sqlite3",
    "socket",
    "ssl",
    "http",
    "urllib",
    "asyncio",
    "subprocess",
    "shutil",
    "tempfile",
}


def imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", PURE)
def test_imports_only_stdlib_msgspec_and_the_record(module: str) -> None:
    """Each module imports the stdlib (minus I/O-ish modules), msgspec, inferlog.errors/record.model and itself."""
    for name in imported(PACKAGE / module):
        top = name.split(".")[0]
        if top == "inferlog":
            assert name in ALLOWED_INFERLOG or name.startswith("inferlog.privacy."), name
            assert name not in {"inferlog.privacy.seal", "inferlog.privacy.protect"}, name
        else:
            assert top == "msgspec" or top in sys.stdlib_module_names, name
            assert top not in FORBIDDEN_STDLIB, name


@pytest.mark.parametrize("module", PURE)
def test_writes_no_files(module: str) -> None:
    """No open() for writing and no Path.write_* (load_policy only reads)."""
    source = (PACKAGE / module).read_text(encoding="utf-8")
    for needle in ("write_text", "write_bytes", "open(", ".unlink(", "mkdir("):
        assert needle not in source, needle


def test_all_is_exact_and_sorted() -> None:
    """``inferlog.privacy.__all__`` is sorted, every name in it exists, and every public name is in it."""
    names = inferlog.privacy.__all__
    assert names == sorted(names)
    for name in names:
        assert hasattr(inferlog.privacy, name), name
    public = {n for n in vars(inferlog.privacy) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(inferlog.privacy, n)).__name__ == "module"}
    assert public - modules == set(names)
