"""A rule-based stand-in for a model, so the conformance harness can be run against our server.

The harness asks open questions ("what's the weather in Paris?") and judges the protocol, not
the wit of the answer; this answers them the way any capable model would, through the scripted
upstream's real wire formats (it reads chat-completions, Anthropic Messages and Responses
requests alike),
with reasoning on plain answers so that the reasoning events are part of every text stream the
harness judges.
"""

from __future__ import annotations

import json
from typing import Any

from tests.upstream import Call, Reply, Text, ToolCalls


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def _instance(schema: dict[str, Any]) -> Any:
    """The simplest value a JSON schema accepts (objects, strings, numbers, booleans, arrays)."""
    kind = schema.get("type")
    if kind == "object":
        return {name: _instance(sub) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    return "Paris"


def _tool_names(request: dict[str, Any]) -> list[str]:
    """Chat tools are `{"type": "function", "function": {...}}`; Anthropic's carry the name."""
    return [
        t["function"]["name"] if "function" in t else t["name"] for t in request.get("tools") or []
    ]


def _choice(request: dict[str, Any]) -> str | None:
    """tool_choice as "auto", "none", "required" or a function name, in either wire format."""
    choice = request.get("tool_choice")
    if not isinstance(choice, dict):
        return choice
    if "function" in choice:
        return str(choice["function"]["name"])
    kind = choice.get("type")
    if kind in ("tool", "function"):  # Anthropic's named tool; Responses' named function
        return str(choice["name"])
    return {"any": "required"}.get(kind, kind)


def _tool_to_call(request: dict[str, Any]) -> str | None:
    """The function this turn calls, if any: forced by tool_choice, or asked for by the user."""
    tools, choice = _tool_names(request), _choice(request)
    if not tools or choice == "none":
        return None
    if choice in tools:
        return choice
    last = _turns(request)[-1]
    if choice == "required" or (last.get("role") == "user" and "weather" in _text(last).lower()):
        return tools[0]
    return None


def _turns(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The conversation: chat and Anthropic `messages`, or Responses `input` items."""
    turns = request.get("messages") or request.get("input")
    return turns if isinstance(turns, list) else [{"role": "user", "content": str(turns)}]


def _is_tool_result(message: dict[str, Any]) -> bool:
    content = message.get("content")
    blocks = content if isinstance(content, list) else []
    return (
        message.get("role") == "tool"
        or message.get("type") == "function_call_output"
        or any(isinstance(b, dict) and b.get("type") == "tool_result" for b in blocks)
    )


def _schema(request: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema the answer must follow: chat's `response_format`, Responses' `text`."""
    chat = request.get("response_format") or {}
    if chat.get("type") == "json_schema":
        return dict(chat["json_schema"]["schema"])
    responses = (request.get("text") or {}).get("format") or {}
    if responses.get("type") == "json_schema":
        return dict(responses["schema"])
    # A provider without structured output gets the schema in its instructions (Anthropic's
    # `system`); a capable model follows them.
    system = str(request.get("system") or "")
    marker = "JSON Schema: "
    return dict(json.loads(system.split(marker, 1)[1])) if marker in system else None


def answer(request: dict[str, Any]) -> Reply:
    if _is_tool_result(_turns(request)[-1]):
        return Text("It is 18 °C and sunny in Paris.")
    tool = _tool_to_call(request)
    if tool is not None:
        return ToolCalls([Call(tool, json.dumps({"location": "Paris"}))])
    schema = _schema(request)
    if schema is not None:
        return Text(json.dumps(_instance(schema)))
    return Text("Hello there, friend! 1, 2, 3, 4, 5.", reasoning="A short, friendly answer.")
