"""The error tree: every exception inferlog defines is in it, has a status, and is drawn as it is."""

from __future__ import annotations

import importlib
import pkgutil
import re

import inferlog
from inferlog import errors
from inferlog.cli import CliError
from inferlog.errors import InferlogError

_NOT_IMPORTED = {"inferlog.__main__"}  # importing it runs the command
# The evidence pack's one-file verifier runs where inferlog is not installed: it imports nothing of
# inferlog, so its own exception cannot come from inferlog.errors.
_STANDS_ALONE = {"inferlog.evidence.standalone"}


def _every_module() -> list[str]:
    names = ["inferlog"]
    for info in pkgutil.walk_packages(inferlog.__path__, prefix="inferlog."):
        if info.name not in _NOT_IMPORTED:
            importlib.import_module(info.name)
            names.append(info.name)
    return names


def _exceptions_defined_in_inferlog() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in _every_module():
        for value in vars(importlib.import_module(name)).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__.split(".")[0] == "inferlog"
                and value.__module__ not in _STANDS_ALONE
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[key] for key in sorted(found)]


def _tree() -> list[type[InferlogError]]:
    return [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, InferlogError)
    ]


def test_every_exception_is_an_inferlog_error_with_a_status_defined_in_errors() -> None:
    """Each exception class in the package (but the CLI's click one) is an InferlogError from inferlog.errors with a 4xx/5xx status."""
    found = _exceptions_defined_in_inferlog()
    assert len(found) >= 20
    assert CliError in found  # the walk does reach the faces
    for kind in found:
        if kind is CliError:
            continue
        assert issubclass(kind, InferlogError), kind
        assert kind.__module__ == "inferlog.errors", f"{kind.__qualname__} belongs in inferlog.errors"
        assert isinstance(kind.http_status, int)
        assert 400 <= kind.http_status <= 599, kind


_LINE = re.compile(
    r"^    (?P<indent>(?:[│ ]   )*)(?P<branch>[├└]── )?(?P<name>\w+)(?P<marks>(?: \([VK]\))?)\s+(?P<status>\d{3})  "
)


def test_the_docstring_draws_the_tree_as_it_is() -> None:
    """The tree in errors.py's docstring names every class once, under its parent, with its status and built-in bases."""
    doc = errors.__doc__ or ""
    drawn = [match for line in doc.splitlines() if (match := _LINE.match(line))]
    assert sorted(m["name"] for m in drawn) == sorted(kind.__name__ for kind in _tree())
    parents: list[str] = []
    for match in drawn:
        kind = getattr(errors, match["name"])
        depth = len(match["indent"]) // 4 + (1 if match["branch"] else 0)
        parents[depth:] = [match["name"]]
        assert int(match["status"]) == kind.http_status, match["name"]
        if depth:
            assert kind.__bases__[0] is getattr(errors, parents[depth - 1]), match["name"]
        assert ("(V)" in match["marks"]) == (ValueError in kind.__bases__), match["name"]
        assert ("(K)" in match["marks"]) == (KeyError in kind.__bases__), match["name"]
