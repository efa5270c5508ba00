"""GET /metrics: Prometheus text, beside the API and outside its keys."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Server, free_port, server_env
from tests.scrape import delta, gauges, requests_total, scrape, settled
from tests.upstream import ScriptedUpstream, Text

KEY = "sk-metrics"


@pytest.fixture(scope="module")
def keyed(upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose API wants a key (OPENRESPONSES_API_KEYS), and refuses an address its
    fourth wrong key in a minute."""
    env = server_env(
        upstream, OPENRESPONSES_API_KEYS=KEY, OPENRESPONSES_AUTH_FAILURES_PER_MINUTE="3"
    )
    server = Server(tmp_path_factory.mktemp("metrics-data"), env).start()
    yield server
    server.stop()


def test_metrics_count_requests_durations_and_tokens(
    keyed: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("One."), Text("Two."), Text("Three."))
    client = keyed.client(api_key=KEY)
    before = scrape(keyed)

    client.responses.create(model=model, input="Say one.")
    with client.responses.stream(model=model, input="Say two.") as stream:
        stream.get_final_response()
    missing = httpx.get(f"{keyed.base_url}/nowhere", headers={"authorization": f"Bearer {KEY}"})
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Three."}])
    after = settled(keyed, before, answered=4)

    assert missing.status_code == 404
    requests = "openresponses_requests_total"
    assert delta(before, after, requests, operation="createResponse", status="200") == 2
    assert delta(before, after, requests, operation="unknown", status="404") == 1
    assert delta(before, after, requests, operation="createChatCompletion", status="200") == 1
    assert requests_total(after) - requests_total(before) == 4
    durations = "openresponses_request_duration_seconds_count"
    assert delta(before, after, durations, operation="createResponse") == 2
    assert delta(before, after, durations, operation="unknown") == 1
    assert delta(before, after, durations, operation="createChatCompletion") == 1
    # The chat completion is relayed as the upstream sends it: no model call of ours.
    call = {"provider": "openai", "model": model}
    assert delta(before, after, "openresponses_model_call_duration_seconds_count", **call) == 2
    assert delta(before, after, "openresponses_time_to_first_token_seconds_count", **call) == 2
    assert delta(before, after, "openresponses_input_tokens_total", **call) == 20
    assert delta(before, after, "openresponses_output_tokens_total", **call) == 10
    assert after[("openresponses_responses_in_flight", ())] == 0
    assert after[("openresponses_background_queue_depth", ())] == 0


def test_metrics_gauge_a_background_response_while_it_runs(
    keyed: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Slowly.", chunk_size=1, chunk_delay=0.2))
    names = ("openresponses_responses_in_flight", "openresponses_background_queue_depth")

    keyed.client(api_key=KEY).responses.create(model=model, input="Slowly.", background=True)
    running = gauges(keyed, *names, until=(1, 1))
    ended = gauges(keyed, *names, until=(0, 0))

    assert running == (1, 1)
    assert ended == (0, 0)


def test_metrics_answer_without_a_key_where_the_api_wants_one(keyed: Server) -> None:
    refused = httpx.get(f"{keyed.base_url}/models")
    answer = httpx.get(f"{keyed.url}/metrics")

    assert refused.status_code == 401
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# TYPE openresponses_requests_total counter" in answer.text.splitlines()


def test_metrics_count_rate_limit_refusals_of_unrouted_requests(keyed: Server) -> None:
    # Another address than the other tests': uvicorn takes it from a proxy on this machine.
    wrong = {"authorization": "Bearer sk-wrong", "x-forwarded-for": "203.0.113.7"}
    before = scrape(keyed)

    statuses = [httpx.get(f"{keyed.base_url}/models", headers=wrong).status_code for _ in range(4)]
    after = settled(keyed, before, answered=4)

    assert statuses == [401, 401, 401, 429]
    refusals = "openresponses_rate_limit_refusals_total"
    assert delta(before, after, refusals, limit="auth_failures") == 1
    # Keys are checked before routing: these requests name no operation.
    requests = "openresponses_requests_total"
    assert delta(before, after, requests, operation="unknown", status="401") == 3
    assert delta(before, after, requests, operation="unknown", status="429") == 1


def test_metrics_port_serves_them_apart_from_the_api(
    upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> None:
    port = free_port()
    env = server_env(upstream)
    server = Server(tmp_path_factory.mktemp("metrics-port"), env, ["--metrics-port", str(port)])
    server.start()
    try:
        apart = httpx.get(f"http://127.0.0.1:{port}/metrics")
        beside = httpx.get(f"{server.url}/metrics")
    finally:
        server.stop()

    assert apart.status_code == 200
    assert "# TYPE openresponses_requests_total counter" in apart.text.splitlines()
    assert beside.status_code == 404
