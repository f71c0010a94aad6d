"""Traces and sessions: the entries of one trace as the tree their spans made, a session's traces in order.

An LLM app's records keep ``trace_id``, ``span_id`` and ``parent_id``, so the call tree is rebuilt
from the log alone. A parent that is not in the log (a span that was not an AI operation, such as the
web request around an agent) becomes a *gap* node: its children stay together under it, and the reader
sees where the tree leaves the log.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from inferlog.query import iter_entries
from inferlog.record.canonical import format_timestamp
from inferlog.record.model import InferenceRecord, StoredEntry
from inferlog.store.base import Query
from inferlog.store.protocols import EntryReader

MAX_TRACE_ENTRIES = 10_000
"""The most entries one trace or session read returns (``truncated`` says when there were more)."""


@dataclass
class Node:
    """One span of the tree: an entry, or (``entry is None``) a parent span the log does not hold."""

    span_id: str | None
    entry: StoredEntry | None = None
    children: list[Node] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: the entry's id (None for a gap), its span id, and the children."""
        return {
            "id": self.entry.id if self.entry is not None else None,
            "span_id": self.span_id,
            "children": [child.to_dict() for child in self.children],
        }


@dataclass
class Trace:
    """A trace's entries (time order) and the roots of its tree."""

    trace_id: str | None
    entries: list[StoredEntry]
    roots: list[Node]


def read_entries(store: EntryReader, query: Query) -> tuple[list[StoredEntry], bool]:
    """Up to MAX_TRACE_ENTRIES entries matching ``query``; True if there were more."""
    found: list[StoredEntry] = []
    for stored in iter_entries(store, replace(query, limit=1000)):
        if len(found) == MAX_TRACE_ENTRIES:
            return found, True
        found.append(stored)
    return found, False


def build_tree(entries: Iterable[StoredEntry]) -> list[Node]:
    """The roots of the call tree of these entries (children in time order).

    A record without a span id is a root of its own; a record whose parent is not among the entries
    hangs under a gap node for that parent, shared with its siblings.
    """
    ordered = sorted(entries, key=lambda s: (s.entry.ts, s.seq))
    nodes: dict[str, Node] = {}
    loose: list[Node] = []
    for stored in ordered:
        span_id = _field(stored, "span_id")
        node = Node(span_id, stored)
        if span_id is None or span_id in nodes:
            loose.append(node)  # no span id, or a second entry of the same span: never lost
        else:
            nodes[span_id] = node
    roots: list[Node] = []
    gaps: dict[str, Node] = {}
    for node in [*nodes.values(), *loose]:
        parent_id = _field(node.entry, "parent_id")
        if parent_id is None or _cycles(node, parent_id, nodes):
            roots.append(node)
        elif parent_id in nodes:
            nodes[parent_id].children.append(node)
        else:
            gap = gaps.get(parent_id)
            if gap is None:
                gap = gaps[parent_id] = Node(parent_id)
                roots.append(gap)
            gap.children.append(node)
    for node in [*roots, *nodes.values()]:
        node.children.sort(key=_start)
    roots.sort(key=_start)
    return roots


def _cycles(node: Node, parent_id: str, nodes: dict[str, Node]) -> bool:
    """Whether hanging ``node`` under ``parent_id`` closes a loop (ids a writer chose can say anything)."""
    seen: set[str] = set()
    current: str | None = parent_id
    while current is not None and current in nodes and current not in seen:
        if current == node.span_id:
            return True
        seen.add(current)
        current = _field(nodes[current].entry, "parent_id")
    return current is not None and current == node.span_id


def _field(stored: StoredEntry | None, name: str) -> str | None:
    entry = stored.entry if stored is not None else None
    value = getattr(entry, name, None) if isinstance(entry, InferenceRecord) else None
    return value if isinstance(value, str) else None


def _start(node: Node) -> tuple[str, int]:
    """Order by start time; a gap starts with its first child."""
    if node.entry is not None:
        return format_timestamp(node.entry.entry.ts), node.entry.seq
    return min((_start(child) for child in node.children), default=("", 0))


def group_traces(entries: Sequence[StoredEntry]) -> list[Trace]:
    """A session's entries as one Trace per trace id, in the order the traces started."""
    by_trace: dict[str | None, list[StoredEntry]] = {}
    for stored in sorted(entries, key=lambda s: (s.entry.ts, s.seq)):
        by_trace.setdefault(_field(stored, "trace_id"), []).append(stored)
    return [Trace(trace_id, found, build_tree(found)) for trace_id, found in by_trace.items()]
