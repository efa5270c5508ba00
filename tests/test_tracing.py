"""OpenTelemetry tracing: with an OTLP endpoint set, the server exports its spans over OTLP/HTTP.

An OTLP/HTTP receiver runs on loopback and decodes what the server's exporter posts; a streamed
response calls an MCP tool once, then answers, and the span tree is asserted whole.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from websockets.sync.client import connect

from tests.conftest import Server, server_env
from tests.mcp_servers import McpTestServer
from tests.search_api import Answer, FakeSearchAPI, fixture
from tests.upstream import Call, Error, ScriptedUpstream, Text, ToolCalls, Usage

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN_ID = "b7ad6b7169203331"


class Receiver:
    """An OTLP/HTTP trace receiver on loopback: the spans of every `POST /v1/traces`."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Span]] = []  # (service name, span)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.take(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}"

    def take(self, request: ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            service = _attributes(resource_spans.resource.attributes)["service.name"]
            with self.lock:
                for scope in resource_spans.scope_spans:
                    self.spans.extend((service, span) for span in scope.spans)

    def tree(self, response_id: str, timeout: float = 10.0) -> tuple[Span, Span, list[Span]]:
        """The request span, the turn span of `response_id` and the turn's children, once
        all have arrived (the request span ends last)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                spans = [span for _, span in self.spans]
            turns = [s for s in spans if _attributes(s.attributes).get(_ID) == response_id]
            requests = [s for s in spans if turns and s.span_id == turns[0].parent_span_id]
            if requests:
                children = [s for s in spans if s.parent_span_id == turns[0].span_id]
                return requests[0], turns[0], children
            time.sleep(0.05)
        raise AssertionError(f"no span tree of {response_id} in {[s.name for s in spans]}")

    def named(self, name: str, timeout: float = 10.0) -> tuple[Span, Span]:
        """The span named `name` and its parent, once both have arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                spans = [span for _, span in self.spans]
            found = [s for s in spans if s.name == name]
            parents = [s for s in spans if found and s.span_id == found[0].parent_span_id]
            if parents:
                return found[0], parents[0]
            time.sleep(0.05)
        raise AssertionError(f"no span {name} with its parent in {[s.name for s in spans]}")


_ID = "openresponses.response.id"


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind)


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.thread.start()
    yield found
    found.http.shutdown()


@pytest.fixture(scope="module")
def mcp_server() -> Iterator[McpTestServer]:
    server = McpTestServer().start()
    yield server
    server.stop()


def _traced(upstream: ScriptedUpstream, receiver: Receiver, data_dir: Path, **extra: str) -> Server:
    env = server_env(
        upstream,
        OPENRESPONSES_ALLOW_PRIVATE_NETWORKS="true",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_SERVICE_NAME="openresponses-test",
        OTEL_BSP_SCHEDULE_DELAY="50",
        **extra,
    )
    return Server(data_dir, env).start()


