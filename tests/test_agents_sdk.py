"""The OpenAI Agents SDK runs an agent over our WebSocket mode, as its users would."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from agents import (
    Agent,
    Runner,
    function_tool,
    set_default_openai_client,
    set_default_openai_responses_transport,
    set_tracing_disabled,
)
from openai import AsyncOpenAI

from tests.conftest import Server, server_env
from tests.upstream import Call, ScriptedUpstream, Text, ToolCalls


@pytest.fixture
def logged_server(upstream: ScriptedUpstream, tmp_path: Path) -> Iterator[Server]:
    """A server that logs each WebSocket it accepts (uvicorn's info lines)."""
    server = Server(tmp_path, server_env(upstream), ["--log-level", "info"]).start()
    yield server
    server.stop()


@function_tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"sunny in {city}"


async def _run(server: Server, model: str) -> tuple[str, list[str]]:
    set_tracing_disabled(True)
    client = AsyncOpenAI(base_url=server.base_url, api_key="sk-client", max_retries=0)
    set_default_openai_client(client, use_for_tracing=False)
    set_default_openai_responses_transport("websocket")  # sends "stream": true every turn
    try:
        agent = Agent(name="weather", instructions="Use your tools.", model=model,
                      tools=[get_weather])  # fmt: skip
        result = await Runner.run(agent, "What is the weather in Paris?")
    finally:
        set_default_openai_responses_transport("http")
    return str(result.final_output), [type(item).__name__ for item in result.new_items]


def test_an_agent_with_a_function_tool_runs_over_the_websocket_transport(
    logged_server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(
        ToolCalls([Call("get_weather", '{"city": "Paris"}')]), Text("It is sunny in Paris.")
    )

    final, items = asyncio.run(_run(logged_server, model))

    assert final == "It is sunny in Paris."
    assert items == ["ToolCallItem", "ToolCallOutputItem", "MessageOutputItem"]
    second = upstream.requests(model)[1].json["messages"]
    assert second[-1]["content"] == "sunny in Paris"  # the tool's output reached the model
    assert '"WebSocket /v1/responses" [accepted]' in logged_server.output()
    assert "POST /v1/responses" not in logged_server.output()
