"""Retries: a call that fails before any answer is tried again, with backoff or as the upstream's
Retry-After says; one that fails once an answer has started streaming is not."""

from __future__ import annotations

import time
from pathlib import Path

import openai
import pytest

from tests.conftest import Server, free_port, server_env
from tests.upstream import Cut, Error, ScriptedUpstream, Text


def test_a_transient_upstream_error_is_retried_until_it_succeeds(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Error(503, "busy"), Error(502, "bad gateway"), Text("Third time."))

    response = client.responses.create(model=model, input="Hi")

    assert response.output_text == "Third time."
    assert len(upstream.requests(model)) == 3


def test_a_stream_is_retried_before_it_starts(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Error(500, "oops"), Text("Streamed after a retry."))

    with client.responses.create(model=model, input="Hi", stream=True) as stream:
        events = list(stream)

    assert events[-1].response.output_text == "Streamed after a retry."
    assert len(upstream.requests(model)) == 2


def test_retry_after_is_waited_out(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    limited = Error(429, "Slow down", type="rate_limit_error", headers={"retry-after": "1"})
    model = upstream.script(limited, Text("Patience paid."))
    started = time.monotonic()

    response = client.responses.create(model=model, input="Hi")

    assert response.output_text == "Patience paid."
    assert time.monotonic() - started >= 1.0


def test_a_client_error_is_not_retried(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    model = upstream.script(Error(400, "Your request is wrong", type="invalid_request_error"))

    with pytest.raises(openai.BadRequestError):
        client.responses.create(model=model, input="Hi")

    assert len(upstream.requests(model)) == 1


def test_when_every_try_fails_the_last_error_reaches_the_client(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(*[Error(503, "still busy")] * 3)

    with pytest.raises(openai.InternalServerError) as caught:
        client.responses.create(model=model, input="Hi")

    assert caught.value.status_code == 503
    assert caught.value.body["code"] == "upstream_unavailable"
    assert len(upstream.requests(model)) == 3


def test_a_stream_that_broke_off_is_not_retried(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Cut(2, Text("This breaks off.")))

    with client.responses.create(model=model, input="Hi", stream=True) as stream:
        events = list(stream)

    assert events[-1].type == "response.failed"
    assert len(upstream.requests(model)) == 1


def _server_with(upstream: ScriptedUpstream, tmp_path: Path, provider: str) -> Server:
    config = tmp_path / "openresponses.toml"
    config.write_text(f"[providers.tuned]\n{provider}")
    return Server(tmp_path, server_env(upstream), ["--config", str(config)]).start()


def test_max_retries_is_set_per_provider(upstream: ScriptedUpstream, tmp_path: Path) -> None:
    server = _server_with(
        upstream, tmp_path, f'base_url = "{upstream.base_url}"\nmax_retries = 0\n'
    )
    model = upstream.script(Error(503, "busy"), Text("never reached"))
    try:
        with pytest.raises(openai.InternalServerError):
            server.client().responses.create(model=f"tuned@{model}", input="Hi")
    finally:
        server.stop()

    assert len(upstream.requests(model)) == 1


def test_an_unreachable_upstream_is_a_502_after_its_retries(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    server = _server_with(upstream, tmp_path, f'base_url = "{closed}"\nconnect_timeout = 2\n')
    started = time.monotonic()
    try:
        with pytest.raises(openai.APIStatusError) as caught:
            server.client().responses.create(model="tuned@any", input="Hi")
    finally:
        server.stop()

    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "upstream_unreachable"
    assert time.monotonic() - started >= 0.25 * 0.5 + 0.5 * 0.5  # two jittered backoffs
