"""Real MCP servers for the tests: the `mcp` SDK's own server over streamable HTTP (and the
legacy SSE transport), on loopback, with tools that answer, fail and take their time."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.loopback import LoopbackServer


@dataclass
class Journal:
    """What the server saw: request headers, and when each slow call began and ended."""

    headers: list[dict[str, str]] = field(default_factory=list)
    slow_calls: list[tuple[str, float, float]] = field(default_factory=list)


def _server(journal: Journal) -> MCPServer:
    server = MCPServer("test-tools")

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def add(a: int, b: int) -> str:
        """Add two integers."""
        return str(a + b)

    @server.tool()
    def shout(text: str) -> str:
        """The text in capitals."""
        return text.upper()

    @server.tool()
    def explode() -> str:
        """Always fails."""
        raise RuntimeError("the detonator is broken")

    @server.tool()
    async def slow(label: str, seconds: float) -> str:
        """Waits, then answers."""
        began = time.monotonic()
        await asyncio.sleep(seconds)
        journal.slow_calls.append((label, began, time.monotonic()))
        return f"{label} done"

    return server


class _Recording:
    """Keeps each request's headers in the journal."""

    def __init__(self, app: ASGIApp, journal: Journal) -> None:
        self.app = app
        self.journal = journal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            self.journal.headers.append(headers)
        await self.app(scope, receive, send)


class McpTestServer:
    """A running test MCP server; `url` is its streamable-HTTP endpoint, `sse_url` the
    legacy SSE one."""

    def __init__(self, *, transport: str = "streamable-http") -> None:
        self.journal = Journal()
        server = _server(self.journal)
        app: Any = server.sse_app() if transport == "sse" else server.streamable_http_app()
        self.transport = transport
        self._loopback = LoopbackServer(
            _Recording(app, self.journal), name=f"mcp {transport}", lifespan=True
        )

    @property
    def url(self) -> str:
        path = "/sse" if self.transport == "sse" else "/mcp"
        return f"{self._loopback.url}{path}"

    def start(self) -> McpTestServer:
        self._loopback.start()
        return self

    def stop(self) -> None:
        self._loopback.stop()