@pytest.fixture(scope="module")
def traced_server(
    upstream: ScriptedUpstream, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    srv = _traced(upstream, receiver, tmp_path_factory.mktemp("traced"))
    yield srv
    srv.stop()


def _tool(server: McpTestServer) -> dict[str, Any]:
    return {
        "type": "mcp",
        "server_label": "tools",
        "server_url": server.url,
        "require_approval": "never",
    }


def _hex(raw: bytes) -> str:
    return raw.hex()


def _tree(
    receiver: Receiver, response_id: str
) -> tuple[Span, Span, list[Span], list[Span], list[Span]]:
    """The request span, the turn span, and the turn's model-call and tool spans."""
    request, turn, children = receiver.tree(response_id)
    chats = [s for s in children if s.name.startswith("chat ")]
    chats.sort(key=lambda s: s.start_time_unix_nano)
    tools = [s for s in children if s.name.startswith("execute_tool ")]
    return request, turn, chats, tools, children


def test_a_streamed_mcp_turn_exports_its_span_tree_with_genai_attributes(
    traced_server: Server,
    receiver: Receiver,
    upstream: ScriptedUpstream,
    mcp_server: McpTestServer,
) -> None:
    model = upstream.script(
        ToolCalls([Call("tools__add", '{"a": 2, "b": 3}', id="call_add")], usage=Usage(12, 4)),
        Text("The sum is 5.", usage=Usage(20, 6)),
    )
    client = traced_server.client()
    traceparent = f"00-{TRACE_ID}-{CLIENT_SPAN_ID}-01"

    with client.responses.create(
        model=model,
        input="What is 2 + 3?",
        tools=[_tool(mcp_server)],
        stream=True,
        extra_headers={"traceparent": traceparent},
    ) as stream:
        events = list(stream)
    response = events[-1].response

    request, turn, chats, tools, children = _tree(receiver, response.id)
    assert (_hex(request.trace_id), _hex(request.parent_span_id)) == (TRACE_ID, CLIENT_SPAN_ID)
    assert request.kind == Span.SPAN_KIND_SERVER
    assert _attributes(request.attributes) == {
        "http.request.method": "POST",
        "url.path": "/v1/responses",
        "url.scheme": "http",
        "http.response.status_code": 200,
    }
    assert {_hex(s.trace_id) for s in [turn, *children]} == {TRACE_ID}
    assert turn.name == f"response {model}"
    assert _attributes(turn.attributes) == {
        "gen_ai.request.model": model,
        "openresponses.response.id": response.id,
        "openresponses.response.status": "completed",
    }
    assert len(children) == 3
    first, second = chats
    recorded = [_attributes(s.attributes) for s in chats]
    ttft = [attributes.pop("gen_ai.response.time_to_first_chunk") for attributes in recorded]
    assert all(0 < seconds < 10 for seconds in ttft)
    # The upstream's own ids of its two completions, one per call.
    ids = [attributes.pop("gen_ai.response.id") for attributes in recorded]
    assert all(re.fullmatch(r"chatcmpl-[A-Za-z0-9]{29}", i) for i in ids)
    assert ids[0] != ids[1]
    common = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
    }
    assert recorded == [
        {
            **common,
            "gen_ai.usage.input_tokens": 12,
            "gen_ai.usage.output_tokens": 4,
            "gen_ai.response.finish_reasons": ["tool_calls"],
        },
        {
            **common,
            "gen_ai.usage.input_tokens": 20,
            "gen_ai.usage.output_tokens": 6,
            "gen_ai.response.finish_reasons": ["stop"],
        },
    ]
    assert [s.name for s in chats] == [f"chat {model}"] * 2
    [tool] = tools
    assert tool.name == "execute_tool add"
    assert _attributes(tool.attributes) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "add",
        "gen_ai.tool.call.id": response.output[1].id,
        "openresponses.tool.type": "mcp_call",
        "openresponses.tool.status": "completed",
    }
    # The tool runs after the first model call has ended and before the second begins.
    assert first.end_time_unix_nano <= tool.start_time_unix_nano
    assert tool.end_time_unix_nano <= second.start_time_unix_nano
    assert all(s.status.code != s.status.STATUS_CODE_ERROR for s in [request, turn, *children])
    assert {service for service, _ in receiver.spans} == {"openresponses-test"}


def test_a_failed_tool_call_is_an_error_span_and_the_turn_goes_on(
    traced_server: Server,
    receiver: Receiver,
    upstream: ScriptedUpstream,
    mcp_server: McpTestServer,
) -> None:
    model = upstream.script(ToolCalls([Call("tools__explode", "{}")]), Text("It broke."))

    response = traced_server.client().responses.create(
        model=model, input="Explode", tools=[_tool(mcp_server)]
    )

    _, turn, chats, [tool], _ = _tree(receiver, response.id)
    assert _attributes(tool.attributes) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "explode",
        "gen_ai.tool.call.id": response.output[1].id,
        "openresponses.tool.type": "mcp_call",
        "openresponses.tool.status": "failed",
        "error.type": "tool_error",
    }
    assert tool.status.code == tool.status.STATUS_CODE_ERROR
    assert len(chats) == 2
    assert turn.status.code == turn.status.STATUS_CODE_UNSET


