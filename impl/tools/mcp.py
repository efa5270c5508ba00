"""Remote MCP servers (`{"type": "mcp", …}`), through the `mcp` SDK's client.

Each operation (listing the tools, calling one) opens its own connection and closes it
before returning: the SDK's client lives in an anyio task group, which must start and end in
one task, and a response's loop may span tasks (a background response). A connection costs
one round trip on top of the operation.

The model sees each allowed MCP tool as a function named `<server_label>__<tool name>`;
the client sees `mcp_list_tools`, `mcp_call` and `mcp_approval_request` items, as OpenAI
reports them. A server that cannot be reached, and a tool that fails, end up as errors in
those items, and the model is told, so a response never fails because of them.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from openresponses.generated import openai_models as m
from openresponses.items import Item, new_id
from openresponses.tools.base import Citations, ToolServices
from openresponses.tools.guard import check_url

if TYPE_CHECKING:
    from mcp import Client

CALL_TIMEOUT_SECONDS = 60.0
"""How long one tool call (connection included) may take before it is reported as failed."""

_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


def function_name(server_label: str, tool: str) -> str:
    """The function the model calls for `tool` of `server_label` (a valid function name)."""
    return _NAME_UNSAFE.sub("_", f"{server_label}__{tool}")[:64]


def _connect(spec: m.MCPTool) -> Client:
    # The SDK takes seconds to import: only servers that use MCP pay for it, once.
    import httpx2
    from mcp import Client
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    headers = dict(spec.headers or {})
    if spec.authorization:
        headers["Authorization"] = f"Bearer {spec.authorization}"
    url = str(spec.server_url)
    transport: AbstractAsyncContextManager[Any]
    if url.rstrip("/").endswith("/sse"):  # the legacy HTTP+SSE transport's usual endpoint
        transport = sse_client(url, headers=headers)
    else:
        http = create_mcp_http_client(
            headers=headers, timeout=httpx2.Timeout(30.0, read=CALL_TIMEOUT_SECONDS)
        )
        transport = streamable_http_client(url, http_client=http)
    return Client(transport)


def _allowed(spec: m.MCPTool, tool: m.MCPListToolsTool) -> bool:
    allowed = spec.allowed_tools
    if allowed is None:
        return True
    if isinstance(allowed, list):
        return tool.name in allowed
    return _matches(allowed, tool)


def _matches(rule: m.MCPToolFilter, tool: m.MCPListToolsTool) -> bool:
    """A tool filter: every condition it sets holds (names listed, or read-only hinted)."""
    if rule.tool_names is not None and tool.name not in rule.tool_names:
        return False
    read_only = bool((tool.annotations or {}).get("readOnlyHint"))
    return rule.read_only is None or rule.read_only == read_only


def _error_text(exc: BaseException) -> str:
    """The most telling message of an exception (task groups wrap the real one)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, TimeoutError):
        return f"The MCP server did not answer within {CALL_TIMEOUT_SECONDS:g} s."
    return str(exc) or type(exc).__name__


