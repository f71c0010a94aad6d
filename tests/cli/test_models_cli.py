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


def _schema_file(tmp_path: Path, name: str, inputs: list[str]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"inputs": [{"name": n, "datatype": "FP64"} for n in inputs],
                                "outputs": [{"name": "score"}]}))  # fmt: skip
    return path


def test_schemas_are_recorded_shown_and_a_change_flagged(filled: Filled, tmp_path: Path) -> None:
    """``register --schema`` and ``models schema`` record schemas; the same again writes nothing; a change is flagged."""
    first = _schema_file(tmp_path, "v1.json", ["age", "income"])
    size = store_size(filled.url)
    done = run(
        "--db", filled.url, "models", "register", "credit-risk", "1.0", "--digest", A, "--schema", str(first)
    )
    assert done.exit_code == 0, done.output
    assert store_size(filled.url) == size + 2  # the registration and the schema
    again = run("--db", filled.url, "models", "schema", "credit-risk", "1.0", str(first))
    assert again.exit_code == 0, again.output
    assert store_size(filled.url) == size + 2
    (item,) = json_lines(run("--db", filled.url, "models", "list", "--json").stdout)
    assert [f["name"] for f in item["schema"]["inputs"]] == ["age", "income"]
    assert (item["schema"]["source"], item["schema"]["changed"]) == ("user", False)
    shown = run("--db", filled.url, "models", "show", "credit-risk", "1.0")
    assert "input age FP64" in shown.stdout
    assert "schema changed" not in shown.stdout
    changed = _schema_file(tmp_path, "v1b.json", ["age"])
    assert run("--db", filled.url, "models", "schema", "credit-risk", "1.0", str(changed)).exit_code == 0
    assert store_size(filled.url) == size + 3
    assert "schema changed" in run("--db", filled.url, "models", "show", "credit-risk", "1.0").stdout
    assert "schema changed" in run("--db", filled.url, "models", "list").stdout
    shown_json = json.loads(run("--db", filled.url, "models", "show", "credit-risk", "1.0", "--json").stdout)
    assert shown_json["schema"]["changed"] is True
    assert shown_json["digest"] == A


def test_a_schema_of_an_unregistered_version_is_listed(filled: Filled, tmp_path: Path) -> None:
    """A schema recorded for a version nobody registered still shows in ``list`` and ``show``."""
    path = _schema_file(tmp_path, "s.json", ["x"])
    assert run("--db", filled.url, "models", "schema", "fraud-net", "7", str(path)).exit_code == 0
    (item,) = json_lines(run("--db", filled.url, "models", "list", "--json").stdout)
    assert (item["name"], item["version"], item["schema"]["inputs"]) == (
        "fraud-net",
        "7",
        [{"name": "x", "datatype": "FP64"}],
    )
    assert "fraud-net" in run("--db", filled.url, "models", "list").stdout
    assert "input x FP64" in run("--db", filled.url, "models", "show", "fraud-net", "7").stdout


def test_bad_schemas_are_one_line_errors(filled: Filled, tmp_path: Path) -> None:
    """Not JSON, a field without a name, or an unknown version to show: one line each, and nothing is written."""
    size = store_size(filled.url)
    not_json = tmp_path / "bad.json"
    not_json.write_text("{inputs")
    assert_one_line_error(
        run("--db", filled.url, "models", "schema", "m", "1", str(not_json)), "not a JSON schema"
    )
    nameless = tmp_path / "nameless.json"
    nameless.write_text(json.dumps({"inputs": [{"datatype": "FP64"}]}))
    assert_one_line_error(
        run("--db", filled.url, "models", "schema", "m", "1", str(nameless)), "schema.inputs[0].name"
    )
    assert_one_line_error(
        run("--db", filled.url, "models", "register", "m", "1", "--digest", A, "--schema", str(nameless)),
        "schema.inputs[0].name",
    )
    assert store_size(filled.url) == size
    assert_one_line_error(run("--db", filled.url, "models", "show", "m", "1"), "neither registered")
