"""Finding implementations by name: built-ins in a table here, third parties through entry points.

Each registry (stores by URL scheme, exporters by format, key stores by scheme) is one
:class:`Registry`: a table of built-ins, ``name -> "module:Class"``, and the entry-point group a
third-party package registers in (``inferlog.stores``, ``inferlog.exporters``, ``inferlog.keystores``).
Built-ins are not registered as entry points: the table works from a source checkout with no
install metadata and cannot go stale. A built-in name wins over a plugin of the same name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any


@dataclass(frozen=True)
class Registry:
    """Names -> ``"module:Class"`` targets: ``builtin`` first, then plugins in the entry-point ``group``."""

    group: str
    builtin: Mapping[str, str]

    def known(self) -> dict[str, str]:
        """Name -> target for the built-ins, then every plugin of the group (built-ins win a name)."""
        targets = dict(self.builtin)
        for ep in entry_points(group=self.group):
            targets.setdefault(ep.name, ep.value)
        return targets

    def load(self, name: str, unknown: Callable[[list[str]], Exception]) -> Any:
        """The object registered as ``name``, imported on first use.

        If none is, raises ``unknown(names)``: the caller's error, given every known name (built-ins
        first), so the message can say what to write instead.
        """
        targets = self.known()
        target = targets.get(name)
        if target is None:
            raise unknown(list(targets))
        module_name, _, attribute = target.partition(":")
        return getattr(import_module(module_name), attribute)
