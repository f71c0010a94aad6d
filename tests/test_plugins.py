"""Third-party implementations come in through entry points; built-ins through the code's own tables.

Each test installs a real (if tiny) distribution: a ``*.dist-info`` folder with ``entry_points.txt``
on ``sys.path``, which ``importlib.metadata`` reads as it would an installed package's.
"""

from __future__ import annotations

import textwrap
import tomllib
import uuid
from pathlib import Path
from typing import Any

import pytest

from inferlog.errors import UnknownStore, UsageError
from inferlog.export import exporters, get_exporter
from inferlog.keystore.base import open_keystore
from inferlog.store import open_store, store_schemes
from inferlog.store.sqlite import SQLiteStore

PLUGIN = '''
class MemoStore:
    """A store backend from another package: it only remembers how it was opened."""

    def __init__(self, url, **options):
        self.url = url
        self.options = options


class Impostor(MemoStore):
    """Claims a built-in's scheme: the built-in must win."""


class TSVExporter:
    name = "tsv"


class VaultKeyStore:
    def __init__(self, where):
        self.where = where
'''


def _install(root: Path, entry_points: str) -> str:
    """Put a distribution with these entry points and the PLUGIN module on ``root``; the module's name."""
    module = f"plugin_{uuid.uuid4().hex[:8]}"
    (root / f"{module}.py").write_text(PLUGIN)
    info = root / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points).format(module=module))
    return module


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A third-party package registering a store, an exporter and a key store."""
    module = _install(
        tmp_path,
        """
        [inferlog.stores]
        memo = {module}:MemoStore
        sqlite = {module}:Impostor

        [inferlog.exporters]
        tsv = {module}:TSVExporter

        [inferlog.keystores]
        vault = {module}:VaultKeyStore
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return module


def test_a_third_party_store_opens_by_its_scheme(plugin: str) -> None:
    """open_store finds a backend registered in the inferlog.stores group and passes it the URL and options."""
    store: Any = open_store("memo://somewhere/log", pool_size=2)
    assert type(store).__module__ == plugin
    assert type(store).__name__ == "MemoStore"
    assert (store.url, store.options) == ("memo://somewhere/log", {"pool_size": 2})
    assert list(store_schemes())[:3] == ["sqlite", "postgresql", "postgres"]  # built-ins first
    assert store_schemes()["memo"] == f"{plugin}:MemoStore"


def test_a_built_in_scheme_cannot_be_taken_over(plugin: str, sqlite_url: str) -> None:
    """A plugin claiming a built-in's name is ignored: sqlite:// still opens the SQLite store."""
    store = open_store(sqlite_url)
    try:
        assert isinstance(store, SQLiteStore)
    finally:
        store.close()


def test_unknown_names_are_refused_naming_the_plugins_too(plugin: str) -> None:
    """The error for an unknown scheme or format lists every known one, plugins included."""
    with pytest.raises(UnknownStore, match=r"one of memo://, postgres://, postgresql://, sqlite://"):
        open_store("mysql://localhost/x")
    with pytest.raises(UsageError, match=r"known formats are jsonl, csv, parquet, tsv"):
        get_exporter("xml")
    with pytest.raises(UsageError, match=r"known: file, vault"):
        open_keystore("s3://bucket/keys")


def test_third_party_exporters_and_key_stores_are_found(plugin: str) -> None:
    """The other registries use the same lookup: a plugin's exporter and key store are found by name."""
    assert list(exporters()) == ["jsonl", "csv", "parquet", "tsv"]
    assert type(get_exporter("tsv")).__name__ == "TSVExporter"
    keystore: Any = open_keystore("vault://team/keys")
    assert (type(keystore).__name__, keystore.where) == ("VaultKeyStore", "team/keys")


def test_built_ins_are_not_entry_points() -> None:
    """pyproject.toml registers no built-in as an entry point: the code's tables are the one list of them."""
    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
    groups = project.get("entry-points", {})
    assert [group for group in groups if group.startswith("inferlog.")] == []
