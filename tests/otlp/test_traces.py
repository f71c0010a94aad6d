"""Reading by trace and session: the tree rebuilt from the log, in the CLI and over HTTP (audited)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from inferlog.cli import cli
from inferlog.ingest.otlp_map import record_id
from inferlog.pipeline import Pipeline
from inferlog.query.traces import Node, build_tree
from inferlog.record.model import InferenceRecord, Model, StoredEntry
from inferlog.store.base import Query
from inferlog.store.sqlite import SQLiteStore
from inferlog.testing import make_record
from tests.otlp.spans import chat_spans, protobuf_body
from tests.server.conftest import Server

TRACE = "ab" * 16
T0 = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)


def _span(span_id: str, parent_id: str | None, seconds: int, **fields: Any) -> InferenceRecord:
    defaults: dict[str, Any] = {"model": Model("gpt-test", "gpt-test-1"), "attributes": {"operation": "chat"}}
    return make_record(
        id=record_id(TRACE, span_id), trace_id=TRACE, span_id=span_id, parent_id=parent_id,
        ts=T0 + dt.timedelta(seconds=seconds), session_id="conv-9", **(defaults | fields),
    )  # fmt: skip


def _stored(records: list[InferenceRecord]) -> list[StoredEntry]:
    pipeline = Pipeline()
    out = []
    for seq, record in enumerate(records, 1):
        p = pipeline.prepare(record)
        out.append(
            StoredEntry(seq=seq, entry=p.entry, logged_at=T0, body=p.body, leaf=p.leaf, leaf_hash=p.leaf_hash)
        )
    return out


def _shape(nodes: list[Node]) -> list[Any]:
    return [(n.span_id, _shape(n.children)) for n in nodes]


def test_tree_nests_children_and_groups_orphans_under_a_gap() -> None:
    """Children hang under their parent in time order; spans whose parent is not logged share one gap node."""
    records = [
        _span("a" * 16, None, 0),
        _span("c" * 16, "a" * 16, 2),
        _span("b" * 16, "a" * 16, 1),
        _span("d" * 16, "f" * 16, 3),  # parent f: an HTTP span, not in the log
        _span("e" * 16, "f" * 16, 4),
    ]
    roots = build_tree(_stored(records))
    assert _shape(roots) == [
        ("a" * 16, [("b" * 16, []), ("c" * 16, [])]),
        ("f" * 16, [("d" * 16, []), ("e" * 16, [])]),
    ]
    assert roots[1].entry is None


def test_tree_survives_loops_and_self_parents() -> None:
    """Ids a writer chose may loop (a→b→a) or name themselves as parent: every entry is still shown, once."""
    records = [_span("a" * 16, "b" * 16, 0), _span("b" * 16, "a" * 16, 1), _span("c" * 16, "c" * 16, 2)]
    roots = build_tree(_stored(records))
    seen: list[str | None] = []

    def walk(nodes: list[Node]) -> None:
        for node in nodes:
            seen.append(node.span_id)
            walk(node.children)

    walk(roots)
    assert sorted(s for s in seen if s) == ["a" * 16, "b" * 16, "c" * 16]


def test_show_trace_prints_the_tree(tmp_path: Path) -> None:
    """`inferlog show --trace ID` prints each call under its parent with model, tokens and message previews; the read is audited."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    store = SQLiteStore(url)
    pipeline = Pipeline()
    records = [
        _span("a" * 16, None, 0, attributes={"operation": "invoke_agent"}, model=Model("planner", "")),
        _span("b" * 16, "a" * 16, 1, input={"messages": [{"role": "user", "parts": [{"type": "text", "content": "Hi there"}]}]},
              output={"messages": [{"role": "assistant", "parts": [{"type": "text", "content": "Hello!"}]}]},
              attributes={"operation": "chat", "usage": {"input_tokens": 3, "output_tokens": 2}}),
    ]  # fmt: skip
    store.append([pipeline.prepare(r) for r in records])
    store.close()
    result = CliRunner().invoke(cli, ["--db", url, "show", "--trace", TRACE.upper()])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"trace {TRACE} · 2 entries · session conv-9")
    assert lines[1].startswith("└─ invoke_agent  planner  ok")
    chat = next(i for i, line in enumerate(lines) if "chat  gpt-test → gpt-test-1" in line)
    assert lines[chat].startswith("   └─ ")
    assert "tokens 3 in / 2 out" in lines[chat]
    assert "→ user: Hi there" in result.output
    assert "← assistant: Hello!" in result.output
    session = CliRunner().invoke(cli, ["--db", url, "show", "--session", "conv-9"])
    assert session.exit_code == 0, session.output
    assert session.output.startswith("session conv-9 · 1 trace(s) · 2 entries")
    store = SQLiteStore(url)
    access = store.query(Query(kind="access", limit=10)).entries
    store.close()
    assert len(access) == 2  # each read is on record


def test_show_needs_exactly_one_thing_to_show(tmp_path: Path) -> None:
    """`show` with nothing, or with an id and --trace, is one clear line; an unknown trace is not found."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    SQLiteStore(url).close()
    for args in (["show"], ["show", "x", "--trace", TRACE]):
        result = CliRunner().invoke(cli, ["--db", url, *args])
        assert result.exit_code == 1
        assert "one of" in result.output
    result = CliRunner().invoke(cli, ["--db", url, "show", "--trace", TRACE])
    assert result.exit_code == 1
    assert "no entries with trace id" in result.output


def test_http_returns_a_trace_and_a_session(server: Server) -> None:
    """After an OTLP post, GET /v1/traces/{id} gives the entries and tree, /v1/sessions/{id} the session; readers only."""
    spans = chat_spans()
    posted = server.client.post(
        "/v1/traces", content=protobuf_body(spans),
        headers={"Content-Type": "application/x-protobuf", **server.as_("ingest_all")},
    )  # fmt: skip
    assert posted.status_code == 200
    trace_id = f"{spans[0].context.trace_id:032x}"
    got = server.client.get(
        f"/v1/traces/{trace_id}", params={"purpose": "audit"}, headers=server.as_("auditor")
    )
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["trace_id"] == trace_id
    assert len(body["entries"]) == 2
    (root,) = body["tree"]
    by_id = {e["id"]: e for e in body["entries"]}
    assert by_id[root["id"]]["attributes"]["operation"] == "invoke_agent"
    (child,) = root["children"]
    assert by_id[child["id"]]["attributes"]["operation"] == "chat"
    session = server.client.get(
        "/v1/sessions/conv-1", params={"purpose": "audit"}, headers=server.as_("auditor")
    )
    assert session.status_code == 200
    assert [t["trace_id"] for t in session.json()["traces"]] == [trace_id]
    # A reader of another system sees nothing of it: the same 404 as for an unknown trace.
    hidden = server.client.get(
        f"/v1/traces/{trace_id}", params={"purpose": "x"}, headers=server.as_("reader_fraud")
    )
    assert hidden.status_code == 404
    assert (
        server.client.get(
            f"/v1/traces/{trace_id}", params={"purpose": "x"}, headers=server.as_("ingest")
        ).status_code
        == 403
    )
