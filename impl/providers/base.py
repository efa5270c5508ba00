"""The provider protocol: how the engine talks to a model, whatever the wire format.

The engine hands a provider one `ModelRequest` (the whole conversation, already expanded
from `previous_response_id`) and reads back a stream of small `ModelEvent`s. Providers
translate both directions and nothing else; building Responses items, sequence numbers and
storage all happen once, in the engine, for every provider alike.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from openresponses import metrics
from openresponses.errors import APIError, ErrorKind
from openresponses.generated import openai_models as m

FinishReason = Literal[
    "stop", "length", "tool_calls", "content_filter", "schema_mismatch", "max_tool_calls"
]
"""Why a model stopped; `schema_mismatch` (structured output that never validated) and
`max_tool_calls` (the server-tool loop hit the request's limit) are ours."""


@dataclass(frozen=True)
class ModelRequest:
    """One sampling call, in provider-neutral terms (field meanings follow Responses)."""

    model: str  # the provider's own model name, without any `provider@` prefix
    # The conversation: ItemResource models, oldest first. File references are inline
    # (core.attachments): no `file_id`, and a `file_url` only for providers with `file_urls`.
    items: list[Any]
    instructions: str | None = None
    tools: list[m.FunctionTool] = field(default_factory=list)
    tool_choice: str | dict[str, Any] | None = None  # already in Responses form
    parallel_tool_calls: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    text_format: dict[str, Any] | None = None  # Responses `text.format`
    user: str | None = None
    # Optional hints: prompt_cache_key, safety_identifier, prompt_cache_retention,
    # reasoning_effort (reasoning.effort), reasoning_summary (reasoning.summary), verbosity
    # (text.verbosity). Adapters send the ones their API knows.
    hints: dict[str, str] = field(default_factory=dict)
    stream: bool = True  # whether to ask the upstream for a stream


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class RefusalDelta:
    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True)
class ReasoningSummaryDelta:
    """A piece of the reasoning's summary; `part` numbers the summary's parts from 0."""

    text: str
    part: int = 0


@dataclass(frozen=True)
class ReasoningSignature:
    """The provider's opaque proof of the reasoning so far (Anthropic's thinking signature),
    kept as the reasoning item's `encrypted_content` and sent back on later turns."""

    signature: str


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of the `index`-th tool call; `call_id` and `name` arrive with its first piece."""

    index: int
    arguments: str
    call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class UsageReport:
    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class Finish:
    reason: FinishReason


@dataclass(frozen=True)
class Answered:
    """Who answers, as the upstream says once it starts: the id of its response and the model
    that writes it (for traces; the response itself keeps the model the client asked for)."""

    id: str | None
    model: str | None


ModelEvent = (
    TextDelta
    | RefusalDelta
    | ReasoningDelta
    | ReasoningSignature
    | ReasoningSummaryDelta
    | ToolCallDelta
    | UsageReport
    | Finish
    | Answered
)


class StreamState:
    """What one upstream stream has said so far. Who answers (`answered`, set by the
    adapter's `_events` when the upstream says it) is held back until the first event it
    yields, since the first event decides whether a failure is still an HTTP error (see
    core.turn)."""

    def __init__(self) -> None:
        self.answered: Answered | None = None

    def events(self, event: dict[str, Any]) -> list[ModelEvent]:
        """The events one upstream event says, who answers first among the first of them."""
        found = self._events(event)
        if found and self.answered is not None:
            found, self.answered = [self.answered, *found], None
        return found

    def _events(self, event: dict[str, Any]) -> list[ModelEvent]:
        raise NotImplementedError


class ProviderError(APIError):
    """The upstream failed: an HTTP error, a broken stream, or an answer we cannot read."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 502,
        code: str | None = "upstream_error",
        kind: ErrorKind = ErrorKind.MODEL,
        headers: dict[str, str] | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(kind, message, code=code, status=status, headers=headers, param=param)


def refuse_summary(request: ModelRequest, provider: str, api: str) -> None:
    """Raises for a reasoning summary the provider cannot write ("auto" leaves it to the
    model, which is always possible)."""
    summary = request.hints.get("reasoning_summary")
    if summary not in (None, "auto"):
        raise unsupported(f"reasoning.summary '{summary}'", provider, api, "reasoning.summary")


def unsupported(what: str, provider: str, api: str, param: str | None = None) -> ProviderError:
    """The 400 for input a provider's API cannot take: named, never silently dropped."""
    return ProviderError(
        f"{what} is not supported by provider '{provider}' ({api}).",
        status=400,
        code="unsupported_value",
        kind=ErrorKind.INVALID_REQUEST,
        param=param,
    )


@dataclass(frozen=True)
class Passthrough:
    """An upstream HTTP answer relayed as-is (chat completions forwarding)."""

    status: int
    content_type: str
    body: AsyncIterator[bytes]


class Provider(Protocol):
    """One configured upstream. Implementations live one per file in this package."""

    name: str
    structured_output: bool
    """Whether the upstream honours `text.format` json_schema / json_object itself; when
    not, the server instructs and validates (core.structured)."""
    file_urls: bool
    """Whether the upstream fetches an `input_file.file_url` itself; when not, the server
    fetches it and sends its bytes (core.attachments)."""

    def generate(
        self, request: ModelRequest, *, api_key: str | None
    ) -> AsyncGenerator[ModelEvent, None]:
        """Sample the model; raises ProviderError before or while yielding."""

    async def chat_completions(self, body: dict[str, Any], *, api_key: str | None) -> Passthrough:
        """Forward an OpenAI chat-completions request body (model already rewritten)."""

    async def embeddings(self, body: dict[str, Any], *, api_key: str | None) -> dict[str, Any]:
        """Forward an OpenAI embeddings request body (model already rewritten); the answer."""

    async def list_models(self, *, api_key: str | None) -> list[str]:
        """The provider's model ids, without our `provider@` prefix."""


async def metered(
    provider: Provider, request: ModelRequest, *, api_key: str | None
) -> AsyncGenerator[ModelEvent, None]:
    """`provider.generate`, timed (to its first event and to its last) and its reported
    usage counted, for `GET /metrics`."""
    call = metrics.model_call(provider.name, request.model)
    events = provider.generate(request, api_key=api_key)
    started = time.perf_counter()
    first = True
    try:
        async for event in events:
            if first:
                call.first_token.observe(time.perf_counter() - started)
                first = False
            if isinstance(event, UsageReport):
                call.input_tokens.inc(event.input_tokens)
                call.output_tokens.inc(event.output_tokens)
            yield event
    finally:
        call.duration.observe(time.perf_counter() - started)
        await events.aclose()  # a caller that stops early stops the upstream call too
