"""Function calling, tool_choice and structured output."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from openresponses.conformance.checks.common import (
    OR_SPEC,
    WEATHER_PROMPT,
    WEATHER_TOOL,
    function_calls,
    output_text,
    require_completed,
    require_text_answer,
    unmatched_output,
    user,
)
from openresponses.conformance.context import Context
from openresponses.conformance.outcomes import fail, require
from openresponses.conformance.registry import check

TOOLS = f"{OR_SPEC} §Tools"
TOOL_CHOICE = f"{OR_SPEC} §tool_choice"


def _weather_call(ctx: Context) -> dict[str, Any]:
    """The response to the weather prompt, required to hold one well-formed get_weather call."""

    def make() -> dict[str, Any]:
        return ctx.create(ctx.body(input=[user(WEATHER_PROMPT)], tools=[WEATHER_TOOL]))

    response = ctx.shared("weather-call", make)
    _require_weather_call(response)
    return response


def _require_weather_call(response: dict[str, Any]) -> dict[str, Any]:
    calls = function_calls(response)
    kinds = [item.get("type") for item in response.get("output", [])]
    require(calls, f"no function_call item in the output (got {kinds})")
    call = calls[0]
    require(call.get("name") == "get_weather", f"the call names {call.get('name')!r}")
    require(call.get("call_id"), "the function_call has no call_id")
    try:
        arguments = json.loads(call.get("arguments", ""))
    except ValueError:
        fail(f"arguments are not JSON: {call.get('arguments')!r}")
    require(
        isinstance(arguments, dict) and isinstance(arguments.get("location"), str),
        f"arguments {call.get('arguments')!r} do not match the tool's parameters",
    )
    return call


@check("tools.function_call", "A function tool is called (get_weather)", TOOLS)
def function_call(ctx: Context) -> str:
    call = _require_weather_call(_weather_call(ctx))
    return f"get_weather({call['arguments']})"


@check("tools.function_call_stream", "A streamed function call: events, arguments, grammar", TOOLS)
def function_call_stream(ctx: Context) -> None:
    streamed = ctx.stream(ctx.body(input=[user(WEATHER_PROMPT)], tools=[WEATHER_TOOL]))
    streamed.require_clean()
    types = streamed.types()
    added = [e for e in streamed.events if e.get("type") == "response.output_item.added"]
    require(
        any(e.get("item", {}).get("type") == "function_call" for e in added),
        "no response.output_item.added carries a function_call",
    )
    for kind in ("response.function_call_arguments.delta", "response.function_call_arguments.done"):
        require(kind in types, f"no {kind} event")
    _require_weather_call(streamed.response)


def _answer_with_weather(
    ctx: Context, call: dict[str, Any], history: list[dict[str, Any]], **fields: Any
) -> dict[str, Any]:
    output = {
        "type": "function_call_output",
        "call_id": call["call_id"],
        "output": json.dumps({"temperature_c": 18, "conditions": "sunny"}),
    }
    return ctx.create(ctx.body(tools=[WEATHER_TOOL], input=[*history, output], **fields))


@check(
    "tools.function_call_output",
    "function_call_output round trip via previous_response_id",
    f"{OR_SPEC} §previous_response_id",
)
def function_call_output(ctx: Context) -> str:
    first = _weather_call(ctx)
    call = function_calls(first)[0]
    answer = _answer_with_weather(ctx, call, [], previous_response_id=first["id"])
    return f"answered {require_text_answer(answer)[:60]!r}"


@check(
    "tools.function_call_output_inline",
    "function_call_output round trip with the history inline (stateless)",
    TOOLS,
)
def function_call_output_inline(ctx: Context) -> str:
    first = _weather_call(ctx)
    call = function_calls(first)[0]
    echoed = {k: call[k] for k in ("type", "call_id", "name", "arguments")}
    answer = _answer_with_weather(ctx, call, [user(WEATHER_PROMPT), echoed], store=False)
    return f"answered {require_text_answer(answer)[:60]!r}"


@check(
    "tools.unmatched_call_id",
    "A function_call_output matching no call → 400 (inline, previous_response_id)",
    f"{OR_SPEC} §Tools; OpenAI: No tool call found for function call output",
)
def unmatched_call_id(ctx: Context) -> str:
    other_call = {
        "type": "function_call",
        "call_id": "call_conformance_other",
        "name": "get_weather",
        "arguments": '{"location": "Paris"}',
    }
    inline = ctx.body(
        tools=[WEATHER_TOOL], input=[user(WEATHER_PROMPT), other_call, unmatched_output()]
    )
    first = _weather_call(ctx)
    chained = ctx.body(
        tools=[WEATHER_TOOL], previous_response_id=first["id"], input=[unmatched_output()]
    )
    params = []
    for how, body in (("inline", inline), ("via previous_response_id", chained)):
        exchange = ctx.client.send("POST", "/responses", json_body=body)
        require(exchange.status != 200, f"{how}: the unmatched call_id was accepted (HTTP 200)")
        params.append(f"{how}: param {ctx.expect_error(exchange, 400)['param']!r}")
    return ", ".join(params)


@check("tools.choice_required", "tool_choice: required forces a call", TOOL_CHOICE)
def choice_required(ctx: Context) -> None:
    response = ctx.create(
        ctx.body(input=[user("Say hello.")], tools=[WEATHER_TOOL], tool_choice="required")
    )
    require_completed(response)
    require(function_calls(response), "tool_choice 'required' gave no function_call")
    require(
        response.get("tool_choice") == "required",
        f"$.tool_choice is {response.get('tool_choice')!r}",
    )


@check("tools.choice_none", "tool_choice: none forbids calls", TOOL_CHOICE)
def choice_none(ctx: Context) -> None:
    response = ctx.create(
        ctx.body(input=[user(WEATHER_PROMPT)], tools=[WEATHER_TOOL], tool_choice="none")
    )
    require(not function_calls(response), "tool_choice 'none' still gave a function_call")
    require_text_answer(response)


@check("tools.choice_function", "tool_choice naming a function forces that call", TOOL_CHOICE)
def choice_function(ctx: Context) -> None:
    choice = {"type": "function", "name": "get_weather"}
    response = ctx.create(
        ctx.body(input=[user(WEATHER_PROMPT)], tools=[WEATHER_TOOL], tool_choice=choice)
    )
    require_completed(response)
    _require_weather_call(response)


CITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
    "additionalProperties": False,
}


@check(
    "output.json_schema", "Structured output: the text parses and validates", f"{OR_SPEC} §Items"
)
def json_schema(ctx: Context) -> str:
    text_format = {"type": "json_schema", "name": "city", "schema": CITY_SCHEMA, "strict": True}
    response = ctx.create(
        ctx.body(input="Name the capital of France and its country.", text={"format": text_format})
    )
    require_completed(response)
    text = output_text(response)
    try:
        value = json.loads(text)
    except ValueError:
        fail(f"the output is not JSON: {text[:120]!r}")
    problems = [e.message for e in jsonschema.Draft202012Validator(CITY_SCHEMA).iter_errors(value)]
    require(not problems, f"the output does not match the schema: {'; '.join(problems)}")
    echoed = (response.get("text") or {}).get("format") or {}
    require(echoed.get("type") == "json_schema", f"$.text.format is {echoed!r}")
    return text[:80]
