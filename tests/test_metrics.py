"""GET /metrics: Prometheus text, beside the API and outside its keys."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Server, free_port, server_env
from tests.upstream import ScriptedUpstream, Text

KEY = "sk-metrics"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def keyed(upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose API wants a key (OPENRESPONSES_API_KEYS)."""
    env = server_env(upstream, OPENRESPONSES_API_KEYS=KEY)
    server = Server(tmp_path_factory.mktemp("metrics-data"), env).start()
    yield server
    server.stop()


def scrape(server: Server) -> Samples:
    answer = httpx.get(f"{server.url}/metrics")
    assert answer.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def requests_total(samples: Samples) -> float:
    return sum(v for (name, _), v in samples.items() if name == "openresponses_requests_total")


def settled(server: Server, before: Samples, answered: int) -> Samples:
    """The samples once `answered` more requests are counted (a stream's request is counted
    as its answer ends, a moment after the client has read its last event)."""
    deadline = time.monotonic() + 5
    while True:
        after = scrape(server)
        if (
            requests_total(after) - requests_total(before) >= answered
            or time.monotonic() > deadline
        ):
            return after
        time.sleep(0.02)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


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


def test_metrics_answer_without_a_key_where_the_api_wants_one(keyed: Server) -> None:
    refused = httpx.get(f"{keyed.base_url}/models")
    answer = httpx.get(f"{keyed.url}/metrics")

    assert refused.status_code == 401
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# TYPE openresponses_requests_total counter" in answer.text.splitlines()


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
