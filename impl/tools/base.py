"""The server-tool protocol: tools the server runs itself inside one response.

A request's built-in tools (`mcp` now; `file_search` and `web_search` follow the same
protocol) are offered to the model as ordinary function tools, so every provider can call
them. When the model calls one, the server runs it and reports it to the client as the
tool's own item (`mcp_call`…), never as a `function_call`; the model then reads the result
as a function output and goes on (the loop is `core.turn.Turn`'s).

Each tool type is one module with a class implementing `ServerTool`; `tools.registry` builds
them from a request and turns their items back into function calls and outputs for the
model, on this turn and on later ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from openresponses.generated import openai_models as m
from openresponses.items import Item

if TYPE_CHECKING:
    from openresponses.tools.web.base import WebSearchBackend
    from openresponses.tools.web.page import PageFetcher
    from openresponses.vectors.search import Searcher


@dataclass(frozen=True)
class ToolServices:
    """What server tools may use, built once when the server starts."""

    allow_private: bool = False
    """Whether tool URLs may reach loopback and private networks (see tools.guard)."""
    web_search: WebSearchBackend | None = None
    """The configured search backend; None: the web_search tool is refused."""
    pages: PageFetcher | None = None
    searcher: Searcher | None = None
    """Vector store search, for file_search."""
    project: str = ""
    """The project of the request the tools serve, whose objects alone they reach (set per
    request by `tools.registry.toolbox`)."""


@dataclass
class Citations:
    """The sources a response's tools numbered for the model, which it cites as `[n]`; the
    engine turns the markers into annotations (see core.builder)."""

    sources: dict[int, tuple[str, str, str]] = field(default_factory=dict)
    """n: ("url", url, title) or ("file", file_id, filename)."""

    def add(self, kind: str, target: str, title: str) -> int:
        number = len(self.sources) + 1
        self.sources[number] = (kind, target, title)
        return number


class ServerTool(Protocol):
    """One built-in tool of one request, e.g. one MCP server."""

    async def check(self, *, allow_private: bool) -> None:
        """Refuse the request (an APIError) if the tool's settings are unusable, e.g. a URL on
        a private network when the server does not allow them (see tools.guard)."""

    async def prepare(self, history: Sequence[Item]) -> list[Item]:
        """Get ready before the model is first called: the items that report it (an
        `mcp_list_tools`), or none when `history` already has what is needed."""

    def functions(self) -> list[m.FunctionTool]:
        """The functions the model may call (after `prepare`)."""

    def start(self, function: str, arguments: str) -> Item:
        """The item for a call of one of this tool's functions: in progress, to be `run`, or
        a request for the client's approval, which ends the response until it answers."""

    async def run(self, item: Any) -> Item:
        """The started `item`, finished: completed, or failed with the error inside (a tool's
        failure is the model's to read, never an exception)."""
