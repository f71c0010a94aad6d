"""The privacy policy on LLM traces: personal data in a prompt is redacted, the messages sealed, the user pseudonymized."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider

import inferlog
from inferlog.apikeys import create_key
from inferlog.keystore.protection import load_protection
from inferlog.record.model import InferenceRecord
from inferlog.sdk.integrations.otel import InferlogSpanProcessor
from inferlog.server import create_app
from inferlog.store.base import Query
from inferlog.store.sqlite import SQLiteStore
from tests.otlp.expect import strings
from tests.otlp.spans import CHAT_ATTRIBUTES, chat_spans, protobuf_body

POLICY = """
[keystore]
path = "keys.db"

[defaults]
encrypt = ["input", "output"]
pseudonymize = ["subject"]

[[defaults.redact]]
detectors = ["email", "phone"]
"""
EMAIL = "jane.doe@example.com"
PHONE = "+49 30 1234567"
USER = "jane-42"
PROMPT = f"I am Jane, write to {EMAIL} or call {PHONE} about my loan."
PERSONAL = {
    **CHAT_ATTRIBUTES,
    "user.id": USER,
    "gen_ai.input.messages": f'[{{"role":"user","parts":[{{"type":"text","content":"{PROMPT}"}}]}}]',
    "gen_ai.output.messages": f'[{{"role":"assistant","parts":[{{"type":"text","content":"Noted, {EMAIL}."}}]}}]',
}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "inferlog.toml"
    path.write_text(POLICY)
    return path


def _check_stored(store: SQLiteStore) -> InferenceRecord:
    """Nothing personal in the stored bytes; the messages sealed; the user a pseudonym. Returns the chat record."""
    page = store.query(Query(kind="inference", limit=10))
    chats = [
        s
        for s in page.entries
        if isinstance(s.entry, InferenceRecord) and s.entry.attributes["operation"] == "chat"
    ]
    assert len(chats) == 1
    stored = chats[0]
    assert stored.body is not None
    for secret in (EMAIL, PHONE, USER, "write to", "loan"):
        assert secret.encode() not in stored.body, secret
    entry = stored.entry
    assert isinstance(entry, InferenceRecord)
    assert entry.sealed is not None
    assert set(entry.sealed.fields) == {"input", "output"}
    assert entry.subject is not None
    assert entry.subject.startswith("pse_")
    return entry


def test_server_redacts_seals_and_pseudonymizes_otlp_prompts(tmp_path: Path, config: Path) -> None:
    """POST /v1/traces under a policy: the stored chat record holds no e-mail, phone or user id; a reader sees masks."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 'server.db'}")
    ingest = create_key(store, "ingest", ["*"], "otel")[0]
    reader = create_key(store, "reader", ["*"], "analyst")[0]
    body = protobuf_body(chat_spans(**PERSONAL))
    with TestClient(create_app(store, protection=load_protection(config))) as client:
        response = client.post(
            "/v1/traces",
            content=body,
            headers={"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {ingest}"},
        )
        assert response.status_code == 200, response.text
        entry = _check_stored(store)
        got = client.get(
            f"/v1/records/{entry.id}",
            params={"purpose": "review"},
            headers={"Authorization": f"Bearer {reader}"},
        ).json()
    store.close()
    text = " ".join(strings(got["input"]))
    assert "[REDACTED:email]" in text
    assert "[REDACTED:phone]" in text
    assert "write to" in text  # the rest of the prompt is kept, for the reader who may see it


def test_processor_applies_the_policy_before_the_spool(tmp_path: Path, config: Path, sqlite_url: str) -> None:
    """The in-process processor under the same policy: redacted before the spool, sealed and pseudonymized in the store."""
    with inferlog.open(sqlite_url, system="chatbot", spool_dir=tmp_path / "spool", config=config) as log:
        provider = TracerProvider()
        provider.add_span_processor(InferlogSpanProcessor(log))
        provider.get_tracer("app").start_span("chat", attributes=PERSONAL).end()
        assert log.flush(timeout=30)
        for segment in (tmp_path / "spool").rglob("*"):
            if segment.is_file():
                assert EMAIL.encode() not in segment.read_bytes()
        store = SQLiteStore(sqlite_url)
        try:
            _check_stored(store)
        finally:
            store.close()
