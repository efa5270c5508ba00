"""From a validated `CreateResponse` to what the engine runs: checked, normalised, complete.

Three jobs, in request order:
* refuse what we do not implement, loudly (a 400 naming the parameter), never ignore it;
* normalise input into stored items: every item gets an id, string shorthands become
  messages, `item_reference`s are resolved;
* build the initial `Response` object that echoes the request, as OpenAI does.
"""

from __future__ import annotations

import time
from typing import Any, TypeVar

from pydantic import BaseModel, RootModel

from openresponses.core import conversations
from openresponses.errors import invalid
from openresponses.generated import openai_models as m
from openresponses.items import Item, input_message, new_id, user_text
from openresponses.store.base import Store
from openresponses.tools.mcp import function_name
from openresponses.tools.registry import SERVER_TOOL_TYPES, Toolbox

T = TypeVar("T")

# Parameters accepted only at their "off" value (anything else would be silently ignored).
_UNSUPPORTED_UNLESS = {
    "prompt": (None,),
    "context_management": (None,),
    "moderation": (None,),
    "prompt_cache_options": (None,),
    "top_logprobs": (None, 0),
    "service_tier": (None, "auto", "default"),
}
_SUPPORTED_INCLUDE = {
    "reasoning.encrypted_content",  # nothing encrypted comes from chat upstreams: stays null
    "message.input_image.image_url",  # input images are always kept
    "web_search_call.action.sources",  # always given
    "file_search_call.results",  # always given
}

_SUPPORTED_TOOLS: tuple[type[BaseModel], ...] = (m.FunctionTool, *SERVER_TOOL_TYPES)
"""Client functions, and the tools tools.registry runs."""


def deprecated_field(model: BaseModel, name: str) -> Any:
    """A field OpenAI's spec marks deprecated (`user`, `truncation`…), read without warning.

    Clients still send them and the server still honours them, but pydantic emits a
    DeprecationWarning on every read of such a field: four per request cost 3 % of a small
    request's CPU in Python's warnings machinery. Field values live in the model's `__dict__`.
    """
    return model.__dict__[name]


def plain(value: RootModel[T] | None) -> T | None:
    """The value of a scalar the generator wrapped in a RootModel (for its constraints)."""
    return None if value is None else value.root


def check_supported(request: m.CreateResponse) -> None:
    """Raise a 400 for every parameter we accept in the schema but do not implement."""
    for name, allowed in _UNSUPPORTED_UNLESS.items():
        value = getattr(request, name)
        value = value.root if isinstance(value, RootModel) else value
        if value not in allowed:
            raise invalid(
                f"'{name}' is not supported by this server.",
                param=name,
                code="unsupported_parameter",
            )
    _check_range("max_tool_calls", request.max_tool_calls, 0, MAX_INT32)
    for index, value in enumerate(request.include or []):
        if value not in _SUPPORTED_INCLUDE:
            raise invalid(
                f"include value '{value}' is not supported by this server.",
                param=f"include[{index}]",
                code="unsupported_value",
            )
    for index, tool in enumerate(request.tools or []):
        if isinstance(tool, m.MCPTool):
            _check_mcp(tool, index)
        elif not isinstance(tool, _SUPPORTED_TOOLS):
            raise invalid(
                f"Tool type '{tool.type}' is not supported by this server.",
                param=f"tools[{index}].type",
                code="unsupported_value",
            )
    choice = request.tool_choice
    if isinstance(choice, BaseModel) and not isinstance(
        choice, (m.ToolChoiceFunction, m.ToolChoiceAllowed, m.ToolChoiceMCP)
    ):
        raise invalid(
            f"tool_choice type '{getattr(choice, 'type', '?')}' is not supported.",
            param="tool_choice",
            code="unsupported_value",
        )
    if request.background and request.store is False:
        raise invalid(
            "Background responses must be stored: 'background' needs 'store' true.",
            param="background",
            code="invalid_value",
        )
    reasoning = request.reasoning
    if reasoning is not None:
        for name in ("generate_summary", "mode", "context"):
            if getattr(reasoning, name) not in (None, "auto"):
                raise invalid(
                    f"reasoning.{name} is not supported by this server.",
                    param=f"reasoning.{name}",
                    code="unsupported_value",
                )


MAX_INT32 = 2**31 - 1
"""The largest value an integer parameter the spec leaves unbounded may take: a 32-bit
integer's, as providers' APIs read them."""


def _check_range(name: str, value: int | None, least: int, most: int) -> None:
    """A 400 in OpenAI's words for an integer parameter out of its range."""
    if value is not None and value < least:
        raise invalid(
            f"Invalid '{name}': integer below minimum value. Expected a value >= {least}, "
            f"but got {value} instead.",
            param=name,
            code="integer_below_min_value",
        )
    if value is not None and value > most:
        raise invalid(
            f"Invalid '{name}': integer above maximum value. Expected a value <= {most}, "
            f"but got {value} instead.",
            param=name,
            code="integer_above_max_value",
        )


