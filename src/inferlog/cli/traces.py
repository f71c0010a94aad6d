"""``inferlog show --trace ID`` / ``--session ID``: a trace's records as the call tree they made."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click

from inferlog.cli._common import State
from inferlog.errors import NotFound
from inferlog.query.traces import MAX_TRACE_ENTRIES, Node, Trace, build_tree, group_traces, read_entries
from inferlog.record.model import InferenceRecord, StoredEntry
from inferlog.store.base import Query

_PREVIEW = 100  # characters of a message shown under its call


def show_trace(state: State, trace_id: str, purpose: str) -> None:
    """Print one trace as a tree (audited as a ``show`` of what it read)."""
    query = Query(trace_id=trace_id.strip().lower())
    entries = _read(state, query, purpose, f"no entries with trace id {trace_id!r} in {state.db}")
    trace = Trace(query.trace_id, entries, build_tree(entries))
    for line in render(trace):
        click.echo(line)


def show_session(state: State, session_id: str, purpose: str) -> None:
    """Print every trace of a session, in the order they started."""
    query = Query(session_id=session_id)
    entries = _read(state, query, purpose, f"no entries with session id {session_id!r} in {state.db}")
    traces = group_traces(entries)
    click.echo(f"session {session_id} · {len(traces)} trace(s) · {len(entries)} entries")
    for trace in traces:
        click.echo("")
        for line in render(trace):
            click.echo(line)


def _read(state: State, query: Query, purpose: str, missing: str) -> list[StoredEntry]:
    store = state.store()
    entries, truncated = read_entries(store, query)
    if not entries:
        raise NotFound(missing)
    state.audit("show", purpose, query, entries)
    if truncated:
        click.echo(f"(only the first {MAX_TRACE_ENTRIES:,} entries are shown)", err=True)
    return state.reveal(entries)


def render(trace: Trace) -> Iterator[str]:
    """The lines of a trace: a heading, then one line per span (and message previews below calls)."""
    sessions = sorted({s for s in (getattr(e.entry, "session_id", None) for e in trace.entries) if s})
    heading = f"trace {trace.trace_id or '(none)'} · {len(trace.entries)} entries"
    if sessions:
        heading += " · session " + ", ".join(sessions)
    yield heading
    for index, root in enumerate(trace.roots):
        yield from _lines(root, "", index == len(trace.roots) - 1)


def _lines(node: Node, prefix: str, last: bool) -> Iterator[str]:
    branch = "└─ " if last else "├─ "
    yield prefix + branch + _label(node)
    below = prefix + ("   " if last else "│  ")
    if node.entry is not None and isinstance(node.entry.entry, InferenceRecord):
        for preview in _previews(node.entry.entry):
            yield below + ("│    " if node.children else "     ") + preview
    for index, child in enumerate(node.children):
        yield from _lines(child, below, index == len(node.children) - 1)


def _label(node: Node) -> str:
    if node.entry is None:
        return f"(span {node.span_id}: not in the log, not an AI operation)"
    entry = node.entry.entry
    if not isinstance(entry, InferenceRecord):
        return f"{type(entry).__name__} {entry.id}"
    attributes = entry.attributes
    model = entry.model.name
    if entry.model.version and entry.model.version != entry.model.name:
        model += f" → {entry.model.version}"
    parts = [str(attributes.get("operation") or "inference"), model, entry.status]
    if entry.latency_ms is not None:
        parts.append(f"{entry.latency_ms:,.1f} ms")
    usage = attributes.get("usage")
    if isinstance(usage, dict) and ("input_tokens" in usage or "output_tokens" in usage):
        parts.append(f"tokens {usage.get('input_tokens', '?')} in / {usage.get('output_tokens', '?')} out")
    if entry.error is not None:
        parts.append(f"{entry.error.type}: {entry.error.message}"[:_PREVIEW])
    parts.append(entry.id)
    return "  ".join(parts)


def _previews(entry: InferenceRecord) -> Iterator[str]:
    """The last input message and the first output message, one line each (sealed entries say so)."""
    if entry.sealed is not None:
        yield "(input and output sealed: no key to open them here)"
        return
    for arrow, value, pick in (("→", entry.input, -1), ("←", entry.output, 0)):
        text = _message_text(value, pick)
        if text:
            flat = " ".join(text.split())
            yield f"{arrow} {flat[:_PREVIEW]}{'…' if len(flat) > _PREVIEW else ''}"


def _message_text(value: Any, pick: int) -> str:
    if not isinstance(value, dict):
        return "" if value is None else str(value)
    messages = value.get("messages")
    if isinstance(messages, list) and messages:
        message = messages[pick]
        if isinstance(message, dict):
            role = message.get("role", "")
            texts = [
                str(part.get("content") or part.get("response") or part.get("name") or "")
                for part in message.get("parts", [])
                if isinstance(part, dict)
            ]
            return f"{role}: " + " ".join(t for t in texts if t)
    for key in ("value", "result", "arguments", "prompts", "documents"):
        if key in value:
            return str(value[key])
    return ""
