"""`POST /responses` with `stream: true`: the wire format, every event's schema, the grammar.

The grammar checks share one streamed text answer per dialect and each reports the rules it
is named after, so a target that breaks one rule fails one check, with the event it broke it at.
"""

from __future__ import annotations

from openresponses.conformance import grammar
from openresponses.conformance.checks.common import OR_SPEC, require_completed, user
from openresponses.conformance.context import OPENAI_EVENT_NAMES, Context, Streamed, listing
from openresponses.conformance.outcomes import fail, require, warn
from openresponses.conformance.registry import OPENRESPONSES_ONLY, check

STREAMING = f"{OR_SPEC} §Streaming"


def text_stream(ctx: Context) -> Streamed:
    return ctx.shared(
        "text-stream", lambda: ctx.stream(ctx.body(input=[user("Count from 1 to 5.")]))
    )


def _rules(ctx: Context, *rules: str) -> str:
    streamed = text_stream(ctx)
    broken = streamed.grammar.by_rule(*rules)
    require(not broken, listing([str(v) for v in broken]))
    return f"{len(streamed.events)} events"


@check("stream.basic", "A streamed text response completes", STREAMING)
def basic(ctx: Context) -> str:
    streamed = text_stream(ctx)
    require(streamed.events, "no events arrived")
    require_completed(streamed.response)
    return f"{len(streamed.events)} events"


@check(
    "stream.wire_format",
    "SSE framing: Content-Type, event: = type, [DONE]",
    f"{OR_SPEC} §HTTP Responses",
)
def wire_format(ctx: Context) -> str:
    streamed = text_stream(ctx)
    require(not streamed.wire_errors, listing(streamed.wire_errors))
    note = ""
    if any(frame.has_id for frame in streamed.stream.frames):
        note = "; note: id: lines present (the spec says servers SHOULD NOT use them)"
    return f"{len(streamed.stream.frames)} frames{note}"


@check("stream.event_schemas", "Every event matches its schema", STREAMING)
def event_schemas(ctx: Context) -> str:
    streamed = text_stream(ctx)
    require(not streamed.schema_errors, listing(streamed.schema_errors))
    return f"{len(set(streamed.types()))} event types valid"


@check(
    "stream.event_names",
    "Events carry the spec's names (advisory)",
    STREAMING,
    dialects=OPENRESPONSES_ONLY,
)
def event_names(ctx: Context) -> str:
    found = sorted({kind for kind in text_stream(ctx).types() if kind in OPENAI_EVENT_NAMES})
    if found:
        spec = ", ".join(OPENAI_EVENT_NAMES[kind] for kind in found)
        warn(
            f"OpenAI's event names {', '.join(found)} where the spec names {spec}: an Open "
            "Responses client skips them and shows the text only when the item is done"
        )
    return "spec names only"


@check("stream.lifecycle", "created, in_progress, …, one terminal event", STREAMING)
def lifecycle(ctx: Context) -> str:
    return _rules(ctx, grammar.LIFECYCLE)


@check("stream.sequence_numbers", "sequence_number strictly increases", STREAMING)
def sequence_numbers(ctx: Context) -> str:
    return _rules(ctx, grammar.SEQUENCE)


@check(
    "stream.item_lifecycle",
    "Items open and close in order, ids consistent",
    f"{OR_SPEC} §Items are streamable",
)
def item_lifecycle(ctx: Context) -> str:
    return _rules(ctx, grammar.ITEMS)


@check(
    "stream.content_parts",
    "Content parts nest inside items; deltas inside parts",
    f"{OR_SPEC} §Items are streamable",
)
def content_parts(ctx: Context) -> str:
    return _rules(ctx, grammar.PARTS)


@check("stream.delta_assembly", "Deltas concatenate to the .done text", STREAMING)
def delta_assembly(ctx: Context) -> str:
    return _rules(ctx, grammar.TEXT)


@check("stream.final_output", "The terminal response's output equals the streamed items", STREAMING)
def final_output(ctx: Context) -> str:
    return _rules(ctx, grammar.OUTPUT)


@check(
    "stream.terminal_response_schema", "The terminal response is a full response object", STREAMING
)
def terminal_response_schema(ctx: Context) -> None:
    response = text_stream(ctx).response
    problems = ctx.schemas.errors(response, ctx.response_schema)
    require(not problems, f"{ctx.response_schema} violated: {listing(problems)}")


@check("stream.matches_non_stream", "Streaming and non-streaming give the same shape", STREAMING)
def matches_non_stream(ctx: Context) -> None:
    streamed = text_stream(ctx).response
    plain = ctx.create(ctx.body(input=[user("Count from 1 to 5.")]))
    streamed_keys, plain_keys = set(streamed), set(plain)
    if streamed_keys != plain_keys:
        fail(
            f"keys only when streaming: {sorted(streamed_keys - plain_keys)}; "
            f"only without: {sorted(plain_keys - streamed_keys)}"
        )
    for key in ("object", "status"):
        require(
            streamed.get(key) == plain.get(key),
            f"$.{key}: {streamed.get(key)!r} streamed, {plain.get(key)!r} not",
        )
    kinds = [item.get("type") for item in streamed.get("output", [])]
    plain_kinds = [item.get("type") for item in plain.get("output", [])]
    require(kinds == plain_kinds, f"output item types {kinds} streamed, {plain_kinds} not")