def _check_mcp(tool: m.MCPTool, index: int) -> None:
    if tool.server_url is None:
        raise invalid(
            "An mcp tool needs 'server_url' (connectors are not supported by this server).",
            param=f"tools[{index}].server_url",
            code="missing_required_parameter",
        )


# Request fields that chat-completions upstreams take under the same name and meaning.
_SAME_NAME_HINTS = ("prompt_cache_key", "safety_identifier", "prompt_cache_retention")


def provider_hints(request: m.CreateResponse) -> dict[str, str]:
    """Caching and abuse-tracking hints the client set, for providers that understand them."""
    hints = {name: deprecated_field(request, name) for name in _SAME_NAME_HINTS}
    if request.reasoning is not None and request.reasoning.effort is not None:
        hints["reasoning_effort"] = request.reasoning.effort
    if request.reasoning is not None and request.reasoning.summary is not None:
        hints["reasoning_summary"] = request.reasoning.summary
    if request.text is not None and request.text.verbosity is not None:
        hints["verbosity"] = request.text.verbosity
    return {name: str(getattr(value, "root", value)) for name, value in hints.items() if value}


def function_tools(request: m.CreateResponse) -> list[m.FunctionTool]:
    return [tool for tool in request.tools or [] if isinstance(tool, m.FunctionTool)]


def callable_tools(request: m.CreateResponse) -> list[m.FunctionTool]:
    """The tools the model may call: `allowed_tools` narrows the list as a hard limit."""
    tools = function_tools(request)
    choice = request.tool_choice
    if isinstance(choice, m.ToolChoiceAllowed):
        names = {t.get("name") for t in choice.tools if t.get("type") == "function"}
        tools = [tool for tool in tools if tool.name in names]
    if isinstance(choice, m.ToolChoiceFunction) and choice.name not in {t.name for t in tools}:
        raise invalid(
            f"tool_choice names function '{choice.name}', which is not in tools.",
            param="tool_choice.name",
        )
    return tools


def tool_choice(request: m.CreateResponse, box: Toolbox | None) -> str | dict[str, Any] | None:
    """`tool_choice` in the form providers take; an `mcp` choice names the server's functions."""
    choice = request.tool_choice
    if choice is None or isinstance(choice, str):
        return choice
    if isinstance(choice, m.ToolChoiceMCP):
        return _mcp_choice(choice, box)
    dumped: dict[str, Any] = choice.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


def _mcp_choice(choice: m.ToolChoiceMCP, box: Toolbox | None) -> dict[str, Any]:
    server = box.mcp_server(choice.server_label) if box else None
    if server is None:
        raise invalid(
            f"tool_choice names MCP server '{choice.server_label}', which is not in tools.",
            param="tool_choice.server_label",
        )
    names = [f.name for f in server.functions()]
    if choice.name is None:
        tools = [{"type": "function", "name": name} for name in names]
        return {"type": "allowed_tools", "mode": "required", "tools": tools}
    wanted = function_name(choice.server_label, choice.name)
    if wanted not in names:
        raise invalid(
            f"tool_choice names tool '{choice.name}', which MCP server "
            f"'{choice.server_label}' does not offer.",
            param="tool_choice.name",
        )
    return {"type": "function", "name": wanted}


# --- input ----------------------------------------------------------------------------------


def _text_content(text: str) -> list[Any]:
    return [m.InputTextContent(type="input_text", text=text)]


def _assistant_message(
    content: str | list[Any], phase: Any, item_id: str | None
) -> m.OutputMessage:
    if isinstance(content, str):
        texts = [content]
    else:
        texts = [getattr(part, "text", "") or "" for part in content]
    return m.OutputMessage(
        id=item_id or new_id("message"),
        type="message",
        role="assistant",
        status="completed",
        phase=phase,
        content=[
            m.OutputTextContent(type="output_text", text=text, annotations=[], logprobs=[])
            for text in texts
        ],
    )


def _output_part(part: Any) -> dict[str, Any]:
    """A function output's content part (a request model) as the stored item's part takes it:
    the stored image part has a `detail`, which OpenAI defaults to `auto`."""
    data: dict[str, Any] = part.model_dump(mode="json", exclude_none=True)
    if data["type"] == "input_image":
        data.setdefault("detail", "auto")
    return data


