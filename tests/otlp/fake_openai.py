"""A small OpenAI-compatible server on loopback, for tests that drive the real ``openai`` client.

It answers ``POST /v1/chat/completions`` (plain, streamed with ``stream: true``, and with a tool call
when the request offers tools and the last message is not a tool result) and ``POST /v1/embeddings``.
A request for the model ``broken`` gets a 400 error, as the API sends for a bad request. The answers
are fixed, so tests can assert on the exact model, text and token counts a trace carries.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

ANSWERED_BY = "gpt-test-2026-01-01"  # the "snapshot" the server says answered (the response model)
REPLY = "Paris is the capital of France."
PROMPT_TOKENS = 21
COMPLETION_TOKENS = 7
TOOL_NAME = "get_weather"
TOOL_ARGUMENTS = '{"city": "Paris"}'


def _completion(request: dict[str, Any]) -> dict[str, Any]:
    wants_tool = bool(request.get("tools")) and request["messages"][-1].get("role") != "tool"
    message: dict[str, Any] = {"role": "assistant", "content": None if wants_tool else REPLY}
    if wants_tool:
        message["tool_calls"] = [
            {"id": "call_1", "type": "function", "function": {"name": TOOL_NAME, "arguments": TOOL_ARGUMENTS}}
        ]
    return {
        "id": "chatcmpl-fake-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": ANSWERED_BY,
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if wants_tool else "stop"}
        ],
        "usage": {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        },
    }


def _chunks() -> Iterator[dict[str, Any]]:
    base = {
        "id": "chatcmpl-fake-2",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": ANSWERED_BY,
    }
    yield {
        **base,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
    }
    for word in REPLY.split(" "):
        piece = word if word == REPLY.split(" ")[0] else " " + word
        yield {**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
    yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    yield {
        **base,
        "choices": [],
        "usage": {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        },
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        request = json.loads(self.rfile.read(length) or b"{}")
        if request.get("model") == "broken":
            self._json(400, {"error": {"message": "The model `broken` does not exist", "type": "invalid_request_error",
                                       "param": "model", "code": "model_not_found"}})  # fmt: skip
            return
        if self.path.endswith("/embeddings"):
            inputs = request["input"] if isinstance(request["input"], list) else [request["input"]]
            self._json(200, {
                "object": "list", "model": ANSWERED_BY,
                "data": [{"object": "embedding", "index": i, "embedding": [0.25, -0.5, 0.125]} for i in range(len(inputs))],
                "usage": {"prompt_tokens": 5, "total_tokens": 5},
            })  # fmt: skip
            return
        if not request.get("stream"):
            self._json(200, _completion(request))
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for chunk in _chunks():
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def fake_openai() -> Iterator[str]:
    """The base URL (``http://127.0.0.1:<port>/v1``) of a fake OpenAI API running in a thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, name="fake-openai", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()
    thread.join()
