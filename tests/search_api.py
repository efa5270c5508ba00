"""A scripted HTTP server on loopback standing in for a search API or a web site: it
answers each request with the next scripted `Answer` and records what it was sent.

    api = FakeSearchAPI()
    api.start()
    api.script(Answer(body=fixture("brave_web_search.json")))
    ...  # point a backend at api.url
    api.requests  # [Sent(method="GET", path="/res/v1/web/search", query={...}, ...)]
    api.stop()
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.loopback import LoopbackServer

FIXTURES = Path(__file__).parent / "fixtures" / "web_search"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b"{}"
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case
    json: Any  # the parsed body, or None without one


class FakeSearchAPI:
    def __init__(self) -> None:
        self.requests: list[Sent] = []
        self._answers: deque[Answer] = deque()
        app = Starlette(routes=[Route("/{path:path}", self._answer, methods=["GET", "POST"])])
        self._server = LoopbackServer(app, name="fake-search-api")

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def script(self, *answers: Answer) -> None:
        """Replaces what is left of the script; recorded requests are cleared too."""
        self._answers = deque(answers)
        self.requests.clear()

    async def _answer(self, request: Request) -> Response:
        raw = await request.body()
        self.requests.append(
            Sent(
                method=request.method,
                path=request.url.path,
                query=dict(request.query_params),
                headers={k.lower(): v for k, v in request.headers.items()},
                json=json.loads(raw) if raw else None,
            )
        )
        answer = self._answers.popleft() if self._answers else Answer(status=500, body=b"")
        if answer.delay:
            await asyncio.sleep(answer.delay)
        # The content type as given: Starlette would add a charset to a text/* media_type.
        headers = {"content-type": answer.content_type, **answer.headers}
        return Response(answer.body, status_code=answer.status, headers=headers)
