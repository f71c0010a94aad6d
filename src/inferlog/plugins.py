"""Finding implementations by name: built-ins and third parties come in by the same door.

A target is ``"module:Class"``; built-ins are listed in code, plugins in an entry-point group
(``inferlog.stores``, ``inferlog.exporters``). A built-in name wins over a plugin of the same name.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any


def known(group: str, builtin: Mapping[str, str]) -> dict[str, str]:
    """Name -> ``"module:Class"`` for the built-ins, then every plugin in the entry-point ``group``."""
    targets = dict(builtin)
    for ep in entry_points(group=group):
        targets.setdefault(ep.name, ep.value)
    return targets


def load(target: str) -> Any:
    """The object a ``"module:Class"`` target names (imported on first use)."""
    module_name, _, attribute = target.partition(":")
    return getattr(import_module(module_name), attribute)
