"""The version is written once (``inferlog.__version__``); the package metadata and the CLI agree with it."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

from click.testing import CliRunner

import inferlog
from inferlog.cli import cli

ROOT = Path(__file__).resolve().parents[1]


def test_version_equals_the_installed_metadata() -> None:
    """inferlog.__version__ is what the installed distribution says (a stale editable install fails here)."""
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:[ab]\d+|rc\d+)?(?:\.post\d+)?(?:\.dev\d+)?", inferlog.__version__)
    assert inferlog.__version__ == importlib.metadata.version("inferlog")


def test_pyproject_takes_the_version_from_the_package() -> None:
    """pyproject.toml declares the version dynamic and reads it from src/inferlog/__init__.py, not a second copy."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["hatch"]["version"]["path"] == "src/inferlog/__init__.py"


def test_cli_version_is_the_package_version() -> None:
    """`inferlog --version` prints inferlog.__version__."""
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"inferlog, version {inferlog.__version__}\n"


def test_changelog_has_a_section_for_the_version() -> None:
    """CHANGELOG.md has an [Unreleased] section and one for the current version."""
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog
    assert f"## [{inferlog.__version__}] - " in changelog
