"""One span of an AI operation -> one inference record (pure; every rule: docs/llm-traces.md).

A span is an AI operation when it says so: ``gen_ai.operation.name`` (OpenTelemetry GenAI
conventions), ``openinference.span.kind`` (OpenInference), or any ``gen_ai.*`` / ``llm.*`` attribute
(older instrumentations). Other spans (HTTP, database, framework spans) are not inferences and are
left out; the records keep their real ``parent_id``, so a reader sees where the tree leaves the log.

Each attribute the mapping reads is *consumed*: it becomes a field of the record and is not copied
again. What no rule reads is kept verbatim under ``attributes.otel``, so nothing a span said is lost,
and message text appears once only (in ``input``/``output``, where the privacy policy's encryption of
those fields covers it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from typing import Any, cast

import msgspec

from inferlog.errors import RecordInvalid
from inferlog.ingest.otlp import Event, Span
from inferlog.record.model import REF_MAX_LENGTH, ErrorInfo, InferenceRecord, Model
from inferlog.record.validate import checked

OPENINFERENCE_KINDS = {
    "LLM": "chat",
    "EMBEDDING": "embeddings",
    "CHAIN": "chain",
    "RETRIEVER": "retrieval",
    "RERANKER": "rerank",
    "TOOL": "execute_tool",
    "AGENT": "invoke_agent",
    "GUARDRAIL": "guardrail",
    "EVALUATOR": "evaluate",
    "PROMPT": "prompt",
}
# Pre-1.37 GenAI per-message events (when recorded as span events): their attributes carry the message.
_MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
_INDEX = re.compile(r"[0-9]{1,9}")  # a list index in a flattened name; longer digit runs stay names
_FLAT_DEPTH = 32  # levels a flattened name is rebuilt into; deeper dots stay in the last level's name
_json_decode = msgspec.json.Decoder().decode
_NAME_MAX = 256


def is_ai(span: Span) -> bool:
    """Whether a span is an AI operation (and so becomes an inference record)."""
    attributes = span.attributes
    if "gen_ai.operation.name" in attributes or "openinference.span.kind" in attributes:
        return True
    return any(key.startswith(("gen_ai.", "llm.")) for key in attributes)


def record_id(trace_id: str, span_id: str) -> str:
    """A deterministic UUIDv8 (sha256 of trace and span id): an exporter's retry is a duplicate, not a second record."""
    digest = bytearray(hashlib.sha256(f"otlp\x00{trace_id}\x00{span_id}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x80
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def to_record(span: Span, *, system: str) -> InferenceRecord:
    """The inference record of an AI span; RecordInvalid (naming the field) if the span cannot be one."""
    a = _Attributes(span.attributes)
    operation = _operation(a, span)
    provider = a.text("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
    parameters = _json_object(a.take("llm.invocation_parameters", "embedding.invocation_parameters"))
    model = _model(a, span, operation, provider, parameters)
    parameters.update(a.prefixed("gen_ai.request."))
    tools = _tools(a)
    if tools is not None:
        parameters["tools"] = tools
    error_type = a.text("error.type")
    exception, events = _exception(span.events)
    input_, output, events = _payload(a, events)
    request_id = _ref(a.text("gen_ai.response.id", "llm.response.id"), "request_id")
    session_id = _ref(a.text("gen_ai.conversation.id", "session.id"), "session_id")
    subject = _ref(a.text("user.id", "enduser.id"), "subject")
    attributes = _context(a, span, operation, events, exception)
    if input_ is None and output is None and operation in ("chat", "text_completion", "generate_content"):
        attributes["content_captured"] = False  # the instrumentation was set not to record messages
    failed = span.status == "error" or error_type is not None
    if span.end_ns and span.end_ns < span.start_ns:
        raise RecordInvalid("ends before it starts", field="endTimeUnixNano")
    record = InferenceRecord(
        id=record_id(span.trace_id, span.span_id),
        system=system,
        ts=_timestamp(span.start_ns),
        model=model,
        input=input_,
        output=output,
        latency_ms=(span.end_ns - span.start_ns) / 1e6 if span.end_ns else None,
        parameters=parameters,
        status="error" if failed else "ok",
        error=_error(span, error_type, exception) if failed else None,
        request_id=request_id,
        trace_id=span.trace_id,
        span_id=span.span_id,
        parent_id=span.parent_id,
        session_id=session_id,
        subject=subject,
        actor=_text(span.resource.get("service.name")),
        attributes=attributes,
        source="otlp",
    )
    # Structs are not validated when built: a system of 10,000 characters would be stored and then fail
    # every read of it. Checked here as a read will decode it, so the span is refused instead.
    return cast(InferenceRecord, checked(record))


# -- reading attributes -------------------------------------------------------------------------


class _Attributes:
    """A span's attributes, each taken at most once; what is never taken is kept as ``otel``."""

    def __init__(self, attributes: dict[str, Any]) -> None:
        self.left = dict(attributes)
        # Names by their one- and two-part prefixes ("a.", "a.b." for "a.b.c"), the only depths the
        # rules ask about: a prefix lookup then touches only the names under it.
        self.under: dict[str, list[str]] = {}
        for key in attributes:
            first = key.find(".")
            if first > 0:
                self.under.setdefault(key[: first + 1], []).append(key)
                second = key.find(".", first + 1)
                if second > 0:
                    self.under.setdefault(key[: second + 1], []).append(key)

    def take(self, *names: str) -> Any:
        """The first of ``names`` present (all of them consumed)."""
        found = None
        for name in names:
            value = self.left.pop(name, None)
            if found is None and value is not None:
                found = value
        return found

    def text(self, *names: str) -> str | None:
        value = self.take(*names)
        return None if value is None else str(value) if not isinstance(value, str) else value or None

    def prefixed(self, prefix: str) -> dict[str, Any]:
        """Every attribute under ``prefix`` (consumed), keyed by the rest of its name."""
        keys = self.under.get(prefix)
        if keys is None:  # a deeper prefix than indexed (none of the rules' is): scan
            keys = [key for key in self.left if key.startswith(prefix)] if prefix.count(".") > 2 else []
        left = self.left
        return {key[len(prefix) :]: left.pop(key) for key in keys if key in left}

    def tree(self, prefix: str) -> Any:
        """Flattened attributes under ``prefix`` (``a.0.b``) rebuilt as nested lists and objects."""
        flat = self.prefixed(prefix)
        return _unflatten(flat) if flat else None


def _unflatten(flat: dict[str, Any]) -> Any:
    root: dict[str, Any] = {}
    for key in sorted(flat, key=_natural):
        node = root
        parts = key.split(".", _FLAT_DEPTH)
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = flat[key]
    return _lists(root)


def _natural(key: str) -> list[Any]:
    return [(0, int(p), "") if _INDEX.fullmatch(p) else (1, 0, p) for p in key.split(".", _FLAT_DEPTH)]


def _lists(node: Any) -> Any:
    """Objects whose keys are all indices become lists, in index order."""
    if not isinstance(node, dict):
        return node
    items = {key: _lists(value) for key, value in node.items()}
    if items and all(_INDEX.fullmatch(key) for key in items):
        return [items[key] for key in sorted(items, key=int)]
    return items


def _dict(value: Any) -> dict[str, Any]:
    """``value`` when it is an object, else an empty one: flattened attributes may put a string where a rule expects more."""
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _ref(value: str | None, field: str) -> str | None:
    """An identifier the log indexes, refused (not cut) when longer than it holds: a cut id would link wrongly."""
    if value is not None and len(value) > REF_MAX_LENGTH:
        raise RecordInvalid(f"must be at most {REF_MAX_LENGTH} characters, got {len(value)}", field=field)
    return value


def _parsed(value: Any) -> Any:
    """A JSON string's value (instrumentations put lists and objects in string attributes); else as is."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return _json_decode(value)
        except (msgspec.DecodeError, RecursionError):
            return value
    return value


def _json_object(value: Any) -> dict[str, Any]:
    parsed = _parsed(value)
    if parsed is None:
        return {}
    return dict(parsed) if isinstance(parsed, dict) else {"invocation_parameters": parsed}


def _timestamp(ns: int) -> dt.datetime:
    if ns <= 0:
        raise RecordInvalid("the span has no start time", field="startTimeUnixNano")
    try:
        return dt.datetime.fromtimestamp(ns // 1000 / 1e6, dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise RecordInvalid(f"{ns} is not a time this log can hold", field="startTimeUnixNano") from None


# -- model and operation ------------------------------------------------------------------------


def _operation(a: _Attributes, span: Span) -> str:
    name = a.text("gen_ai.operation.name")
    kind = a.text("openinference.span.kind")
    if name:
        return name
    if kind:
        return OPENINFERENCE_KINDS.get(kind.upper(), kind.lower())
    return "llm"


def _model(
    a: _Attributes, span: Span, operation: str, provider: str | None, parameters: dict[str, Any]
) -> Model:
    """``name`` = the model asked for, ``version`` = the model that answered (empty when unknown)."""
    asked = a.text("gen_ai.request.model", "llm.request.model_name")
    answered = a.text("gen_ai.response.model", "llm.response.model_name")
    # OpenInference: the answering model when known, else the asked one (which invocation parameters name)
    oi_model = a.text("llm.model_name", "embedding.model_name", "reranker.model_name")
    requested = _text(parameters.get("model"))
    name = asked or requested or oi_model or answered or _subject(a, span, operation)
    version = answered or oi_model or ""
    return Model(name=name[:_NAME_MAX], version=version[:_NAME_MAX], provider=provider)


def _subject(a: _Attributes, span: Span, operation: str) -> str:
    """What a span without a model acts on: the tool, agent, workflow or data source; else its name."""
    keys = {
        "execute_tool": ("gen_ai.tool.name", "tool.name"),
        "invoke_agent": ("gen_ai.agent.name", "agent.name"),
        "create_agent": ("gen_ai.agent.name", "agent.name"),
        "invoke_workflow": ("gen_ai.workflow.name",),
        "retrieval": ("gen_ai.data_source.id",),
    }.get(operation, ())
    for key in keys:
        value = _text(a.left.get(key))
        if value:
            return value
    return span.name or operation


def _tools(a: _Attributes) -> Any:
    definitions = _parsed(a.take("gen_ai.tool.definitions"))
    oi_tools = a.tree("llm.tools.")
    if oi_tools is not None:
        listed = [_oi_tool(item) for item in _as_list(oi_tools)]
        return listed if definitions is None else [definitions, *listed]
    return definitions


def _oi_tool(item: Any) -> Any:
    """``llm.tools.N.tool.json_schema`` parsed; any other shape as it came."""
    tool = item.get("tool") if isinstance(item, dict) else None
    return _parsed(tool["json_schema"]) if isinstance(tool, dict) and "json_schema" in tool else item


# -- messages -----------------------------------------------------------------------------------


def _payload(a: _Attributes, events: list[Event]) -> tuple[Any, Any, list[Event]]:
    """``input`` and ``output`` from every convention that carries content; events not used are returned."""
    inputs: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    messages = _messages(a, "input")
    event_in, event_out, events = _event_messages(events)
    messages = messages or event_in
    if messages:
        inputs["messages"] = messages
    system = _parsed(a.take("gen_ai.system_instructions"))
    if system is not None:
        inputs["system_instructions"] = system
    out_messages = _messages(a, "output") or event_out
    if out_messages:
        outputs["messages"] = out_messages
    prompts = a.take("llm.prompts") or _values(a.tree("llm.prompts."), "prompt", "text")
    if prompts:
        inputs["prompts"] = prompts
    choices = _values(a.tree("llm.choices."), "choice", "text")
    if choices:
        outputs["choices"] = choices
    tool_arguments = a.take("gen_ai.tool.call.arguments")
    if tool_arguments is not None:
        inputs["arguments"] = _parsed(tool_arguments)
    tool_result = a.take("gen_ai.tool.call.result")
    if tool_result is not None:
        outputs["result"] = _parsed(tool_result)
    embeddings = a.tree("embedding.embeddings.")
    texts = _values(embeddings, "embedding", "text")
    vectors = _values(embeddings, "embedding", "vector")
    if texts:
        inputs["texts"] = texts
    if vectors:
        outputs["embeddings"] = vectors
    documents = a.tree("retrieval.documents.")
    if documents:
        outputs["documents"] = [_document(item) for item in _as_list(documents)]
    reranker = a.tree("reranker.")
    if reranker and not isinstance(reranker, dict):  # "reranker.0...": no rule reads it, so keep it whole
        inputs["reranker"] = reranker
    elif reranker:
        inputs.update(
            {f"reranker_{k}": _documents(v) for k, v in reranker.items() if k != "output_documents"}
        )
        if "output_documents" in reranker:
            outputs["documents"] = _documents(reranker["output_documents"])
    _generic(a, "input", inputs)
    _generic(a, "output", outputs)
    return inputs or None, outputs or None, events


def _generic(a: _Attributes, side: str, into: dict[str, Any]) -> None:
    """OpenInference ``input.value`` (JSON when ``input.mime_type`` says so), and its cousins' spellings."""
    mime = a.text(f"{side}.mime_type")
    value = a.take(f"{side}.value")
    if value is not None:
        into["value"] = _parsed(value) if mime == "application/json" else value
        if mime and mime not in ("text/plain", "application/json"):
            into["mime_type"] = mime
    legacy_prompt = a.take("gen_ai.prompt" if side == "input" else "gen_ai.completion")
    if legacy_prompt is not None:
        into["messages" if "messages" not in into else "legacy"] = _parsed(legacy_prompt)
    for key in (f"traceloop.entity.{side}", "mlflow.spanInputs" if side == "input" else "mlflow.spanOutputs"):
        found = a.take(key)
        if found is not None:
            into.setdefault("value", _parsed(found))


_LEGACY_MESSAGES = {"input": "gen_ai.prompt.", "output": "gen_ai.completion."}


def _messages(a: _Attributes, side: str) -> list[Any]:
    """The ``side`` ("input" or "output") messages: GenAI's current list, OpenInference's, or GenAI's older one."""
    current = _parsed(a.take(f"gen_ai.{side}.messages"))
    if isinstance(current, list) and current:
        return current
    flattened = a.tree(f"llm.{side}_messages.")
    if flattened:
        return [_oi_message(item) for item in _as_list(flattened)]
    legacy = a.tree(_LEGACY_MESSAGES[side])
    if legacy:
        return [_legacy_message(item) for item in _as_list(legacy)]
    return [current] if current else []


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [value[key] for key in value]
    return [value]


def _values(tree: Any, outer: str, inner: str) -> list[Any]:
    """``[x.outer.inner for x in tree]`` over a rebuilt flattened list (``llm.prompts.0.prompt.text``)."""
    out = []
    for item in _as_list(tree) if tree else []:
        value = item.get(outer) if isinstance(item, dict) else None
        if isinstance(value, dict):
            value = value.get(inner)
        if value is not None:
            out.append(value)
    return out


def _document(item: Any) -> Any:
    return item.get("document", item) if isinstance(item, dict) else item


def _documents(value: Any) -> Any:
    if isinstance(value, list):
        return [_document(item) for item in value]
    return value


def _oi_message(item: Any) -> dict[str, Any]:
    """An OpenInference message (``message.role``, ``.content``, ``.contents``, ``.tool_calls``) in the GenAI form."""
    message = item.get("message", item) if isinstance(item, dict) else item
    if not isinstance(message, dict):
        message = {"content": message}
    role = message.get("role") or "user"
    parts: list[dict[str, Any]] = []
    content = message.get("content")
    tool_call_id = message.get("tool_call_id")
    if content is not None:
        if role == "tool" or tool_call_id is not None:
            parts.append({"type": "tool_call_response", "id": tool_call_id, "response": _parsed(content)})
        else:
            parts.append({"type": "text", "content": content})
    for entry in _as_list(message.get("contents") or []):
        parts.append(_oi_content(entry.get("message_content", entry) if isinstance(entry, dict) else entry))
    for call in _as_list(message.get("tool_calls") or []):
        call = _dict(call.get("tool_call", call) if isinstance(call, dict) else None)
        function = _dict(call.get("function"))
        parts.append(
            _without_none(
                {"type": "tool_call", "id": call.get("id"), "name": function.get("name"),
                 "arguments": _parsed(function.get("arguments"))}
            )
        )  # fmt: skip
    if message.get("function_call_name") is not None:  # the deprecated single function call
        parts.append(
            {"type": "tool_call", "name": message["function_call_name"],
             "arguments": _parsed(message.get("function_call_arguments_json"))}
        )  # fmt: skip
    out: dict[str, Any] = {"role": role, "parts": parts}
    if message.get("name") is not None:
        out["name"] = message["name"]
    return out


def _oi_content(content: Any) -> dict[str, Any]:
    if not isinstance(content, dict):
        return {"type": "text", "content": content}
    kind = content.get("type", "text")
    if kind == "text":
        return {"type": "text", "content": content.get("text")}
    if kind == "image":
        image = content.get("image", {})
        url = _dict(_dict(image).get("image")).get("url")
        return {"type": "uri", "modality": "image", "uri": url}
    return {"type": kind, **{k: v for k, v in content.items() if k != "type"}}


def _legacy_message(item: Any) -> dict[str, Any]:
    """``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*`` (flattened, pre-1.37 instrumentations)."""
    if not isinstance(item, dict):
        return {"role": "user", "parts": [{"type": "text", "content": item}]}
    parts: list[dict[str, Any]] = []
    if item.get("content") is not None:
        if item.get("tool_call_id") is not None or item.get("role") == "tool":
            parts.append(
                {"type": "tool_call_response", "id": item.get("tool_call_id"), "response": item["content"]}
            )
        else:
            parts.append({"type": "text", "content": item["content"]})
    for call in _as_list(item.get("tool_calls") or []):
        if isinstance(call, dict):
            parts.append(
                _without_none(
                    {"type": "tool_call", "id": call.get("id"), "name": call.get("name"),
                     "arguments": _parsed(call.get("arguments"))}
                )
            )  # fmt: skip
    out: dict[str, Any] = {"role": item.get("role") or "user", "parts": parts}
    if item.get("finish_reason") is not None:
        out["finish_reason"] = item["finish_reason"]
    return out


def _without_none(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}


def _event_messages(events: list[Event]) -> tuple[list[Any], list[Any], list[Event]]:
    """Messages that older instrumentations put in span events; the other events are returned as they were."""
    inputs: list[Any] = []
    outputs: list[Any] = []
    rest: list[Event] = []
    for event in events:
        attrs = dict(event.attributes)
        role = _MESSAGE_EVENTS.get(event.name)
        if role is not None:
            message: dict[str, Any] = {"role": attrs.pop("role", None) or role, "parts": []}
            content = attrs.pop("content", None)
            if content is not None:
                if role == "tool":
                    message["parts"].append(
                        {"type": "tool_call_response", "id": attrs.pop("id", None), "response": content}
                    )
                else:
                    message["parts"].append({"type": "text", "content": content})
            for call in _as_list(_parsed(attrs.pop("tool_calls", None)) or []):
                if isinstance(call, dict):
                    function = call.get("function", {}) if isinstance(call.get("function"), dict) else {}
                    message["parts"].append(
                        _without_none({"type": "tool_call", "id": call.get("id"), "name": function.get("name"),
                                       "arguments": function.get("arguments")})
                    )  # fmt: skip
            inputs.append(message)
        elif event.name == "gen_ai.choice":
            choice = _parsed(attrs.pop("message", None))
            message = (
                _legacy_message(choice) if isinstance(choice, dict) else {"role": "assistant", "parts": []}
            )
            if "finish_reason" in attrs:
                message["finish_reason"] = attrs.pop("finish_reason")
            outputs.append(message)
        elif event.name == "gen_ai.content.prompt" and "gen_ai.prompt" in attrs:
            prompt = _parsed(attrs.pop("gen_ai.prompt"))
            inputs.extend(prompt if isinstance(prompt, list) else [prompt])
        elif event.name == "gen_ai.content.completion" and "gen_ai.completion" in attrs:
            completion = _parsed(attrs.pop("gen_ai.completion"))
            outputs.extend(completion if isinstance(completion, list) else [completion])
        elif event.name == "gen_ai.client.inference.operation.details":
            for key, target in (("gen_ai.input.messages", inputs), ("gen_ai.output.messages", outputs)):
                found = _parsed(attrs.pop(key, None))
                if isinstance(found, list):
                    target.extend(found)
            if attrs:
                rest.append(Event(event.name, event.time_ns, attrs))
        else:
            rest.append(event)
    return inputs, outputs, rest


# -- status, usage and the rest -----------------------------------------------------------------


def _exception(events: Iterable[Event]) -> tuple[dict[str, Any] | None, list[Event]]:
    """The first ``exception`` event's attributes (type, message, stacktrace); the other events."""
    found: dict[str, Any] | None = None
    rest = []
    for event in events:
        if event.name == "exception" and found is None:
            found = {k.removeprefix("exception."): v for k, v in event.attributes.items()}
        else:
            rest.append(event)
    return found, rest


def _error(span: Span, error_type: str | None, exception: dict[str, Any] | None) -> ErrorInfo:
    exception = exception or {}
    kind = error_type or _text(exception.get("type")) or "error"
    message = span.status_message or _text(exception.get("message")) or ""
    return ErrorInfo(type=kind[:_NAME_MAX], message=message)


def _usage(a: _Attributes) -> dict[str, Any]:
    usage: dict[str, Any] = {}
    named = {
        "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"),
        "output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion"),
        "total_tokens": ("gen_ai.usage.total_tokens", "llm.token_count.total"),
        "cache_read_input_tokens": ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
                                    "llm.token_count.prompt_details.cache_read"),
        "cache_creation_input_tokens": ("gen_ai.usage.cache_creation.input_tokens",
                                        "gen_ai.usage.cache_creation_input_tokens",
                                        "llm.token_count.prompt_details.cache_write"),
        "reasoning_tokens": ("gen_ai.usage.reasoning.output_tokens", "llm.token_count.completion_details.reasoning"),
    }  # fmt: skip
    for name, keys in named.items():
        value = a.take(*keys)
        if value is not None:
            usage[name] = value
    usage.update(a.prefixed("gen_ai.usage."))
    usage.update({f"llm_{k.replace('.', '_')}": v for k, v in a.prefixed("llm.token_count.").items()})
    if (
        "total_tokens" not in usage
        and isinstance(usage.get("input_tokens"), int)
        and isinstance(usage.get("output_tokens"), int)
    ):
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
    return usage