def test_a_web_search_is_an_execute_tool_span_of_its_turn(
    upstream: ScriptedUpstream, receiver: Receiver, tmp_path: Path
) -> None:
    search_api = FakeSearchAPI()
    search_api.start()
    search_api.script(Answer(body=fixture("searxng_search.json")))
    model = upstream.script(
        ToolCalls([Call("web_search", '{"query": "asyncio timeout"}')]), Text("Found.")
    )
    server = _traced(
        upstream, receiver, tmp_path, OPENRESPONSES_WEB_SEARCH="searxng", SEARXNG_URL=search_api.url
    )
    try:
        response = server.client().responses.create(
            model=model, input="Timeouts?", tools=[{"type": "web_search"}]
        )
    finally:
        server.stop()
        search_api.stop()

    _, _, chats, [tool], _ = _tree(receiver, response.id)
    assert _attributes(tool.attributes) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "web_search",
        "gen_ai.tool.call.id": response.output[0].id,
        "openresponses.tool.type": "web_search_call",
        "openresponses.tool.status": "completed",
    }
    assert len(chats) == 2


def test_without_a_traceparent_the_request_span_starts_a_trace(
    traced_server: Server, receiver: Receiver, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Hi."))

    response = traced_server.client().responses.create(model=model, input="Hello")

    request, _, chats, tools, _ = _tree(receiver, response.id)
    assert request.parent_span_id == b""
    assert _hex(request.trace_id) != TRACE_ID
    assert [len(chats), len(tools)] == [1, 0]


def test_an_upstream_refusal_ends_the_model_call_and_turn_spans_as_errors(
    traced_server: Server, receiver: Receiver, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Error(400, "Bad prompt", type="invalid_request_error"))

    with pytest.raises(openai.BadRequestError):
        traced_server.client().responses.create(model=model, input="Hi", stream=True)

    chat, turn = receiver.named(f"chat {model}")
    _, request = receiver.named(f"response {model}")
    assert request.parent_span_id == b""
    assert _attributes(request.attributes)["http.response.status_code"] == 400
    assert [_attributes(s.attributes)["error.type"] for s in (chat, turn)] == ["ProviderError"] * 2
    assert [s.status.code for s in (chat, turn)] == [chat.status.STATUS_CODE_ERROR] * 2
    assert turn.span_id == chat.parent_span_id


def test_a_compaction_model_call_is_a_chat_span_under_its_request(
    traced_server: Server, receiver: Receiver, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("They said hello.", usage=Usage(7, 3)))

    traced_server.client().responses.compact(model=model, input="Hello")

    chat, request = receiver.named(f"chat {model}")
    assert request.name == "POST /v1/responses/compact"
    attributes = _attributes(chat.attributes)
    assert attributes.pop("gen_ai.response.id").startswith("chatcmpl-")
    assert attributes.pop("gen_ai.response.time_to_first_chunk") > 0
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        "gen_ai.usage.input_tokens": 7,
        "gen_ai.usage.output_tokens": 3,
        "gen_ai.response.finish_reasons": ["stop"],
    }


def test_message_content_is_not_recorded_by_default(
    traced_server: Server, receiver: Receiver, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("A secret answer."))

    response = traced_server.client().responses.create(model=model, input="A secret question")

    _, turn, chats, _, _ = _tree(receiver, response.id)
    recorded = str([_attributes(s.attributes) for s in [turn, *chats]])
    assert "secret" not in recorded
    assert not any(s.events for s in [turn, *chats])


