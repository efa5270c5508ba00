"""Background responses: `background: true`, polling, resumable streams and cancel."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import Server, postgres_schema, server_env
from tests.upstream import Error, ScriptedUpstream, Text

SLOW = {"chunk_size": 2, "chunk_delay": 0.1}
"""A model slow enough (about 0.1 s per two characters) to be caught while it writes."""


def _wait_until_ended(client: openai.OpenAI, response_id: str) -> Any:
    deadline = time.monotonic() + 15
    while (response := client.responses.retrieve(response_id)).status in ("queued", "in_progress"):
        assert time.monotonic() < deadline, f"{response_id} stayed {response.status}"
        time.sleep(0.05)
    return response


def _text(events: list[Any]) -> str:
    return "".join(e.delta for e in events if e.type == "response.output_text.delta")


def test_a_background_response_is_queued_at_once_and_completes_on_its_own(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("done in the background", **SLOW))

    queued = client.responses.create(model=model, input="Hi", background=True)

    assert queued.status == "queued"
    assert queued.background is True
    assert queued.output == []
    final = _wait_until_ended(client, queued.id)
    assert final.status == "completed"
    assert final.background is True
    assert final.output_text == "done in the background"


def test_a_background_response_must_be_stored(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("never"))

    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model=model, input="Hi", background=True, store=False)

    assert raised.value.body == {
        "message": "Background responses must be stored: 'background' needs 'store' true.",
        "type": "invalid_request_error",
        "param": "background",
        "code": "invalid_value",
    }
    assert upstream.requests(model) == []


def test_a_background_stream_starts_queued_and_runs_the_full_sequence(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Hello there", chunk_size=4))

    with client.responses.create(model=model, input="Hi", background=True, stream=True) as stream:
        events = list(stream)

    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created"
    assert events[0].response.status == "queued"
    assert events[1].type == "response.in_progress"
    assert events[1].response.status == "in_progress"
    assert events[-1].type == "response.completed"
    assert events[-1].response.background is True
    assert _text(events) == "Hello there"


def test_a_dropped_background_stream_keeps_running_and_resumes_after_the_last_event_seen(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    answer = "a long answer that keeps going"
    model = upstream.script(Text(answer, **SLOW))

    with client.responses.create(model=model, input="Hi", background=True, stream=True) as stream:
        seen = []
        for event in stream:
            seen.append(event)
            if event.type == "response.output_text.delta":
                break  # the connection drops here
    response_id = seen[0].response.id
    last = seen[-1].sequence_number

    rest = list(
        client.responses.retrieve(response_id, stream=True, starting_after=last)  # type: ignore[call-overload]
    )

    assert [e.sequence_number for e in rest] == list(range(last + 1, last + 1 + len(rest)))
    assert rest[-1].type == "response.completed"
    assert _text(seen + rest) == answer
    assert client.responses.retrieve(response_id).output_text == answer


def test_resuming_without_starting_after_replays_the_stream_from_the_start(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("replayed", chunk_size=3))
    response_id = client.responses.create(model=model, input="Hi", background=True).id
    _wait_until_ended(client, response_id)

    events = list(client.responses.retrieve(response_id, stream=True))  # type: ignore[call-overload]

    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    assert _text(events) == "replayed"


def test_cancelling_twice_returns_the_same_cancelled_response(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("z" * 200, **SLOW))
    response_id = client.responses.create(model=model, input="Hi", background=True).id

    first = client.responses.cancel(response_id)
    second = client.responses.cancel(response_id)

    assert first.status == second.status == "cancelled"
    assert second.model_dump() == first.model_dump()


def test_cancelling_a_completed_background_response_is_a_400(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("finished"))
    response_id = client.responses.create(model=model, input="Hi", background=True).id
    _wait_until_ended(client, response_id)

    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.cancel(response_id)

    assert raised.value.body == {
        "message": "Cannot cancel a response with status 'completed'.",
        "type": "invalid_request_error",
        "param": "response_id",
        "code": "invalid_value",
    }


def test_cancelling_a_completed_foreground_response_is_a_400(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("foreground"))
    response_id = client.responses.create(model=model, input="Hi").id

    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.cancel(response_id)

    assert raised.value.body == {
        "message": "Cannot cancel a response with status 'completed'.",
        "type": "invalid_request_error",
        "param": "response_id",
        "code": "invalid_value",
    }


@pytest.mark.parametrize(
    ("background", "store"),
    [(True, True), (False, True), (False, False)],
    ids=["background", "foreground", "foreground not stored"],
)
def test_a_stream_cancelled_in_flight_returns_the_response_and_ends_with_response_cancelled(
    client: openai.OpenAI, upstream: ScriptedUpstream, background: bool, store: bool
) -> None:
    model = upstream.script(Text("w" * 200, **SLOW))
    with client.responses.create(
        model=model, input="Hi", stream=True, background=background, store=store
    ) as stream:
        events = []
        for event in stream:
            events.append(event)
            if event.type == "response.output_text.delta":
                break
        response_id = events[0].response.id
        began = time.monotonic()
        cancelled = client.responses.cancel(response_id)
        events += list(stream)

    assert time.monotonic() - began < 5, "the cancel waited for the model to finish"
    assert cancelled.id == response_id
    assert cancelled.status == "cancelled"
    assert cancelled.background is background
    [message] = cancelled.output
    assert message.status == "incomplete"
    assert 0 < len(message.content[0].text) < 200
    assert [e.type for e in events[-4:]] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.cancelled",
    ]
    closing = events[-1].response  # an event the SDK does not know: left a dict
    assert closing["id"] == response_id
    assert closing["status"] == "cancelled"
    assert closing["output"][0]["content"][0]["text"] == message.content[0].text
    assert [e.sequence_number for e in events] == list(range(len(events)))


@pytest.mark.parametrize("background", [True, False])
def test_a_cancelled_stream_is_stored_cancelled(
    client: openai.OpenAI, upstream: ScriptedUpstream, background: bool
) -> None:
    model = upstream.script(Text("v" * 200, **SLOW))
    with client.responses.create(
        model=model, input="Hi", stream=True, background=background
    ) as stream:
        response_id = next(iter(stream)).response.id
        cancelled = client.responses.cancel(response_id)

    assert client.responses.retrieve(response_id).model_dump() == cancelled.model_dump()


def test_a_cancelled_response_not_stored_is_gone_once_it_has_ended(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("u" * 200, **SLOW))
    with client.responses.create(model=model, input="Hi", stream=True, store=False) as stream:
        response_id = next(iter(stream)).response.id
        client.responses.cancel(response_id)
        list(stream)

    with pytest.raises(openai.NotFoundError):
        client.responses.cancel(response_id)


def test_a_response_running_on_another_server_process_is_a_409_here(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    model = upstream.script(Text("t" * 200, **SLOW))
    with postgres_schema() as url:
        env = server_env(upstream, OPENRESPONSES_STORE_URL=url)
        running = Server(tmp_path / "a", env).start()
        other = Server(tmp_path / "b", env).start()
        try:
            response_id = (
                running.client().responses.create(model=model, input="Hi", background=True).id
            )
            with pytest.raises(openai.ConflictError) as raised:
                other.client().responses.cancel(response_id)
            running.client().responses.cancel(response_id)
        finally:
            other.stop()
            running.stop()

    assert raised.value.status_code == 409
    assert raised.value.body == {
        "message": f"Response '{response_id}' is running on another server process; "
        "only that process can cancel it.",
        "type": "invalid_request_error",
        "param": "response_id",
        "code": "response_not_running_here",
    }


def test_cancelling_an_unknown_response_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.responses.cancel("resp_missing")

    assert raised.value.body == {
        "message": "Response with id 'resp_missing' not found.",
        "type": "invalid_request_error",
        "param": "response_id",
        "code": "response_not_found",
    }


def test_only_background_responses_can_be_streamed_again(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("foreground"))
    response_id = client.responses.create(model=model, input="Hi").id

    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.retrieve(response_id, stream=True)  # type: ignore[call-overload]

    assert raised.value.code == "unsupported_parameter"
    assert raised.value.param == "stream"


def test_an_upstream_error_fails_the_background_response(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Error(400, "This model does not exist.", type="invalid_request_error"))

    queued = client.responses.create(model=model, input="Hi", background=True)

    assert queued.status == "queued"
    failed = _wait_until_ended(client, queued.id)
    assert failed.status == "failed"
    assert failed.error is not None
    assert "This model does not exist." in failed.error.message


def test_the_cancelled_event_carries_the_extension_prefix_in_the_open_responses_dialect(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("w" * 200, **SLOW))
    headers = {"OpenResponses-Version": "2026-04-24"}
    body = {"model": model, "input": "Hi", "background": True, "stream": True}
    events: list[dict[str, Any]] = []
    with (
        httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http,
        http.stream("POST", "/responses", json=body) as stream,
    ):
        for line in stream.iter_lines():
            if not line.startswith("data: {"):
                continue
            events.append(json.loads(line.removeprefix("data: ")))
            if events[-1]["type"] == "response.output_text.delta" and events[-2]["type"] != (
                "response.output_text.delta"
            ):
                http.post(f"/responses/{events[0]['response']['id']}/cancel")

    assert events[-1]["type"] == "openresponses:response.cancelled"
    assert events[-1]["response"]["status"] == "cancelled"
    assert events[-1]["response"]["store"] is True  # the spec's ResponseResource shape
    assert not any(event["type"] == "response.completed" for event in events)


def test_a_background_response_running_at_shutdown_is_recorded_as_failed(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    model = upstream.script(Text("v" * 200, **SLOW))
    first = Server(tmp_path, server_env(upstream)).start()
    try:
        response_id = first.client().responses.create(model=model, input="Hi", background=True).id
        time.sleep(0.3)
    finally:
        first.stop()

    second = Server(tmp_path, server_env(upstream)).start()
    try:
        stored = second.client().responses.retrieve(response_id)
    finally:
        second.stop()

    assert stored.status == "failed"
    assert stored.error is not None
    assert stored.error.message == "The server shut down before the response completed."


@pytest.mark.parametrize("background", [True, False])
def test_a_response_a_killed_server_left_running_reads_as_failed_after_a_restart(
    upstream: ScriptedUpstream, tmp_path: Path, background: bool
) -> None:
    model = upstream.script(Text("k" * 200, **SLOW))
    first = Server(tmp_path, server_env(upstream)).start()
    try:
        with first.client().responses.create(
            model=model, input="Hi", stream=True, background=background
        ) as stream:
            events = iter(stream)
            response_id = next(events).response.id
            next(e for e in events if e.type == "response.output_text.delta")
            assert first.process is not None
            first.process.kill()  # no shutdown: nothing gets to record the end
            first.process.wait()
    except openai.APIConnectionError:
        pass  # the stream dies with its server
    finally:
        first.stop()

    second = Server(tmp_path, server_env(upstream)).start()
    try:
        stored = second.client().responses.retrieve(response_id)
    finally:
        second.stop()

    assert stored.status == "failed"
    assert stored.error is not None
    assert (stored.error.code, stored.error.message) == (
        "server_error",
        "The server stopped before the response completed.",
    )
    assert stored.output == []  # stored at its start; what it streamed is lost with it


def test_a_background_response_extends_its_conversation_before_it_reads_as_completed(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    conversation = client.conversations.create()
    model = upstream.script(Text("done in the background", **SLOW))

    queued = client.responses.create(
        model=model, input="Hi", background=True, conversation=conversation.id
    )
    final = _wait_until_ended(client, queued.id)

    assert final.status == "completed"
    assert final.conversation is not None and final.conversation.id == conversation.id
    items = client.conversations.items.list(conversation.id, order="asc").data
    assert [item.content[0].text for item in items] == ["Hi", "done in the background"]  # type: ignore[union-attr]


def test_a_cancelled_background_response_adds_nothing_to_its_conversation(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    conversation = client.conversations.create()
    model = upstream.script(Text("w" * 200, **SLOW))
    queued = client.responses.create(
        model=model, input="Hi", background=True, conversation=conversation.id
    )

    cancelled = client.responses.cancel(queued.id)

    assert cancelled.status == "cancelled"
    assert client.conversations.items.list(conversation.id).data == []