class McpServer:
    """One `mcp` tool of a request: one server, its allowed tools, its approval policy."""

    def __init__(
        self, spec: m.MCPTool, index: int, services: ToolServices, citations: Citations
    ) -> None:
        self.spec = spec
        self.param = f"tools[{index}].server_url"
        self.label = spec.server_label
        self.tools: list[m.MCPListToolsTool] = []

    # --- before the model runs -----------------------------------------------------------

    async def check(self, *, allow_private: bool) -> None:
        """Refuse a server on a private network (a 400) unless the server allows them."""
        await check_url(str(self.spec.server_url), allow_private=allow_private, param=self.param)

    async def prepare(self, history: Sequence[Item]) -> list[Item]:
        """List the server's tools, or reuse the list an earlier turn of the chain made."""
        for item in reversed(history):
            if isinstance(item, m.MCPListTools) and item.server_label == self.label:
                if item.error is None:
                    self.tools = [tool for tool in item.tools if _allowed(self.spec, tool)]
                    return []
                break  # the last listing failed: try again
        listing = m.MCPListTools(
            type="mcp_list_tools", id=new_id("mcp_list_tools"), server_label=self.label, tools=[]
        )
        try:
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS), _connect(self.spec) as client:
                tools = await self._list(client)
        except Exception as exc:  # an unreachable server is reported, not raised
            listing.error = (
                f"Error retrieving tool list from MCP server '{self.label}': {_error_text(exc)}"
            )
            return [listing]
        listing.tools = tools
        self.tools = [tool for tool in tools if _allowed(self.spec, tool)]
        return [listing]

    async def _list(self, client: Client) -> list[m.MCPListToolsTool]:
        found: list[m.MCPListToolsTool] = []
        cursor: str | None = None
        while True:
            page = await client.list_tools(cursor=cursor)
            for tool in page.tools:
                annotations = (
                    tool.annotations.model_dump(by_alias=True, exclude_none=True)
                    if tool.annotations
                    else None
                )
                found.append(
                    m.MCPListToolsTool(
                        name=tool.name,
                        description=tool.description,
                        input_schema=tool.input_schema,
                        annotations=annotations,
                    )
                )
            cursor = page.next_cursor
            if not cursor:
                return found

    def functions(self) -> list[m.FunctionTool]:
        described = f" (from MCP server '{self.label}'"
        if self.spec.server_description:
            described += f": {self.spec.server_description}"
        described += ")"
        return [
            m.FunctionTool(
                type="function",
                name=function_name(self.label, tool.name),
                description=(tool.description or tool.name) + described,
                parameters=tool.input_schema,
                strict=False,
            )
            for tool in self.tools
        ]

    def _tool_named(self, function: str) -> m.MCPListToolsTool | None:
        return next((t for t in self.tools if function_name(self.label, t.name) == function), None)

    def start(self, function: str, arguments: str) -> m.MCPToolCall | m.MCPApprovalRequest:
        tool = self._tool_named(function)
        assert tool is not None, "start() is for this server's functions"
        if self.needs_approval(tool.name):
            return self.approval_request(tool.name, arguments)
        return self.started(tool.name, arguments, None)

    # --- calls ---------------------------------------------------------------------------

    def needs_approval(self, tool: str) -> bool:
        """OpenAI's rule: approval is required unless the request says otherwise."""
        policy = self.spec.require_approval
        if policy is None or isinstance(policy, str):
            return policy != "never"
        listed = next((t for t in self.tools if t.name == tool), None)
        if listed is None:
            return True
        if policy.never is not None and _matches(policy.never, listed):
            return False
        if policy.always is not None:
            return _matches(policy.always, listed)
        return policy.never is not None  # a `never` filter alone: what it leaves out asks

    def approval_request(self, tool: str, arguments: str) -> m.MCPApprovalRequest:
        return m.MCPApprovalRequest(
            type="mcp_approval_request",
            id=new_id("mcp_approval_request"),
            server_label=self.label,
            name=tool,
            arguments=arguments,
        )

    def started(self, tool: str, arguments: str, approval_request_id: str | None) -> m.MCPToolCall:
        return m.MCPToolCall(
            type="mcp_call",
            id=new_id("mcp_call"),
            server_label=self.label,
            name=tool,
            arguments=arguments,
            status="in_progress",
            approval_request_id=approval_request_id,
        )

    async def run(self, call: m.MCPToolCall) -> m.MCPToolCall:
        """Call the tool; whatever goes wrong is reported in the returned item."""
        try:
            arguments = json.loads(call.arguments or "{}")
            if not isinstance(arguments, dict):
                raise ValueError("the arguments are not a JSON object")
        except ValueError as exc:
            error = m.MCPToolExecutionError(
                type="mcp_tool_execution_error",
                content=[{"type": "text", "text": f"Invalid arguments: {exc}"}],
            )
            return call.model_copy(update={"status": "failed", "error": error})
        try:
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS), _connect(self.spec) as client:
                result = await client.call_tool(call.name, arguments)
        except Exception as exc:
            protocol = m.MCPProtocolError(
                type="mcp_protocol_error", code=-32000, message=_error_text(exc)
            )
            return call.model_copy(update={"status": "failed", "error": protocol})
        blocks = [
            block.model_dump(mode="json", by_alias=True, exclude_none=True)
            for block in result.content
        ]
        if result.is_error:
            error = m.MCPToolExecutionError(type="mcp_tool_execution_error", content=blocks)
            return call.model_copy(update={"status": "failed", "error": error})
        output = "\n".join(b["text"] if b.get("type") == "text" else json.dumps(b) for b in blocks)
        if not blocks and result.structured_content is not None:
            output = json.dumps(result.structured_content)
        return call.model_copy(update={"status": "completed", "output": output})


# --- what the model reads, on this turn and later ones -----------------------------------------


def call_result_text(item: m.MCPToolCall) -> str:
    """An `mcp_call`'s result as the model reads it: the output, or what went wrong."""
    if item.output is not None:
        return item.output
    error = item.error
    if isinstance(error, m.MCPToolExecutionError):
        texts = (
            [b.get("text", "") for b in error.content if isinstance(b, dict)]
            if isinstance(error.content, list)
            else []
        )
        return "Error: " + ("\n".join(t for t in texts if t) or "the tool failed.")
    if error is not None:
        return f"Error: {error.message}"
    return "Error: the tool did not finish."
