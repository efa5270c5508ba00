"""What the harness sends and receives, kept byte-exact enough to judge the wire format.

The harness talks to a target as any HTTP client would (httpx, no SDK), because an SDK would
tolerate, or hide, exactly the departures it exists to find: a second `data:` line, an `event:`
name that disagrees with the JSON, a missing `[DONE]`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import httpx

SPEC_VERSION = "2026-04-24"
"""The Open Responses release the harness holds targets to (sent as `OpenResponses-Version`
only when `Target.version_header` asks for it: Open Responses clients do not send it)."""


class Dialect(Enum):
    """Which rule book a run applies: OpenAI's API reference or the Open Responses spec."""

    OPENAI = "openai"
    OPENRESPONSES = "openresponses"


class TransportError(Exception):
    """The target could not be reached, or broke the connection, or timed out."""


@dataclass(frozen=True)
class Target:
    """The endpoint under test; `base_url` ends where `/responses` is appended (`…/v1`)."""

    base_url: str
    model: str
    api_key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 60.0
    version_header: bool = False
    """Send `OpenResponses-Version` with the Open Responses rule book's requests, for servers
    that keep a strict mode behind it; off by default, as Open Responses clients send none."""

    def dialect_headers(self, dialect: Dialect) -> dict[str, str]:
        """The headers a client of `dialect` sends besides the target's own."""
        if dialect is Dialect.OPENRESPONSES and self.version_header:
            return {"openresponses-version": SPEC_VERSION}
        return {}


@dataclass(frozen=True)
class Exchange:
    """One request and its complete answer."""

    method: str
    path: str
    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def content_type(self) -> str:
        content_type: str = self.headers.get("content-type", "")
        return content_type.split(";")[0].strip().lower()

    def json(self) -> Any:
        """The body parsed as JSON, or `None` when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def describe(self) -> str:
        text = self.body[:300].decode("utf-8", "replace")
        return (
            f"{self.method} {self.path} → {self.status} {self.content_type or '(no type)'}: {text}"
        )


@dataclass(frozen=True)
class Frame:
    """One SSE frame (the lines up to a blank line), as the target wrote it."""

    event: str | None
    data: list[str]
    has_id: bool


@dataclass
class Stream:
    """A streamed answer: its frames and, for frames holding JSON objects, the events."""

    exchange: Exchange
    frames: list[Frame]
    events: list[dict[str, Any]]
    done: bool
    """Whether a `data: [DONE]` frame arrived."""
    unparsable: list[str]
    """`data` payloads that were neither JSON objects nor `[DONE]`."""
    after_done: int
    """Frames that came after `[DONE]`."""


def parse_frames(text: str) -> list[Frame]:
    """SSE frames per the HTML standard's line rules (CRLF, CR or LF; comments ignored)."""
    frames: list[Frame] = []
    event: str | None = None
    data: list[str] = []
    has_id = False
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for line in lines:
        if line == "":
            if data or event is not None:
                frames.append(Frame(event, data, has_id))
            event, data, has_id = None, [], False
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            has_id = True
    if data or event is not None:
        frames.append(Frame(event, data, has_id))
    return frames


def _stream(exchange: Exchange) -> Stream:
    frames = parse_frames(exchange.body.decode("utf-8", "replace"))
    events: list[dict[str, Any]] = []
    unparsable: list[str] = []
    done = False
    after_done = 0
    for frame in frames:
        payload = "\n".join(frame.data)
        if done:
            after_done += 1
        elif payload == "[DONE]":
            done = True
            continue
        try:
            value = json.loads(payload)
        except ValueError:
            value = None
        if isinstance(value, dict):
            events.append(value)
        elif not done:
            unparsable.append(payload[:200])
    return Stream(exchange, frames, events, done, unparsable, after_done)


class Client:
    """An httpx client bound to one target and one dialect."""

    def __init__(self, target: Target, dialect: Dialect) -> None:
        headers = {
            "user-agent": "openresponses-conformance",
            **target.dialect_headers(dialect),
            **target.headers,
        }
        if target.api_key:
            headers["authorization"] = f"Bearer {target.api_key}"
        self.target = target
        self.dialect = dialect
        self._http = httpx.Client(
            base_url=target.base_url.rstrip("/"), headers=headers, timeout=target.timeout
        )

    def close(self) -> None:
        self._http.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Exchange:
        """One request; `content` sends raw bytes (as JSON) where `json_body` would encode."""
        request_headers = dict(headers or {})
        if json_body is not None:
            content = json.dumps(json_body).encode()
        if content is not None:
            request_headers.setdefault("content-type", "application/json")
        try:
            response = self._http.request(
                method, path, content=content, headers=request_headers, params=params
            )
        except httpx.HTTPError as exc:
            raise TransportError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        return Exchange(method, path, response.status_code, response.headers, response.content)

    def stream(self, path: str, body: dict[str, Any]) -> Stream:
        """POSTs `body` with `stream: true` and reads the whole event stream."""
        return _stream(self.send("POST", path, json_body={**body, "stream": True}))
