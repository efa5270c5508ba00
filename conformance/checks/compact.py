"""`POST /responses/compact`: a conversation compacted into an input window."""

from __future__ import annotations

from typing import Any

from openresponses.conformance.checks.common import OR_SPEC, require_text_answer, user
from openresponses.conformance.context import Context
from openresponses.conformance.outcomes import require
from openresponses.conformance.registry import check
from openresponses.conformance.schemas import OPENRESPONSES

COMPACT = f"{OR_SPEC} §WebSocket Compaction; CompactResource"

HISTORY = [
    user("I am planning a trip to Lisbon in May."),
    {"type": "message", "role": "assistant", "content": "Lisbon in May is lovely: mild and sunny."},
    user("I like seafood and old trams."),
]


def _compacted(ctx: Context) -> dict[str, Any]:
    def make() -> dict[str, Any]:
        exchange = ctx.client.send("POST", "/responses/compact", json_body=ctx.body(input=HISTORY))
        # Both dialects are held to the Open Responses schema: OpenAI's spec as trimmed in
        # spec/openapi.yaml does not define the endpoint.
        return ctx.json_body(exchange, "CompactResource", schemas=OPENRESPONSES)

    return ctx.shared("compacted", make)


@check("compact.basic", "Compaction returns response.compaction with a compaction item", COMPACT)
def basic(ctx: Context) -> str:
    body = _compacted(ctx)
    require(body.get("object") == "response.compaction", f"$.object is {body.get('object')!r}")
    output = body.get("output")
    assert isinstance(output, list)
    kinds = [item.get("type") for item in output]
    require("compaction" in kinds, f"the output holds no compaction item: {kinds}")
    return f"output {kinds}"


@check("compact.missing_model", "Compaction without a model → 400", COMPACT)
def missing_model(ctx: Context) -> None:
    exchange = ctx.client.send("POST", "/responses/compact", json_body={"input": HISTORY})
    ctx.expect_error(exchange, 400)


@check("compact.round_trip", "The compacted window works as the next input", COMPACT)
def round_trip(ctx: Context) -> None:
    window = _compacted(ctx).get("output")
    assert isinstance(window, list)
    follow_up = ctx.create(ctx.body(input=[*window, user("Suggest one thing to do there.")]))
    require_text_answer(follow_up)
