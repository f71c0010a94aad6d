"""The curated public surface of `import inferlog`."""

from __future__ import annotations

import inferlog


def test_all_is_sorted_and_exact() -> None:
    """__all__ is sorted, every name in it exists, and no public name is missing from it."""
    assert inferlog.__all__ == sorted(inferlog.__all__)
    for name in inferlog.__all__:
        assert hasattr(inferlog, name), name
    public = {n for n in vars(inferlog) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(inferlog, n)).__name__ == "module"}
    assert public - modules == set(inferlog.__all__)


def test_contract_names_exist() -> None:
    """The names the product promises (issue 2) are there."""
    for name in ("open", "Model", "wrap"):
        assert callable(getattr(inferlog, name))
    for method in ("record", "inference", "trace", "feedback", "get", "query", "flush", "close"):
        assert callable(getattr(inferlog.Log, method))
