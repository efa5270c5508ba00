"""A request's server tools, built from its `tools`, and their items as the model reads them.

Adding a tool type touches this file only: its class in `_BUILDERS`, its item types in
`_MODEL_ITEMS`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from pydantic import BaseModel

from openresponses.errors import invalid
from openresponses.generated import openai_models as m
from openresponses.items import Item, new_id
from openresponses.tools import file_search, mcp, web_search
from openresponses.tools.base import Citations, ServerTool, ToolServices

_BUILDERS: dict[type[BaseModel], Callable[[Any, int, ToolServices, Citations], ServerTool]] = {
    m.MCPTool: mcp.McpServer,
    m.FileSearchTool: file_search.FileSearch,
    m.WebSearchTool: web_search.WebSearch,
    m.WebSearchPreviewTool: web_search.WebSearch,
}
"""Request tool model → the server tool that runs it (given the tool, its index, what tools
may use, and the response's citations)."""

SERVER_TOOL_TYPES = frozenset(_BUILDERS)


class Toolbox:
    """The server tools of one request, prepared together and found by function name."""

    def __init__(self, tools: list[ServerTool], citations: Citations) -> None:
        self.tools = tools
        self.citations = citations
        self._owners: dict[str, ServerTool] = {}

    async def prepare(self, history: Sequence[Item], *, allow_private: bool) -> list[Item]:
        """Check, then prepare every tool at once; the items that report it, in the tools'
        order."""
        await asyncio.gather(*(tool.check(allow_private=allow_private) for tool in self.tools))
        prepared = await asyncio.gather(*(tool.prepare(history) for tool in self.tools))
        self._owners = {f.name: tool for tool in self.tools for f in tool.functions()}
        return [item for items in prepared for item in items]

    def functions(self) -> list[m.FunctionTool]:
        return [f for tool in self.tools for f in tool.functions()]

    def names(self) -> frozenset[str]:
        return frozenset(self._owners)

    def owner(self, function: str) -> ServerTool:
        return self._owners[function]

    def mcp_server(self, label: str) -> mcp.McpServer | None:
        found = (t for t in self.tools if isinstance(t, mcp.McpServer) and t.label == label)
        return next(found, None)

    async def run_approved(self, items: Sequence[Item], history: Sequence[Item]) -> list[Item]:
        """Run the calls that the client's `mcp_approval_response` inputs approve; their
        finished `mcp_call` items. A response to an unknown request is a 400."""
        requests = {i.id: i for i in history if isinstance(i, m.MCPApprovalRequest)}
        approved = []
        for index, item in enumerate(items):
            if not isinstance(item, m.MCPApprovalResponseResource):
                continue
            request = requests.get(item.approval_request_id)
            server = self.mcp_server(request.server_label) if request else None
            if request is None or server is None:
                raise invalid(
                    f"No mcp_approval_request with id '{item.approval_request_id}' for a server "
                    "of this request in the conversation (is previous_response_id set, and the "
                    "mcp tool given again?).",
                    param=f"input[{index}].approval_request_id",
                    code="invalid_value",
                )
            if item.approve:
                approved.append(
                    server.run(server.started(request.name, request.arguments, request.id))
                )
        return list(await asyncio.gather(*approved))

    def results(self) -> dict[str, str]:
        """What the model read for each call of this response that its item cannot hold."""
        found: dict[str, str] = {}
        for tool in self.tools:
            found.update(getattr(tool, "results", {}))
        return found


def toolbox(request: m.CreateResponse, services: ToolServices, project: str) -> Toolbox | None:
    """The request's server tools, reaching the `project`'s objects only; None when it has
    none (the common, fast case)."""
    ours = [
        (index, tool) for index, tool in enumerate(request.tools or []) if type(tool) in _BUILDERS
    ]
    if not ours:
        return None
    citations = Citations()
    scoped = replace(services, project=project)
    tools = [_BUILDERS[type(tool)](tool, index, scoped, citations) for index, tool in ours]
    return Toolbox(tools, citations)


# --- what the model reads ------------------------------------------------------------------


def _call(call_id: str, name: str, arguments: str) -> m.FunctionToolCall:
    return m.FunctionToolCall(
        type="function_call",
        id=new_id("function_call"),
        call_id=call_id,
        name=name,
        arguments=arguments,
        status="completed",
    )


def _output(call_id: str, output: str) -> m.FunctionToolCallOutputResource:
    return m.FunctionToolCallOutputResource(
        type="function_call_output",
        id=new_id("function_call_output"),
        call_id=call_id,
        output=output,
        status="completed",
    )


_ModelItems = tuple[list[Item], list[Item]]
"""The function calls, then their outputs, that the model reads for one server-tool item."""


def _web_items(item: m.WebSearchToolCall, results: dict[str, str]) -> _ModelItems:
    action = item.action
    if isinstance(action, m.WebSearchActionOpenPage):
        call = _call(item.id, web_search.OPEN_PAGE, json.dumps({"url": str(action.url)}))
    else:  # a search, or a client's `find_in_page` (no query: reading one raised before)
        query = action.query if isinstance(action, m.WebSearchActionSearch) else None
        call = _call(item.id, web_search.SEARCH, json.dumps({"query": query or ""}))
    return [call], [_output(item.id, results.get(item.id) or web_search.model_text(item))]


def _file_search_items(item: m.FileSearchToolCall, results: dict[str, str]) -> _ModelItems:
    call = _call(item.id, file_search.NAME, json.dumps({"query": " ".join(item.queries)}))
    return [call], [_output(item.id, results.get(item.id) or file_search.model_text(item))]


def _mcp_items(item: Item, results: dict[str, str]) -> _ModelItems:
    """(calls, outputs) the model reads for one MCP item."""
    if isinstance(item, m.MCPToolCall):
        name = mcp.function_name(item.server_label, item.name)
        output: list[Item] = [
            _output(item.approval_request_id or item.id, mcp.call_result_text(item))
        ]
        if item.approval_request_id:  # its call is the approval request, earlier
            return [], output
        return [_call(item.id, name, item.arguments)], output
    if isinstance(item, m.MCPApprovalRequest):
        return [_call(item.id, mcp.function_name(item.server_label, item.name), item.arguments)], []
    if isinstance(item, m.MCPApprovalResponseResource) and not item.approve:
        reason = f" ({item.reason})" if item.reason else ""
        return [], [_output(item.approval_request_id, f"The user declined this call{reason}.")]
    return [], []  # listings, and approvals (the mcp_call that follows carries the result)


_MODEL_ITEMS: dict[str, Callable[[Any, dict[str, str]], _ModelItems]] = {
    "web_search_call": _web_items,
    "file_search_call": _file_search_items,
    "mcp_list_tools": _mcp_items,
    "mcp_call": _mcp_items,
    "mcp_approval_request": _mcp_items,
    "mcp_approval_response": _mcp_items,
}


def model_items(items: Sequence[Item], results: dict[str, str] | None = None) -> list[Item]:
    """`items` as the model reads them: server-tool items become function calls and their
    outputs; a run of them becomes its calls, then its outputs (one parallel turn).
    `results` holds what the model read for this response's calls, where items cannot."""
    result: list[Item] = []
    calls: list[Item] = []
    outputs: list[Item] = []
    for item in items:
        convert = _MODEL_ITEMS.get(getattr(item, "type", ""))
        if convert is None:
            result += calls + outputs
            calls, outputs = [], []
            result.append(item)
            continue
        more_calls, more_outputs = convert(item, results or {})
        calls += more_calls
        outputs += more_outputs
    return result + calls + outputs