def _context(
    a: _Attributes, span: Span, operation: str, events: list[Event], exception: dict[str, Any] | None
) -> dict[str, Any]:
    """The record's ``attributes``: operation, span facts, usage, tool/agent, resource, the unread rest."""
    out: dict[str, Any] = {"operation": operation, "span_name": span.name, "span_kind": span.kind}
    usage = _usage(a)
    if usage:
        out["usage"] = usage
    cost = _unflatten(a.prefixed("llm.cost."))
    if cost:
        out["cost"] = cost
    finish = a.take("gen_ai.response.finish_reasons", "llm.finish_reason")
    if finish is not None:
        out["finish_reasons"] = finish if isinstance(finish, list) else [finish]
    for group, prefixes in (
        ("tool", ("gen_ai.tool.", "tool.")),
        ("agent", ("gen_ai.agent.", "agent.")),
        ("workflow", ("gen_ai.workflow.",)),
        ("data_source", ("gen_ai.data_source.",)),
    ):
        found: dict[str, Any] = {}
        for prefix in prefixes:
            for key, value in a.prefixed(prefix).items():
                found.setdefault(key, value)
        if found:
            out[group] = found
    if exception is not None and exception.get("stacktrace"):
        out["exception"] = exception
    if span.status_message:
        out["status_message"] = span.status_message
    if span.scope:
        out["scope"] = f"{span.scope} {span.scope_version}".strip()
    if span.resource:
        out["resource"] = span.resource
    if events:
        out["events"] = [
            {"name": e.name, "time_unix_nano": e.time_ns, "attributes": e.attributes} for e in events
        ]
    if a.left:
        out["otel"] = dict(a.left)
    return out
