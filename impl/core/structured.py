"""Structured output for providers that have none (`text.format` json_schema / json_object).

The model is told the schema in its instructions; its answer is held back, parsed (a Markdown
code fence around it is tolerated) and validated with jsonschema; an answer that fails gets one
more try, with the model told what was wrong. The client then receives the valid JSON, or,
after two failures, the last answer in a response that ends `incomplete` with the reason
`json_schema_mismatch`. Because the answer must be checked before anyone sees it, such a
response streams all at once at the end.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable
from dataclasses import replace
from typing import Any

import jsonschema

from openresponses.generated import openai_models as m
from openresponses.items import new_id, user_text
from openresponses.providers.base import (
    Finish,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)

Generate = Callable[[ModelRequest], AsyncGenerator[ModelEvent, None]]

ATTEMPTS = 2


def wanted(text_format: dict[str, Any] | None) -> bool:
    return text_format is not None and text_format.get("type") in ("json_schema", "json_object")


def _instructions(text_format: dict[str, Any]) -> str:
    if text_format["type"] == "json_object":
        return "Answer with a single JSON object and nothing else: no prose, no code fences."
    schema = json.dumps(text_format.get("schema") or {}, separators=(",", ":"))
    return (
        "Answer with a single JSON value that validates against this JSON Schema, and nothing "
        f"else: no prose, no code fences.\nJSON Schema: {schema}"
    )


def _problem(text: str, text_format: dict[str, Any]) -> tuple[str | None, str]:
    """What is wrong with an answer (None: nothing), and the answer as bare JSON."""
    bare = text.strip()
    if bare.startswith("```"):
        bare = bare.split("\n", 1)[-1].rsplit("```", 1)[0].strip()
    try:
        value = json.loads(bare)
    except ValueError as exc:
        return f"it is not JSON ({exc})", bare
    if text_format["type"] == "json_object":
        return (None if isinstance(value, dict) else "it is not a JSON object"), bare
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(text_format.get("schema") or {}).iter_errors(value)
    )
    if error is None:
        return None, bare
    where = "/".join(str(part) for part in error.absolute_path) or "the top level"
    return f"at {where}: {error.message}", bare


def _total(reports: list[UsageReport]) -> UsageReport:
    return UsageReport(
        input_tokens=sum(r.input_tokens for r in reports),
        output_tokens=sum(r.output_tokens for r in reports),
        cached_tokens=sum(r.cached_tokens for r in reports),
        reasoning_tokens=sum(r.reasoning_tokens for r in reports),
    )


def _answer(events: list[ModelEvent], text: str, usage: UsageReport | None) -> list[ModelEvent]:
    """An attempt's events with its text as one delta where the text began, and the usage of
    every attempt in place of this one's."""
    out: list[ModelEvent] = []
    for event in events:
        if isinstance(event, TextDelta):
            if not any(isinstance(e, TextDelta) for e in out):
                out.append(TextDelta(text))
        elif isinstance(event, UsageReport):
            if usage is not None:
                out.append(usage)
        else:
            out.append(event)
    return out


async def enforce(
    generate: Generate, request: ModelRequest, text_format: dict[str, Any]
) -> AsyncGenerator[ModelEvent, None]:
    """The events of an answer that honours `text_format`, or of the last failed attempt."""
    instructions = "\n\n".join(filter(None, [request.instructions, _instructions(text_format)]))
    attempt = replace(request, instructions=instructions, text_format=None)
    reports: list[UsageReport] = []
    for number in range(ATTEMPTS):
        events = [event async for event in generate(attempt)]
        reports += [event for event in events if isinstance(event, UsageReport)]
        usage = _total(reports) if reports else None
        if any(isinstance(event, ToolCallDelta) for event in events):
            for event in _answer(events, _text(events), usage):  # a tool turn: nothing to check
                yield event
            return
        text = _text(events)
        problem, bare = _problem(text, text_format)
        if problem is None:
            for event in _answer(events, bare, usage):
                yield event
            return
        if number + 1 == ATTEMPTS:
            failed = [e for e in _answer(events, text, usage) if not isinstance(e, Finish)]
            for event in [*failed, Finish("schema_mismatch")]:
                yield event
            return
        retry = (
            f"That answer is not valid: {problem}. Answer again with only the JSON, valid "
            "against the schema."
        )
        attempt = replace(attempt, items=[*attempt.items, _assistant(text), user_text(retry)])


def _text(events: list[ModelEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


def _assistant(text: str) -> Any:
    return m.OutputMessage(
        id=new_id("message"),
        type="message",
        role="assistant",
        status="completed",
        content=[m.OutputTextContent(type="output_text", text=text, annotations=[], logprobs=[])],
    )
