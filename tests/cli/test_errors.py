"""Every error of the tree ends a command with one red line and exit code 1, never a traceback."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from inferlog import errors
from inferlog.cli import InferlogGroup
from inferlog.errors import BadParameter, InferlogError
from tests.cli.test_cli import assert_one_line_error

TREE = sorted(
    (
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, InferlogError)
    ),
    key=lambda kind: kind.__name__,
)


@pytest.mark.parametrize("kind", TREE, ids=lambda kind: kind.__name__)
def test_each_error_is_one_line(kind: type[InferlogError]) -> None:
    """A command raising it exits 1 with its message on one stderr line (a BadParameter names the option)."""

    @click.group(cls=InferlogGroup)
    def group() -> None:
        pass

    @group.command()
    def fail() -> None:
        if issubclass(kind, BadParameter):
            raise kind("must be a duration like 30m", field="since")
        raise kind(f"a {kind.__name__}\nover two lines")

    result = CliRunner().invoke(group, ["fail"])
    expected = "--since: must be a duration like 30m" if issubclass(kind, BadParameter) else kind.__name__
    assert_one_line_error(result, expected)