def _normalise(item: Any, param: str) -> Item:
    """One input item as the stored item it becomes (references are resolved by the caller)."""
    if isinstance(item, m.EasyInputMessage):
        if item.role == "assistant":
            return _assistant_message(item.content, item.phase, None)
        if isinstance(item.content, str):
            return input_message(item.role, _text_content(item.content))
        return input_message(item.role, item.content)
    if isinstance(item, m.InputMessage):
        return input_message(item.role, item.content)
    if isinstance(item, m.OutputMessage | m.ReasoningItem):
        return item
    if isinstance(item, m.CompactionSummaryItemParam):
        # Checked when expanded for the model (core.compaction), where the key is at hand.
        return m.CompactionBody(
            type="compaction",
            id=item.id or new_id("compaction"),
            encrypted_content=item.encrypted_content,
        )
    if isinstance(item, m.FunctionToolCall):
        return m.FunctionToolCallResource(
            id=item.id or new_id("function_call"),
            type="function_call",
            call_id=item.call_id,
            name=item.name,
            arguments=item.arguments,
            status=item.status or "completed",
        )
    if isinstance(item, m.FunctionCallOutputItemParam):
        given = item.output.root if isinstance(item.output, m.Output1) else item.output
        output = given if isinstance(given, str) else [_output_part(part) for part in given]
        call_id = item.call_id.root if isinstance(item.call_id, m.CallId) else item.call_id
        return m.FunctionToolCallOutputResource(
            id=item.id or new_id("function_call_output"),
            type="function_call_output",
            call_id=call_id,
            output=output,
            status=item.status or "completed",
        )
    if isinstance(item, m.MCPApprovalResponse):
        return m.MCPApprovalResponseResource(
            type="mcp_approval_response",
            id=item.id or new_id("mcp_approval_response"),
            approval_request_id=item.approval_request_id,
            approve=item.approve,
            reason=item.reason,
        )
    if isinstance(item, m.MCPListTools | m.MCPApprovalRequest | m.MCPToolCall):
        return item  # a previous turn's output, given back as input
    kind = getattr(item, "type", type(item).__name__)
    raise invalid(
        f"Input item type '{kind}' is not supported by this server.",
        param=f"{param}.type",
        code="unsupported_value",
    )


async def input_items(
    raw: str | RootModel[str] | list[Any] | None,
    store: Store,
    project: str,
    *,
    param: str = "input",
) -> list[Item]:
    """A request's `input` (or the conversations API's `items`, named by `param`) as stored
    items, in order (a string may come wrapped, for its length limit); references name the
    `project`'s items."""
    if isinstance(raw, RootModel):
        raw = raw.root
    if raw is None:
        return []
    if isinstance(raw, str):
        return [user_text(raw)]
    items: list[Item] = []
    for index, item in enumerate(raw):
        if isinstance(item, m.ItemReferenceParam):
            found = await _referenced(store, project, item.id, f"{param}[{index}].id")
            items.append(found)
        elif _bare_reasoning(item):
            # OpenAI's words: such an item is found only if it was stored.
            why = (
                " Items are not persisted when `store` is set to false. Try again with `store` "
                "set to true, or remove this item from your input."
            )
            found = await _referenced(
                store, project, item.id, f"{param}[{index}]", kind="reasoning", why=why
            )
            items.append(found)
        else:
            items.append(_normalise(item, f"{param}[{index}]"))
    return items


async def _referenced(
    store: Store,
    project: str,
    item_id: str,
    param: str,
    *,
    kind: str | None = None,
    why: str = "",
) -> Item:
    """The project's stored item `item_id` (of type `kind`, if given); a 400 saying `why`
    without it."""
    found = await store.find_item(project, item_id)
    if found is None or (kind is not None and getattr(found, "type", None) != kind):
        raise invalid(
            f"Item with id '{item_id}' not found.{why}", param=param, code="item_not_found"
        )
    return found


def _bare_reasoning(item: Any) -> bool:
    """A reasoning item that carries none of its content: OpenAI reads it as a reference to
    the item it stored under that id."""
    return isinstance(item, m.ReasoningItem) and not (
        item.summary or item.content or item.encrypted_content
    )


# --- the response object ---------------------------------------------------------------------


def initial_response(request: m.CreateResponse, model: str) -> m.Response:
    """The response echoing the request, before the model has said anything: `in_progress`,
    or `queued` for a background response."""
    text = request.text or m.ResponseTextParam(format=m.ResponseFormatText(type="text"))
    if text.format is None:
        text = text.model_copy(update={"format": m.ResponseFormatText(type="text")})
    reasoning = request.reasoning or m.Reasoning(effort=None, summary=None)
    response = m.Response(
        id=new_id("response"),
        object="response",
        created_at=int(time.time()),
        status="queued" if request.background else "in_progress",
        completed_at=None,
        error=None,
        incomplete_details=None,
        instructions=request.instructions,
        max_output_tokens=plain(request.max_output_tokens),
        max_tool_calls=request.max_tool_calls,
        model=model,
        output=[],
        parallel_tool_calls=True
        if request.parallel_tool_calls is None
        else request.parallel_tool_calls,
        previous_response_id=request.previous_response_id,
        reasoning=reasoning,
        service_tier="default",
        background=bool(request.background),
        temperature=1.0 if request.temperature is None else plain(request.temperature),
        text=text,
        tool_choice=request.tool_choice or "auto",
        tools=request.tools or [],
        top_p=1.0 if request.top_p is None else plain(request.top_p),
        top_logprobs=0,
        truncation=deprecated_field(request, "truncation") or "disabled",
        usage=None,
        user=deprecated_field(request, "user"),
        metadata=request.metadata or {},
        safety_identifier=request.safety_identifier,
        prompt_cache_key=request.prompt_cache_key,
    )
    conversation_id = conversations.requested(request)
    if conversation_id is not None:  # set only then: OpenAI leaves the key out otherwise
        response.conversation = m.ResponseConversation(id=conversation_id)
    return response
