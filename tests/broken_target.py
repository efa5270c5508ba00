"""A deliberately broken target: a proxy in front of our server that breaks one rule on cue.

The conformance harness is only worth something if each check fails when its rule is broken.
This proxy forwards every request to a real server and, when the request carries
`x-break: NAME`, applies the mutation NAME to the answer: a JSON body, an error, or the events
of a stream (re-framed after the mutation, so that only what the mutation breaks is broken),
or to the request (`accept_call_id`). WebSocket mode is proxied only for a handshake that
names a mutation, so that the plain proxy stays a target without WebSocket mode.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect

from tests.loopback import LoopbackServer

Events = list[dict[str, Any]]


def _first(events: Events, kind: str) -> dict[str, Any]:
    return next(event for event in events if event["type"] == kind)


def _spoil_delta(events: Events) -> None:
    _first(events, "response.output_text.delta")["delta"] += "!"


def _number_from_one(events: Events) -> None:
    for event in events:
        event["sequence_number"] = 1


def _restart_numbering(events: Events) -> None:
    """Numbers the second half of the stream from 0 again, as a server restarting a counter."""
    half = len(events) // 2
    for number, event in enumerate(events[half:]):
        event["sequence_number"] = number


def _renumber(events: Events) -> None:
    for number, event in enumerate(events):
        event["sequence_number"] = number


def _add_item_twice(events: Events) -> None:
    added = _first(events, "response.output_item.added")
    events.insert(events.index(added) + 1, dict(added))
    _renumber(events)


def _final_output_empty(events: Events) -> None:
    events[-1]["response"]["output"] = []


def _drop(kind: str) -> Callable[[Events], None]:
    def drop(events: Events) -> None:
        events[:] = [event for event in events if event["type"] != kind]

    return drop


def _message_event(events: Events, kind: str) -> dict[str, Any]:
    """The first `kind` event of the message item (a reasoning item may come before it)."""
    added = next(e for e in events if e["type"] == "response.output_item.added"
                 and e["item"]["type"] == "message")  # fmt: skip
    index = added["output_index"]
    return next(e for e in events if e["type"] == kind and e.get("output_index") == index)


def _text_outside_part(events: Events) -> None:
    """Moves the first text delta before the part it belongs to is added."""
    delta = _first(events, "response.output_text.delta")
    events.remove(delta)
    events.insert(events.index(_message_event(events, "response.content_part.added")), delta)
    _renumber(events)


def _close_item_before_part(events: Events) -> None:
    """Swaps the message's `output_item.done` with the `content_part.done` before it."""
    done = _message_event(events, "response.output_item.done")
    part_done = _message_event(events, "response.content_part.done")
    i, j = events.index(done), events.index(part_done)
    events[i], events[j] = part_done, done
    _renumber(events)


def _wrong_item_status(events: Events) -> None:
    _message_event(events, "response.output_item.done")["item"]["status"] = "finished"


def _drop_store(events: Events) -> None:
    for event in events:
        if "response" in event:
            event["response"].pop("store", None)


BODY_MUTATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "object": lambda body: body.update(object="resp"),
    "no_created_at": lambda body: body.pop("created_at", None),
    "status_type": lambda body: body.update(status=1),
    "no_output": lambda body: body.update(output=[]),
    "wrong_instructions": lambda body: body.update(instructions="something else"),
    "usage_total": lambda body: body["usage"].update(total_tokens=-1),
    "no_store": lambda body: body.pop("store", None),
}
STREAM_MUTATIONS: dict[str, Callable[[Events], None]] = {
    "spoil_delta": _spoil_delta,
    "sequence": _number_from_one,
    "sequence_reset": _restart_numbering,
    "no_part_added": _drop("response.content_part.added"),
    "item_done_early": _close_item_before_part,
    "item_twice": _add_item_twice,
    "final_output": _final_output_empty,
    "no_created": _drop("response.created"),
    "no_item_done": _drop("response.output_item.done"),
    "no_terminal": _drop("response.completed"),
    "text_outside_part": _text_outside_part,
    "item_status": _wrong_item_status,
    "terminal_status": lambda events: _first(events, "response.completed")["response"].update(
        status="in_progress"
    ),
    "no_store": _drop_store,
}
FRAME_MUTATIONS = {"event_name", "no_done", "two_data_lines", "id_lines"}
ERROR_MUTATIONS = {"problem_json", "error_type", "status_500", "no_param"}


def _without_tool_items(content: bytes) -> bytes:
    """A create body with its function calls and their outputs taken out: a server that drops
    the tool items it cannot match, and so answers 200 where the call_id rule says 400."""
    body = json.loads(content)
    if isinstance(body.get("input"), list):
        tool_items = ("function_call", "function_call_output")
        body["input"] = [i for i in body["input"] if i.get("type") not in tool_items]
    return json.dumps(body).encode()


