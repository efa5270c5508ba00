"""Stored state: previous_response_id, retrieve, input_items, delete, store: false."""

from __future__ import annotations

from typing import Any

from openresponses.conformance.checks.common import (
    OPENAI_REF,
    OR_SPEC,
    require_text_answer,
    user,
)
from openresponses.conformance.context import Context
from openresponses.conformance.grammar import first_difference
from openresponses.conformance.outcomes import fail, require
from openresponses.conformance.registry import check
from openresponses.conformance.wire import Dialect

PREVIOUS = f"{OR_SPEC} §previous_response_id"


def _stored(ctx: Context) -> dict[str, Any]:
    """One stored response with two input messages, shared by the store checks."""
    body = ctx.body(input=[user("Remember the word: lighthouse."), user("Say OK.")], store=True)
    return ctx.shared("stored", lambda: ctx.create(body))


@check("state.previous_response_id", "Multi-turn with previous_response_id", PREVIOUS)
def previous_response_id(ctx: Context) -> str:
    first = ctx.create(ctx.body(input="My name is Alice. Say hello to me."))
    second = ctx.create(ctx.body(input="What is my name?", previous_response_id=first["id"]))
    require(
        second.get("previous_response_id") == first["id"],
        f"$.previous_response_id is {second.get('previous_response_id')!r}, not {first['id']!r}",
    )
    return f"answered {require_text_answer(second)[:60]!r}"


@check("state.retrieve", "GET /responses/{id} returns the stored response", OPENAI_REF)
def retrieve(ctx: Context) -> None:
    created = _stored(ctx)
    fetched = ctx.json_body(ctx.retrieve(created["id"]))
    for key in ("id", "object", "status", "model", "output", "created_at"):
        if fetched.get(key) != created.get(key):
            fail(f"retrieved {first_difference(created.get(key), fetched.get(key), '$.' + key)}")


@check("state.retrieve_streamed", "A streamed response is stored as it ended", OPENAI_REF)
def retrieve_streamed(ctx: Context) -> None:
    streamed = ctx.stream(ctx.body(input=[user("Say hello.")], store=True)).response
    fetched = ctx.json_body(ctx.retrieve(streamed["id"]))
    for key in ("id", "status", "output"):
        if fetched.get(key) != streamed.get(key):
            fail(f"retrieved {first_difference(streamed.get(key), fetched.get(key), '$.' + key)}")


def _item_list(ctx: Context, response_id: str, **params: Any) -> dict[str, Any]:
    """`GET …/input_items`, checked as OpenAI's `ResponseItemList` (the Open Responses spec
    has no such endpoint; its items are checked as the spec's `ItemField`s)."""
    exchange = ctx.client.send("GET", f"/responses/{response_id}/input_items", params=params)
    require(exchange.status == 200, f"expected HTTP 200, got {exchange.describe()}")
    body = exchange.json()
    require(isinstance(body, dict), "the item list is not a JSON object")
    require(body.get("object") == "list", f"$.object is {body.get('object')!r}, not 'list'")
    require(isinstance(body.get("data"), list), "$.data is not a list")
    require(isinstance(body.get("has_more"), bool), "$.has_more is not a boolean")
    schema = "ItemField" if ctx.dialect is Dialect.OPENRESPONSES else "ItemResource"
    for index, item in enumerate(body["data"]):
        problems = ctx.schemas.errors(item, schema)
        require(not problems, f"$.data[{index}]: {'; '.join(problems[:3])}")
    listed: dict[str, Any] = body
    return listed


def _texts(items: list[dict[str, Any]]) -> list[str]:
    texts = []
    for item in items:
        content = item.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.append("".join(str(part.get("text", "")) for part in content))
    return texts


@check("state.input_items", "input_items lists the inputs, paginated", OPENAI_REF)
def input_items(ctx: Context) -> str:
    created = _stored(ctx)
    whole = _item_list(ctx, created["id"], order="asc")
    texts = _texts(whole["data"])
    require(
        texts == ["Remember the word: lighthouse.", "Say OK."],
        f"input items in ascending order hold {texts}",
    )
    page = _item_list(ctx, created["id"], order="asc", limit=1)
    require(
        len(page["data"]) == 1 and page["has_more"] is True,
        f"limit=1 gave {len(page['data'])} items, has_more {page['has_more']}",
    )
    rest = _item_list(ctx, created["id"], order="asc", after=page["data"][0]["id"])
    require(_texts(rest["data"]) == ["Say OK."], f"after the first item: {_texts(rest['data'])}")
    descending = _texts(_item_list(ctx, created["id"], order="desc")["data"])
    require(descending == texts[::-1], f"order=desc gave {descending}")
    return "2 items, limit/after/order honoured"


@check("state.delete", "DELETE /responses/{id}, then it is gone", OPENAI_REF)
def delete(ctx: Context) -> None:
    created = ctx.create(ctx.body(input="Say hello.", store=True))
    exchange = ctx.client.send("DELETE", f"/responses/{created['id']}")
    require(exchange.status == 200, f"expected HTTP 200, got {exchange.describe()}")
    body = exchange.json()
    expected = {"id": created["id"], "object": "response", "deleted": True}
    require(body == expected, f"the delete answer is {body!r}, not {expected!r}")
    ctx.expect_error(ctx.retrieve(created["id"]), 404)
    ctx.expect_error(ctx.client.send("DELETE", f"/responses/{created['id']}"), 404)


@check("state.store_false", "store: false is not retrievable", OPENAI_REF)
def store_false(ctx: Context) -> None:
    created = ctx.create(ctx.body(input="Say hello.", store=False))
    require_text_answer(created)
    ctx.expect_error(ctx.retrieve(created["id"]), 404)
