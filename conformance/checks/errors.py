"""Bad requests: the right status, the error shape, the dialect's error type."""

from __future__ import annotations

from dataclasses import replace

from openresponses.conformance.checks.common import OR_SPEC, user
from openresponses.conformance.context import ERROR_TYPES, Context
from openresponses.conformance.outcomes import skip, warn
from openresponses.conformance.registry import OPENRESPONSES_ONLY, check
from openresponses.conformance.wire import Client, Dialect

ERRORS = f"{OR_SPEC} §Errors"


@check("errors.missing_model", "Missing model → 400 invalid request", ERRORS)
def missing_model(ctx: Context) -> str:
    error = ctx.expect_error(ctx.client.send("POST", "/responses", json_body={"input": "Hi"}), 400)
    return f"{error['type']}: {error['message'][:60]}"


@check("errors.malformed_json", "Malformed JSON → 400", ERRORS)
def malformed_json(ctx: Context) -> None:
    ctx.expect_error(
        ctx.client.send("POST", "/responses", content=b'{"model": "x", "input": '), 400
    )


@check("errors.wrong_type", "A field of the wrong type → 400", ERRORS)
def wrong_type(ctx: Context) -> None:
    body = ctx.body(input="Hi", temperature="very hot")
    ctx.expect_error(ctx.client.send("POST", "/responses", json_body=body), 400)


@check("errors.unknown_item_type", "An unknown input item type → 400", ERRORS)
def unknown_item_type(ctx: Context) -> None:
    body = ctx.body(input=[{"type": "no_such_item", "content": "Hi"}])
    ctx.expect_error(ctx.client.send("POST", "/responses", json_body=body), 400)


@check("errors.unknown_response", "Unknown response id → 404", ERRORS)
def unknown_response(ctx: Context) -> None:
    ctx.expect_error(ctx.retrieve("resp_conformance_does_not_exist"), 404)


@check(
    "errors.unknown_previous_response",
    "Unknown previous_response_id → 400 or 404",
    f"{OR_SPEC} §previous_response_id",
)
def unknown_previous_response(ctx: Context) -> str:
    body = ctx.body(input=[user("Hi")], previous_response_id="resp_conformance_does_not_exist")
    error = ctx.expect_error(ctx.client.send("POST", "/responses", json_body=body), 400, 404)
    return f"code {error['code']!r}"


@check("errors.authentication", "A wrong API key → 401", f"{OR_SPEC} §HTTP Requests")
def authentication(ctx: Context) -> None:
    if not ctx.target.api_key:
        skip("no --api-key given, so the target's authentication cannot be told apart")
    target = replace(
        ctx.target,
        api_key="sk-conformance-wrong-key",
        headers={k: v for k, v in ctx.target.headers.items() if k.lower() != "authorization"},
    )
    client = Client(target, ctx.dialect)
    try:
        exchange = client.send("POST", "/responses", json_body=ctx.body(input="Hi"))
    finally:
        client.close()
    if exchange.status == 200:
        skip("the target accepted a wrong key (it may forward keys to the model provider)")
    ctx.expect_error(exchange, 401)


@check(
    "errors.not_a_stream_on_error", "A bad streaming request is a JSON error, not a stream", ERRORS
)
def not_a_stream_on_error(ctx: Context) -> None:
    exchange = ctx.client.send("POST", "/responses", json_body={"input": "Hi", "stream": True})
    ctx.expect_error(exchange, 400)


@check(
    "errors.type_names",
    "Error types are the spec's names (advisory)",
    f"{ERRORS} (Error Types)",
    dialects=OPENRESPONSES_ONLY,
)
def type_names(ctx: Context) -> str:
    bad_request = ctx.client.send("POST", "/responses", json_body={"input": "Hi"})
    missing = ctx.retrieve("resp_conformance_does_not_exist")
    seen = {
        400: ctx.expect_error(bad_request, 400)["type"],
        404: ctx.expect_error(missing, 404)["type"],
    }
    spec = ERROR_TYPES[Dialect.OPENRESPONSES]
    openai = {status: kind for status, kind in seen.items() if kind not in spec[status]}
    if openai:
        warn(
            "OpenAI's spelling "
            + ", ".join(f"{kind!r} for HTTP {status}" for status, kind in openai.items())
            + " where the spec's table names "
            + ", ".join(f"{next(iter(spec[status]))!r}" for status in openai)
            + ": allowed by the spec's schema, but a client that follows the table misses it"
        )
    return ", ".join(f"HTTP {status}: {kind}" for status, kind in seen.items())
