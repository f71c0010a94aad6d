"""Real exporters against a running ``inferlog serve``: the Python SDK (protobuf), two OpenAI instrumentations, JavaScript (JSON)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from inferlog.record.model import InferenceRecord
from inferlog.store.base import Query
from inferlog.store.sqlite import SQLiteStore
from tests.fix_server import ServerProcess, run_cli
from tests.otlp.expect import check_openai_records, strings
from tests.otlp.instrument import INSTRUMENTATIONS, call_openai, instrumented
from tests.otlp.spans import CHAT_ATTRIBUTES

JS_CLIENT = Path(__file__).parent / "js"


@dataclass
class Served:
    server: ServerProcess
    key: str

    @property
    def traces_url(self) -> str:
        return f"{self.server.url}/v1/traces"

    def records(self) -> list[InferenceRecord]:
        store = SQLiteStore(self.server.db)
        try:
            page = store.query(Query(kind="inference", limit=1000))
        finally:
            store.close()
        return [s.entry for s in page.entries if isinstance(s.entry, InferenceRecord)]


@pytest.fixture
def served(server_process: ServerProcess) -> Served:
    """A running `inferlog serve` and an ingest key for every system."""
    key = run_cli(
        "--db", server_process.db, "keys", "create", "--role", "ingest", "--system", "*", "--name", "otel"
    ).strip()
    return Served(server_process, key)


def _exporting_provider(
    served: Served, monkeypatch: pytest.MonkeyPatch, service: str
) -> tuple[TracerProvider, OTLPSpanExporter]:
    """The stock OTLP/HTTP protobuf exporter, configured only by the standard environment variables."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", served.traces_url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization=Bearer%20{served.key}")
    exporter = OTLPSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider, exporter


def test_python_sdk_otlp_protobuf_exporter(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """The OTel Python SDK's OTLP/HTTP protobuf exporter, set up by env vars alone, lands its AI spans as records."""
    provider, _ = _exporting_provider(served, monkeypatch, "py-chatbot")
    tracer = provider.get_tracer("app")
    with (
        tracer.start_as_current_span("GET /ask"),
        tracer.start_as_current_span("chat", attributes=CHAT_ATTRIBUTES),
    ):
        pass
    provider.shutdown()
    (record,) = served.records()
    assert record.system == "py-chatbot"
    assert record.model.name == "gpt-4o-mini"
    assert "Capital of France?" in list(strings(record.input))
    assert record.attributes["usage"]["input_tokens"] == 12
    assert record.parent_id is not None


@pytest.mark.parametrize("instrumentation", sorted(INSTRUMENTATIONS))
def test_instrumented_openai_through_the_server(
    instrumentation: str, served: Served, fake_openai: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """openai traced by each instrumentation, exported over OTLP/HTTP: every call is a complete record, tree whole."""
    provider, _ = _exporting_provider(served, monkeypatch, "assistant")
    tracer = provider.get_tracer("app")
    with instrumented(instrumentation, provider, monkeypatch):
        attributes = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "assistant"}
        with tracer.start_as_current_span("invoke_agent assistant", attributes=attributes) as agent:
            call_openai(fake_openai)
    provider.shutdown()
    check_openai_records(served.records(), f"{agent.get_span_context().span_id:016x}")


@pytest.fixture
def js_client() -> Path:
    """tests/otlp/js with its locked npm packages installed (`npm ci` on a fresh clone)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node is not None, "the JavaScript client test needs Node.js (node, npm) on PATH"
    assert npm is not None, "the JavaScript client test needs npm on PATH"
    if not (JS_CLIENT / "node_modules" / "@opentelemetry" / "exporter-trace-otlp-http").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS_CLIENT, check=True, capture_output=True)
    return JS_CLIENT


def test_javascript_json_exporter(served: Served, js_client: Path) -> None:
    """@opentelemetry/exporter-trace-otlp-http (JSON) run by Node.js: its agent and chat spans land as records."""
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, str(js_client / "send.mjs"), served.traces_url, served.key],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    trace_id = done.stdout.strip().splitlines()[-1]
    records = {r.attributes["operation"]: r for r in served.records()}
    assert set(records) == {"invoke_agent", "chat"}
    chat, agent = records["chat"], records["invoke_agent"]
    assert chat.trace_id == agent.trace_id == trace_id
    assert chat.parent_id == agent.span_id
    assert chat.system == "js-chatbot"
    assert (chat.model.name, chat.model.version) == ("gpt-js", "gpt-js-2026-02-02")
    assert chat.parameters == {"temperature": 0.5}
    assert chat.attributes["usage"] == {"input_tokens": 9, "output_tokens": 4, "total_tokens": 13}
    assert chat.session_id == "js-conversation"
    assert "Hello from Node" in list(strings(chat.input))
    assert "Hello, Node." in list(strings(chat.output))