REQUEST_MUTATIONS = {"accept_call_id": _without_tool_items}

REFUSE_STREAM = {
    "type": "error",
    "status": 400,
    "error": {
        "message": "'stream' must not be sent in WebSocket mode.",
        "type": "invalid_request",
        "param": "stream",
        "code": "unsupported_parameter",
    },
}
"""The answer of the `refuse_stream` WebSocket mutation to a message carrying `stream`."""
TERMINAL = {"response.completed", "response.failed", "response.incomplete"}


class BrokenTarget:
    """The proxy; `url` + `/v1` is the base URL to give the harness."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self._http = httpx.AsyncClient(base_url=server_url, timeout=30)
        app = Starlette(
            routes=[
                Route("/{path:path}", self._forward, methods=["GET", "POST", "DELETE"]),
                WebSocketRoute("/{path:path}", self._relay),
            ]
        )
        self._loopback = LoopbackServer(app, name="broken-target")

    @property
    def base_url(self) -> str:
        return f"{self._loopback.url}/v1"

    def start(self) -> BrokenTarget:
        self._loopback.start()
        return self

    def stop(self) -> None:
        self._loopback.stop()

    async def _forward(self, request: Request) -> Response:
        mutation = request.headers.get("x-break", "")
        headers = {
            k: v
            for k, v in request.headers.items()
            if k not in ("host", "content-length", "x-break")
        }
        content = await request.body()
        if mutation in REQUEST_MUTATIONS and request.method == "POST":
            content = REQUEST_MUTATIONS[mutation](content)
        answer = await self._http.request(
            request.method,
            request.url.path,
            params=request.query_params,
            content=content,
            headers=headers,
        )
        kind = answer.headers.get("content-type", "").split(";")[0]
        if kind == "text/event-stream":
            return _stream(answer.text, mutation)
        if answer.status_code >= 400:
            return _error(answer, mutation)
        body = answer.json()
        if mutation in BODY_MUTATIONS and body.get("object") == "response":
            BODY_MUTATIONS[mutation](body)
        return Response(json.dumps(body), answer.status_code, media_type="application/json")

    async def _relay(self, websocket: WebSocket) -> None:
        """Relays one socket's turns to the server; `refuse_stream` answers a message that
        carries `stream` itself, as a server that refuses the field would."""
        mutation = websocket.headers.get("x-break")
        if mutation is None:
            await websocket.close()  # refused before the upgrade: HTTP 403
            return
        await websocket.accept()
        url = self.server_url.replace("http://", "ws://") + websocket.url.path
        forwarded = {"authorization": websocket.headers.get("authorization", "")}
        async with connect(url, additional_headers=forwarded, max_size=None) as server:
            while True:
                try:
                    message = await websocket.receive_text()
                except WebSocketDisconnect:
                    return
                if mutation == "refuse_stream" and "stream" in json.loads(message):
                    await websocket.send_text(json.dumps(REFUSE_STREAM))
                    continue
                await server.send(message)
                while True:
                    event = json.loads(await server.recv())
                    await websocket.send_text(json.dumps(event))
                    if event["type"] in TERMINAL or "status" in event:
                        break


def _error(answer: httpx.Response, mutation: str) -> Response:
    body = answer.json()
    status = answer.status_code
    if mutation == "problem_json":
        problem = {"type": "about:blank", "title": "Bad Request", "status": status}
        return Response(json.dumps(problem), status, media_type="application/problem+json")
    if mutation == "error_type":
        body["error"]["type"] = "bad_request"
    elif mutation == "no_param":
        del body["error"]["param"]
    elif mutation == "status_500":
        status = 500
    return Response(json.dumps(body), status, media_type="application/json")


def _stream(text: str, mutation: str) -> Response:
    frames = [f for f in text.split("\n\n") if f.strip()]
    payloads = [
        next(line[6:] for line in f.split("\n") if line.startswith("data: ")) for f in frames
    ]
    done = payloads[-1] == "[DONE]"
    events = [json.loads(p) for p in payloads if p != "[DONE]"]
    if mutation in STREAM_MUTATIONS:
        STREAM_MUTATIONS[mutation](events)
    out = []
    for index, event in enumerate(events):
        name = "response.bogus" if mutation == "event_name" and index == 1 else event["type"]
        data = json.dumps(event)
        if mutation == "two_data_lines" and index == 2:
            data = json.dumps(event, indent=1).replace("\n", "\ndata: ")
        ident = f"id: {index}\n" if mutation == "id_lines" else ""
        out.append(f"{ident}event: {name}\ndata: {data}\n\n")
    if done and mutation != "no_done":
        out.append("data: [DONE]\n\n")
    return Response("".join(out), 200, media_type="text/event-stream")
