"""Dotted paths into an entry's payload, and copy-on-write transforms of the leaves under them.

A path names a payload field and, optionally, a way down into its JSON: ``input`` (the whole
subtree), ``input.messages.*.content``, ``attributes.applicant.email``, ``subject``. ``*`` matches
every key of an object and every item of a list; a number matches that list index (or that object
key). The path ``*`` alone means every payload field the entry has.

Why copy-on-write: entries can be frozen Structs shared with the caller (the SDK hands us the user's
own dicts), so nothing is mutated; and most entries have nothing to change, so only the containers
on the way to a changed leaf are copied, and an untouched entry comes back as the very same object.
That identity is what lets a processor cost nearly nothing on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import msgspec

from inferlog.errors import UsageError
from inferlog.record.model import Entry, ErrorInfo

PAYLOAD_FIELDS: tuple[str, ...] = (
    "input", "output", "parameters", "attributes", "error", "label", "outcome", "override",
    "comment", "actor", "subject", "session_id",
)  # fmt: skip
"""What an entry says (as opposed to its metadata: id, system, ts, model, status, ...)."""

STRING_FIELDS = frozenset({"comment", "actor", "subject", "session_id"})
"""Payload fields that hold one string, so a path cannot go below them."""

WILDCARD = "*"

Leaf = Callable[[Any], Any]
E = TypeVar("E", bound=Entry)  # processors give back the kind of entry they were given
_EMPTY = frozenset({dict, list, tuple, str})  # empty ones have no leaves to change


def parse_path(text: object) -> tuple[str, ...]:
    """The segments of one path, or a UsageError that says what is wrong with it.

    ``error`` and ``error.message`` both mean the error's message (its ``type`` is the exception
    class, metadata); keys that contain a dot cannot be addressed one by one (name their parent).
    """
    if not isinstance(text, str) or not text:
        raise UsageError(f"{_show(text)} is not a path (write e.g. input, attributes.applicant.email, *)")
    if text == WILDCARD:
        return (WILDCARD,)
    segments = tuple(text.split("."))
    if "" in segments:
        raise UsageError(f"{_show(text)} is not a path: empty segment (write a.b.c)")
    for segment in segments:
        if WILDCARD in segment and segment != WILDCARD:
            raise UsageError(f"{_show(text)} is not a path: * stands for a whole segment (write a.*.b)")
    root = segments[0]
    if root != WILDCARD and root not in PAYLOAD_FIELDS:
        raise UsageError(
            f"{_show(text)} is not a path: {root} is not a payload field (use one of: {', '.join(PAYLOAD_FIELDS)})"
        )
    if root in STRING_FIELDS and len(segments) > 1:
        raise UsageError(f"{_show(text)} is not a path: {root} is a string, there is nothing below it")
    if root == "error":
        if segments[1:] not in ((), ("message",)):
            raise UsageError(f"{_show(text)} is not a path: only error.message can be named below error")
        return ("error",)
    return segments


def _show(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


class _Node:
    """One level of the compiled path trie.

    ``named`` children already include what a ``*`` at this level asks for, so a key is looked up
    once: ``named.get(key, star)``.
    """

    __slots__ = ("indexes", "named", "star", "terminal")

    def __init__(self, suffixes: set[tuple[str, ...]]) -> None:
        self.terminal = () in suffixes
        self.named: dict[str, _Node] = {}
        self.star: _Node | None = None
        self.indexes: tuple[tuple[int, _Node], ...] = ()
        if self.terminal:
            return  # the whole subtree: deeper paths add nothing
        starred = {s[1:] for s in suffixes if s[0] == WILDCARD}
        for key in {s[0] for s in suffixes if s[0] != WILDCARD}:
            self.named[key] = _Node({s[1:] for s in suffixes if s[0] == key} | starred)
        if starred:
            self.star = _Node(starred)
        self.indexes = tuple((int(k), node) for k, node in self.named.items() if k.isdigit())


class Selector:
    """A compiled set of paths, applied to entries without mutating them.

    ``map_strings(entry, fn)`` replaces every string leaf ``s`` under the paths by ``fn(s)``;
    ``map_values(entry, fn)`` does the same for every scalar leaf (str, int, float, bool, None,
    anything that is not a dict, list or tuple). Object keys are never changed. A transform that
    has nothing to change must return its argument itself: identity is how "unchanged" is detected.
    """

    def __init__(self, paths: Iterable[str]) -> None:
        parsed = [parse_path(p) for p in paths]
        self.paths: tuple[str, ...] = tuple(dict.fromkeys(".".join(p) for p in parsed))
        roots = []
        for field in PAYLOAD_FIELDS:
            suffixes = {p[1:] for p in parsed if p[0] in (field, WILDCARD)}
            if suffixes:
                roots.append((field, _Node(suffixes)))
        self._roots: tuple[tuple[str, _Node], ...] = tuple(roots)
        self._by_type: dict[type, tuple[tuple[str, _Node], ...]] = {}

    def __bool__(self) -> bool:
        return bool(self._roots)

    def __repr__(self) -> str:
        return f"Selector({list(self.paths)!r})"

    def map_strings(self, entry: E, fn: Callable[[str], str]) -> E:
        """The entry with ``fn`` applied to every string under the paths (the same object if none changed)."""
        return self._apply(entry, fn, strings=True)

    def map_values(self, entry: E, fn: Leaf) -> E:
        """The entry with ``fn`` applied to every scalar under the paths (the same object if none changed)."""
        return self._apply(entry, fn, strings=False)

    def _apply(self, entry: E, fn: Leaf, *, strings: bool) -> E:
        kind = type(entry)
        roots = self._by_type.get(kind)
        if roots is None:  # once per entry type: only the fields it has (no getattr misses later)
            fields = set(kind.__struct_fields__)
            roots = self._by_type[kind] = tuple(r for r in self._roots if r[0] in fields)
        changes: dict[str, Any] | None = None
        for field, node in roots:
            value = getattr(entry, field)
            if value is None or (not value and type(value) in _EMPTY):
                continue
            if type(value) is ErrorInfo:
                new = _error(value, node, fn, strings)
            else:
                new = _walk(value, node, fn, strings)
            if new is not value:
                if changes is None:
                    changes = {}
                changes[field] = new
        if changes is None:
            return entry
        return msgspec.structs.replace(entry, **changes)


def _error(value: ErrorInfo, node: _Node, fn: Leaf, strings: bool) -> ErrorInfo:
    # An error is addressed as if it were {"message": ...}.
    if not node.terminal:
        found = node.named.get("message", node.star)
        if found is None:
            return value
        node = found
    message = _walk(value.message, node, fn, strings)
    return value if message is value.message else msgspec.structs.replace(value, message=message)


def _walk(value: Any, node: _Node, fn: Leaf, strings: bool) -> Any:
    if node.terminal:
        return _every(value, fn, strings)
    if isinstance(value, dict):
        out: Any = None
        if node.star is None:  # only named keys: look them up instead of scanning the dict
            for key, child in node.named.items():
                if key in value:
                    old = value[key]
                    new = _walk(old, child, fn, strings)
                    if new is not old:
                        if out is None:
                            out = dict(value)
                        out[key] = new
        else:
            for key, old in value.items():
                child = node.named.get(key, node.star) if node.named else node.star
                new = _walk(old, child, fn, strings)
                if new is not old:
                    if out is None:
                        out = dict(value)
                    out[key] = new
        return value if out is None else out
    if isinstance(value, list | tuple):
        items: list[Any] | None = None
        if node.star is None:
            pairs: Iterable[tuple[int, _Node]] = (p for p in node.indexes if p[0] < len(value))
        else:
            pairs = ((i, node.named.get(str(i), node.star)) for i in range(len(value)))
        for index, child in pairs:
            old = value[index]
            new = _walk(old, child, fn, strings)
            if new is not old:
                if items is None:
                    items = list(value)
                items[index] = new
        if items is None:
            return value
        return items if isinstance(value, list) else tuple(items)
    return value  # a scalar where the path goes deeper: nothing there


_SCALARS = frozenset({int, float, bool, type(None)})


def _every(value: Any, fn: Leaf, strings: bool) -> Any:
    # The hot loop of every processor: the common leaf types are handled inline, without a call.
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        pairs: Iterable[tuple[Any, Any]] = value.items()
        copy: Callable[[Any], Any] = dict
    elif isinstance(value, list | tuple):
        pairs, copy = enumerate(value), list
    else:
        return value if strings else fn(value)
    out: Any = None  # a copy of value, made at the first leaf fn changes
    for key, old in pairs:
        kind = type(old)
        if kind is str:
            new = fn(old)
        elif kind in _SCALARS:
            if strings:
                continue
            new = fn(old)
        else:
            new = _every(old, fn, strings)
        if new is not old:
            if out is None:
                out = copy(value)
            out[key] = new
    if out is None:
        return value
    return tuple(out) if isinstance(value, tuple) else out
