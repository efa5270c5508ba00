"""The server's Prometheus metrics, served at `GET /metrics` (see app.py).

Low in the layers, so that the transports, the turn pipeline and the providers all record
into them. Labels are low-cardinality (operations, providers, models, tool types, outcomes),
never ids or keys. The hot path only calls a labelled child's `inc` or `observe`: each child
is looked up once and kept.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# A `_created` series beside each counter's and histogram's only doubles the scrape:
# Prometheus tells a restart from the counter's fall.
disable_created_metrics()  # type: ignore[no-untyped-call]

UNKNOWN_OPERATION = "unknown"
"""The operation of a request no operation of the spec served (an unknown path, or one
refused before it was routed)."""

MAX_MODELS = 100
"""Models the per-model metrics name; later ones are counted as `other` (the model is the
client's string, and every name would be a series kept for the process's life)."""

_MODEL_SECONDS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0)

REQUESTS = Counter(
    "openresponses_requests",
    "HTTP requests answered, by the spec's operationId and status code.",
    ["operation", "status"],
)
REQUEST_SECONDS = Histogram(
    "openresponses_request_duration_seconds",
    "Time from a request's arrival to the end of its answer (a stream's last event).",
    ["operation"],
)
MODEL_CALL_SECONDS = Histogram(
    "openresponses_model_call_duration_seconds",
    "Time of one upstream model call, to its last event.",
    ["provider", "model"],
    buckets=_MODEL_SECONDS,
)
FIRST_TOKEN_SECONDS = Histogram(
    "openresponses_time_to_first_token_seconds",
    "Time from an upstream model call's start to its first event.",
    ["provider", "model"],
    buckets=_MODEL_SECONDS,
)
INPUT_TOKENS = Counter(
    "openresponses_input_tokens",
    "Input tokens the upstream reported.",
    ["provider", "model"],
)
OUTPUT_TOKENS = Counter(
    "openresponses_output_tokens",
    "Output tokens the upstream reported.",
    ["provider", "model"],
)
TOOL_CALLS = Counter(
    "openresponses_tool_calls",
    "Server-tool calls run, by item type and the status they ended with.",
    ["type", "outcome"],
)
IN_FLIGHT = Gauge(
    "openresponses_responses_in_flight", "Responses between their first event and their last."
)
BACKGROUND = Gauge("openresponses_background_queue_depth", "Background responses not yet finished.")
RATE_LIMITED = Counter(
    "openresponses_rate_limit_refusals",
    "Requests refused with a 429, by the limit they hit.",
    ["limit"],
)

_requests: dict[tuple[str, int], Counter] = {}
_durations: dict[str, Histogram] = {}
_models: dict[tuple[str, str], ModelCall] = {}


def request(operation: str, status: int, seconds: float) -> None:
    """Count an answered request."""
    counter = _requests.get((operation, status))
    if counter is None:
        counter = _requests[operation, status] = REQUESTS.labels(operation, str(status))
    counter.inc()
    histogram = _durations.get(operation)
    if histogram is None:
        histogram = _durations[operation] = REQUEST_SECONDS.labels(operation)
    histogram.observe(seconds)


def tool_call(kind: str, outcome: str) -> None:
    """Count a server-tool call that has ended (rare enough to look its child up each time)."""
    TOOL_CALLS.labels(kind, outcome).inc()


class ModelCall:
    """The children of one provider's model in the per-model metrics."""

    def __init__(self, provider: str, model: str) -> None:
        self.duration = MODEL_CALL_SECONDS.labels(provider, model)
        self.first_token = FIRST_TOKEN_SECONDS.labels(provider, model)
        self.input_tokens = INPUT_TOKENS.labels(provider, model)
        self.output_tokens = OUTPUT_TOKENS.labels(provider, model)


def model_call(provider: str, model: str) -> ModelCall:
    """The children for a call of `model` (`other` once `MAX_MODELS` are named)."""
    found = _models.get((provider, model))
    if found is None:
        if len(_models) >= MAX_MODELS:
            model = "other"
            found = _models.get((provider, model))
        if found is None:
            found = _models[provider, model] = ModelCall(provider, model)
    return found
