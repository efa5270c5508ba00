"""POST /v1/responses with stream=true: the semantic event sequence, in the OpenAI dialect."""

from __future__ import annotations

import time
from typing import Any

import openai

from tests.upstream import Call, Cut, Error, ScriptedUpstream, Text, ToolCalls, Usage


def _events(client: openai.OpenAI, **kwargs: Any) -> list[Any]:
    with client.responses.create(stream=True, **kwargs) as stream:
        return list(stream)


def test_text_stream_emits_the_full_semantic_sequence(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Hello world", chunk_size=4))

    events = _events(client, model=model, input="Hi")

    types = [e.type for e in events]
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert (
        "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Hello world"
    )
    done = next(e for e in events if e.type == "response.output_text.done")
    assert done.text == "Hello world"
    added = events[2]
    assert (added.item.type, added.item.status, added.item.content) == (
        "message",
        "in_progress",
        [],
    )
    item_ids = {e.item_id for e in events[3:9]}
    assert item_ids == {added.item.id}
    assert events[0].response.status == "in_progress"
    final = events[-1].response
    assert final.status == "completed"
    assert final.output_text == "Hello world"
    assert final.output[0].id == added.item.id


def test_streamed_tool_call_arguments_arrive_as_deltas(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(ToolCalls([Call("get_weather", '{"city": "Paris"}', id="call_7")]))

    events = _events(
        client,
        model=model,
        input="Weather?",
        tools=[
            {
                "type": "function",
                "name": "get_weather",
                "parameters": {"type": "object"},
                "strict": False,
            }
        ],
    )

    types = [e.type for e in events]
    assert types[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert types[-3:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert len(deltas) > 1
    assert "".join(deltas) == '{"city": "Paris"}'
    added = events[2].item
    assert (added.type, added.name, added.call_id, added.arguments) == (
        "function_call",
        "get_weather",
        "call_7",
        "",
    )
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert (done.arguments, done.name, done.item_id) == (
        '{"city": "Paris"}',
        "get_weather",
        added.id,
    )


def test_parallel_streamed_calls_open_one_item_each(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(ToolCalls([Call("a", '{"x": 1}'), Call("b", '{"y": 2}')]))

    events = _events(client, model=model, input="go")

    added = [e for e in events if e.type == "response.output_item.added"]
    assert [(e.output_index, e.item.name) for e in added] == [(0, "a"), (1, "b")]
    final = events[-1].response
    assert [(o.name, o.arguments) for o in final.output] == [("a", '{"x": 1}'), ("b", '{"y": 2}')]


def test_reasoning_stream_has_its_own_item_and_reasoning_text_events(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Yes.", reasoning="Let me think.", chunk_size=100))

    events = _events(client, model=model, input="Is it?")

    types = [e.type for e in events]
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[2].item.type == "reasoning"
    assert events[5].text == "Let me think."
    assert events[8].output_index == 1


def test_usage_from_the_final_chunk_is_on_the_completed_response(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(
        Text("ok", usage=Usage(prompt_tokens=7, completion_tokens=2, cached_tokens=3))
    )

    events = _events(client, model=model, input="Hi")

    usage = events[-1].response.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (7, 2, 9)
    assert usage.input_tokens_details.cached_tokens == 3
    assert upstream.requests(model)[0].json["stream_options"] == {"include_usage": True}


def test_upstream_cut_mid_stream_ends_in_response_failed_and_is_stored_failed(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Cut(3, Text("This will be cut off somewhere", chunk_size=3)))

    events = _events(client, model=model, input="Hi")

    assert events[-2].type == "error"
    assert events[-1].type == "response.failed"
    failed = events[-1].response
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error.code == "server_error"
    assert failed.error.message == "the stream from openai broke off before it was complete"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    stored = client.responses.retrieve(failed.id)
    assert stored.status == "failed"
    assert stored.error is not None and stored.error.message == failed.error.message


def test_upstream_error_before_streaming_is_a_plain_http_error(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(*[Error(429, "Slow down", type="rate_limit_error")] * 3)

    try:
        _events(client, model=model, input="Hi")
    except openai.RateLimitError as exc:
        assert exc.status_code == 429
        assert "Slow down" in exc.message
    else:
        raise AssertionError("expected a 429")


def test_server_keeps_serving_after_a_failed_stream(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    broken = upstream.script(Cut(3, Text("abcdefghij", chunk_size=2)))
    _events(client, model=broken, input="Hi")
    healthy = upstream.script(Text("still here"))

    response = client.responses.create(model=healthy, input="Hi")

    assert response.output_text == "still here"


def test_stream_and_non_stream_give_the_same_output_shape(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Same", reasoning="hmm"), Text("Same", reasoning="hmm"))

    streamed = _events(client, model=model, input="x")[-1].response
    plain = client.responses.create(model=model, input="x")

    def shape(r: Any) -> list[Any]:
        return [(o.type, o.status, [(c.type, c.text) for c in (o.content or [])]) for o in r.output]

    assert shape(streamed) == shape(plain)
    assert streamed.status == plain.status == "completed"


def test_a_streaming_response_can_be_retrieved_while_in_progress(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("slow and steady", chunk_size=3, chunk_delay=0.2))

    with client.responses.create(model=model, input="Hi", stream=True) as stream:
        events = iter(stream)
        created = next(events)
        during = client.responses.retrieve(created.response.id)
        rest = list(events)

    assert during.status == "in_progress"
    assert rest[-1].type == "response.completed"
    assert client.responses.retrieve(created.response.id).status == "completed"


def test_a_client_that_disconnects_mid_stream_leaves_a_failed_response(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(
        Text("a long answer that takes its time", chunk_size=2, chunk_delay=0.1)
    )

    with client.responses.create(model=model, input="Hi", stream=True) as stream:
        response_id = next(iter(stream)).response.id
    # leaving the block closed the connection after the first event

    deadline = time.monotonic() + 10
    while (stored := client.responses.retrieve(response_id)).status == "in_progress":
        assert time.monotonic() < deadline, "the response stayed in progress"
        time.sleep(0.05)
    assert stored.status == "failed"
    assert stored.error is not None
    assert stored.error.message == "The client disconnected before the response completed."
