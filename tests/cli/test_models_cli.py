"""``inferlog models`` and the unregistered-version flag of ``inferlog stats``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import Filled, assert_one_line_error, fill, json_lines, run, store_size

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


@pytest.fixture
def filled(tmp_path: Path) -> Filled:
    """A log with credit-risk 1.0 and 2.0 and fraud-net 7 records (see tests/cli/test_cli.py)."""
    return fill(tmp_path)


def test_register_and_list(filled: Filled, tmp_path: Path) -> None:
    """``models register`` writes one admin entry; ``models list --json`` shows it with its card."""
    card = tmp_path / "card.md"
    card.write_text("# credit risk 1.0\n")
    size = store_size(filled.url)
    done = run("--db", filled.url, "models", "register", "credit-risk", "1.0", "--digest", A,
               "--uri", "mlflow://runs/1", "--card", str(card))  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "registered credit-risk 1.0" in done.stdout
    assert store_size(filled.url) == size + 1
    listed = run("--db", filled.url, "models", "list", "--json")
    (item,) = json_lines(listed.stdout)
    assert (item["name"], item["version"], item["digest"], item["uri"]) == (
        "credit-risk",
        "1.0",
        A,
        "mlflow://runs/1",
    )
    assert item["card"]["ref"] == "card.md"
    assert item["registered_by"].startswith("cli:")
    table = run("--db", filled.url, "models", "list")
    assert "credit-risk" in table.stdout
    assert "mlflow://runs/1" in table.stdout


def test_bad_registrations_are_one_line_errors(filled: Filled) -> None:
    """A malformed digest and a second digest for a version are each one line, and nothing is written."""
    assert run("--db", filled.url, "models", "register", "credit-risk", "1.0", "--digest", A).exit_code == 0
    size = store_size(filled.url)
    assert_one_line_error(
        run("--db", filled.url, "models", "register", "credit-risk", "1.0", "--digest", "abc"), "digest"
    )
    assert_one_line_error(
        run("--db", filled.url, "models", "register", "credit-risk", "1.0", "--digest", B),
        "is registered with digest",
        "new version",
    )
    assert store_size(filled.url) == size


def test_stats_flags_model_versions_that_are_not_registered(filled: Filled) -> None:
    """``stats`` names the (model, version) pairs seen in records that no registration covers."""
    assert run("--db", filled.url, "models", "register", "credit-risk", "1.0", "--digest", A).exit_code == 0
    numbers = json.loads(run("--db", filled.url, "stats", "--json").stdout)
    assert sorted((row["model"], row["version"]) for row in numbers["unregistered"]) == [
        ("credit-risk", "2.0"),
        ("fraud-net", "7"),
    ]
    table = run("--db", filled.url, "stats").stdout
    assert "registered" in table
    assert "2 model version(s) seen in records are not registered" in " ".join(table.split())