def test_each_websocket_turn_is_a_server_span_under_the_handshake_traceparent(
    traced_server: Server, receiver: Receiver, upstream: ScriptedUpstream
) -> None:
    url = traced_server.base_url.replace("http://", "ws://") + "/responses"
    traceparent = {"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN_ID}-01"}
    ids = []
    with connect(url, additional_headers=traceparent, open_timeout=10) as ws:
        for text in ("One.", "Two."):
            ws.send(json.dumps({"type": "response.create", "model": upstream.script(Text(text))}))
            while (message := json.loads(ws.recv(timeout=10)))["type"] != "response.completed":
                pass
            ids.append(message["response"]["id"])

    requests = [receiver.tree(response_id)[0] for response_id in ids]
    assert [s.name for s in requests] == ["WS /v1/responses"] * 2
    assert [_hex(s.parent_span_id) for s in requests] == [CLIENT_SPAN_ID] * 2
    assert [_attributes(s.attributes) for s in requests] == [{"url.path": "/v1/responses"}] * 2
    assert requests[0].span_id != requests[1].span_id


def test_with_content_capture_on_the_messages_are_recorded_in_the_conventions_shape(
    upstream: ScriptedUpstream, receiver: Receiver, tmp_path: Path
) -> None:
    model = upstream.script(
        ToolCalls([Call("lookup", '{"q": "x"}', id="call_1")]),
        Text("Found it."),
    )
    server = _traced(
        upstream, receiver, tmp_path, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true"
    )
    try:
        client = server.client()
        tool = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}
        first = client.responses.create(
            model=model,
            input="Look x up",
            instructions="Be brief.",
            tools=[tool],
        )
        answer = {"type": "function_call_output", "call_id": "call_1", "output": "x is 1"}
        second = client.responses.create(
            model=model,
            input=[answer],
            previous_response_id=first.id,
        )
    finally:
        server.stop()

    [called] = receiver.tree(first.id)[2]
    [answered] = receiver.tree(second.id)[2]
    asked = {"role": "user", "parts": [{"type": "text", "content": "Look x up"}]}
    call = {"type": "tool_call", "id": "call_1", "name": "lookup", "arguments": '{"q": "x"}'}
    assert _content(called) == {
        "gen_ai.system_instructions": [{"type": "text", "content": "Be brief."}],
        "gen_ai.input.messages": [asked],
        "gen_ai.output.messages": [
            {"role": "assistant", "parts": [call], "finish_reason": "tool_calls"}
        ],
    }
    response = {"type": "tool_call_response", "id": "call_1", "response": "x is 1"}
    assert _content(answered) == {
        "gen_ai.input.messages": [
            asked,
            {"role": "assistant", "parts": [call]},
            {"role": "tool", "parts": [response]},
        ],
        "gen_ai.output.messages": [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": "Found it."}],
                "finish_reason": "stop",
            }
        ],
    }


def _content(span: Span) -> dict[str, Any]:
    """The span's message-content attributes, decoded from JSON."""
    attributes = _attributes(span.attributes)
    names = ("gen_ai.system_instructions", "gen_ai.input.messages", "gen_ai.output.messages")
    return {name: json.loads(attributes[name]) for name in names if name in attributes}


def test_without_an_endpoint_no_tracer_is_set_up_and_requests_are_not_wrapped() -> None:
    """No endpoint: the app is not wrapped in the tracing middleware and OpenTelemetry keeps
    its proxy tracer provider (nothing installed, so no span is ever made)."""
    code = (
        "from opentelemetry import trace\n"
        "from openresponses.app import create_app\n"
        "from openresponses.config import load_settings\n"
        "app = create_app(load_settings(env={}))\n"
        "inner = type(app.app).__name__  # under RequestIds, which every answer passes\n"
        "print(inner, type(trace.get_tracer_provider()).__name__)\n"
    )
    env = {"PATH": os.environ["PATH"]}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True)
    assert out.stdout.decode().split() == ["_BesideConnexion", "ProxyTracerProvider"]
