"""Requests and judgements that several areas' checks share."""

from __future__ import annotations

from typing import Any

from openresponses.conformance.outcomes import require

OR_SPEC = "Open Responses 2026-04-24"
OPENAI_REF = "OpenAI API reference, Responses"

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a location",
    "parameters": {
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "The city, e.g. Paris"},
        },
        "required": ["location"],
        "additionalProperties": False,
    },
}
WEATHER_PROMPT = "What's the weather like in Paris right now? Use the get_weather tool."


UNMATCHED_CALL_ID = "call_conformance_unmatched"


def unmatched_output() -> dict[str, Any]:
    """A tool's output for a call that no `function_call` in any context has."""
    return {"type": "function_call_output", "call_id": UNMATCHED_CALL_ID, "output": "18 C"}


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": text}


def messages(response: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for item in response.get("output", []) if item.get("type") == "message"]


def output_text(response: dict[str, Any]) -> str:
    """The assistant's text, joined over its messages' `output_text` parts."""
    return "".join(
        part.get("text", "")
        for item in messages(response)
        for part in item.get("content", [])
        if part.get("type") == "output_text"
    )


def require_completed(response: dict[str, Any]) -> None:
    require(
        response.get("status") == "completed",
        f"status is {response.get('status')!r}, not 'completed'"
        + (f" (error: {response.get('error')})" if response.get("error") else ""),
    )


def require_text_answer(response: dict[str, Any]) -> str:
    """A completed response whose output holds an assistant message with text."""
    require_completed(response)
    require(response.get("output"), "the response has no output items")
    require(messages(response), "the output holds no message item")
    text = output_text(response)
    require(text.strip(), "the assistant message has no output_text")
    return text


def function_calls(response: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for item in response.get("output", []) if item.get("type") == "function_call"]
