"""What every handler shares: reading a body into a generated model, picking the dialect,
finding the server's services, and writing JSON.

Request bodies are validated here with the generated pydantic models rather than by
connexion's jsonschema validator: same spec, an order of magnitude faster, and its error
locations name the exact parameter (`input[0].content`) for the OpenAI error's `param`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar, get_args

import orjson
from connexion import request
from connexion.lifecycle import ConnexionRequest
from pydantic import BaseModel, RootModel, ValidationError
from starlette.responses import Response

from openresponses.api import auth
from openresponses.api.dialects import select
from openresponses.config import Dialect
from openresponses.core.caller import Caller
from openresponses.core.services import Services
from openresponses.errors import APIError, ErrorKind, invalid
from openresponses.generated.operations import OPERATIONS
from openresponses.items import ITEM_MODELS, new_id

ModelT = TypeVar("ModelT", bound=BaseModel)
T = TypeVar("T")

MAX_BODY_BYTES = 64 * 1024 * 1024


def current() -> ConnexionRequest:
    """This request, resolved once: every access through connexion's context proxy costs."""
    found: ConnexionRequest = request._get_current_object()
    return found


def services(req: ConnexionRequest) -> Services:
    found: Services = req.state.services
    return found


def caller(req: ConnexionRequest) -> Caller:
    return auth.caller(req.headers, auth.request_key(req.scope))


def project(req: ConnexionRequest) -> str:
    """The project whose objects the request sees."""
    return caller(req).project


def dialect(req: ConnexionRequest) -> Dialect:
    return select(req.headers, services(req).settings.dialect)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data), status_code=status, media_type="application/json", headers=headers
    )


async def unless_gone(req: ConnexionRequest, work: Awaitable[T]) -> T:
    """`work`'s result; or, when the client disconnects first, `work` cancelled and a 499
    nobody reads. Nothing else notices a client that leaves before the first byte of the
    answer, and the model call would hold its upstream connection until it ended or timed
    out. A server that stops cancels `work` too (a 503, see core.background's Runs.stop)."""
    task = asyncio.ensure_future(work)
    runs = services(req).runs
    runs.waiting.add(task)
    # The watcher cancels the work when the client leaves, and the work is awaited itself:
    # cheaper than asyncio.wait on both (a future and callbacks on each, every request).
    watcher = asyncio.ensure_future(_disconnect(req))
    watcher.add_done_callback(lambda _: task.cancel())
    try:
        return await task
    except asyncio.CancelledError:
        handler = asyncio.current_task()
        if handler is not None and handler.cancelling():
            raise  # the request's own task is cancelled, not only the work
    finally:
        runs.waiting.discard(task)
        watcher.cancel()
    if runs.stopping:
        raise _shutting_down()
    raise APIError(
        ErrorKind.INVALID_REQUEST,
        "The client closed the request.",
        code="client_disconnected",
        status=499,
    )


def _shutting_down() -> APIError:
    return APIError(ErrorKind.SERVER, "The server is shutting down.", status=503)


@contextlib.contextmanager
def stopped_with_server(req: ConnexionRequest) -> Iterator[None]:
    """Makes the current task (a relayed stream's) one that a stopping server cancels after
    its grace period, as it does the requests `unless_gone` waits on; that cancel comes out
    as the same 503 error, for the stream to tell its client."""
    task = asyncio.current_task()
    assert task is not None  # a response is always produced in a task
    runs = services(req).runs
    runs.waiting.add(task)
    try:
        yield
    except asyncio.CancelledError:
        if not runs.stopping:
            raise
        task.uncancel()  # the cancel was the server's, and the error below handles it
        raise _shutting_down() from None
    finally:
        runs.waiting.discard(task)


async def until(work: asyncio.Future[Any], event: Coroutine[Any, Any, None]) -> None:
    """Waits for `work` to end; cancels it (and awaits its cleanup) if `event` returns
    first."""
    watcher = asyncio.ensure_future(event)
    try:
        await asyncio.wait((work, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not work.done():
            work.cancel()
            await asyncio.wait((work,))


async def _disconnect(req: ConnexionRequest) -> None:
    """Returns once the client has disconnected (the body has been read before)."""
    while (await req.receive())["type"] != "http.disconnect":
        pass


def check_limit(limit: int, most: int = 100) -> None:
    """A list endpoint's page size, as OpenAI bounds it (100 for most lists)."""
    if not 1 <= limit <= most:
        raise invalid(f"limit must be between 1 and {most}.", param="limit", code="invalid_value")


def _too_large() -> APIError:
    return APIError(
        ErrorKind.TOO_LARGE,
        f"The request body is larger than {MAX_BODY_BYTES} bytes.",
        code="request_too_large",
    )


def _param(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as the parameter path OpenAI reports (`input[0].role`).

    Union members appear in locations under their class or tag names (`EasyInputMessage`,
    `list[...]`, `str`); those are not parameters, so they are dropped.
    """
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.isidentifier() and part == part.lower() and part not in _TYPE_TAGS:
            path += f".{part}" if path else part
    return path


_TYPE_TAGS = {"str", "int", "float", "bool", "dict", "list", "none"}


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}
"""pydantic's type errors, as the JSON type each one wanted."""


_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),  # before int: a bool is an int to Python
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (list, "an array"),
    (dict, "an object"),
)


def _json_type(value: Any) -> str:
    """The JSON type of a value the client sent, as OpenAI's messages name it."""
    if value is None:
        return "null"
    for kind, name in _JSON_TYPES:
        if isinstance(value, kind):
            return name
    return "a value"


def _type_error(errors: list[Any], param: str) -> APIError | None:
    """OpenAI's "Invalid type" error when the value's JSON type fits none of the parameter's
    shapes: a union of a string and an enum (`model`) reports the enum's list of values
    beside the string's type error, and the type is what the client got wrong."""
    if not all(e["type"] in _EXPECTED or e["type"] == "literal_error" for e in errors):
        return None
    if isinstance(errors[0]["input"], str) and any(e["type"] == "literal_error" for e in errors):
        return None  # a string that is not one of the enum's: the value is wrong, not its type
    if not any(e["type"] in _EXPECTED for e in errors):
        return None  # an enum alone: its message lists the values, which says more
    # The spec's enums are of strings.
    wanted = [_EXPECTED.get(e["type"], "a string") for e in errors]
    expected = " or ".join(dict.fromkeys(wanted))
    return invalid(
        f"Invalid type for '{param}': expected {expected}, "
        f"but got {_json_type(errors[0]['input'])} instead.",
        param=param,
        code="invalid_type",
    )


def _meant(errors: list[Any]) -> list[Any]:
    """The errors of the union members the client may have meant: not those whose `type`
    differs from the one sent (a shell tool's `environment` says nothing about a computer
    tool's display size). All of them when no member's `type` matched."""
    others = [
        e["loc"][:-1] for e in errors if e["loc"][-1:] == ("type",) and e["type"] == "literal_error"
    ]
    meant = [e for e in errors if not any(e["loc"][: len(o)] == o for o in others if o)]
    return meant or errors


def _validation_error(exc: ValidationError) -> APIError:
    errors = _meant(exc.errors(include_url=False))
    # A union reports one error per member; the member that got furthest is the one the
    # client meant, so the deepest location is the most telling.
    depth = max(len(e["loc"]) for e in errors)
    deepest = [e for e in errors if len(e["loc"]) == depth]
    first = deepest[0]
    param = _param(first["loc"])
    if first["type"] == "missing":
        return invalid(
            f"Missing required parameter: '{param}'.",
            param=param,
            code="missing_required_parameter",
        )
    if (wrong_type := _type_error(deepest, param)) is not None:
        return wrong_type
    # A string where an enum or an object may go: the enum's values are what the client needs.
    first = next((e for e in deepest if e["type"] == "literal_error"), first)
    return invalid(
        f"Invalid value for '{param}': {first['msg']}.",
        param=param,
        code="invalid_value" if first["type"] != "model_type" else "invalid_type",
    )


_PART_DEFAULTS: dict[str, dict[str, Any]] = {
    "input_image": {"detail": "auto"},
    "output_text": {"annotations": [], "logprobs": []},
}
"""Content-part fields OpenAI's spec marks required that the API (and the Open Responses
compliance suite) let clients omit in input, with the values the API assumes. Filled into the
JSON rather than made model defaults (codegen's OMITTABLE): listed items must show them, and
items render with `exclude_unset`, which leaves a model's defaults out."""


def _output_parts(content: Any) -> bool:
    return isinstance(content, list) and any(
        isinstance(part, dict) and part.get("type") in ("output_text", "refusal")
        for part in content
    )


def item_defaults(items: Any) -> None:
    """Fills, in a list of input items as JSON, what the API lets clients omit but OpenAI's
    spec marks required: the content-part fields above, and the `id` and `status` of an
    assistant message given as output parts (the Open Responses spec's
    AssistantMessageItemParam, which OpenAI's spec can only read as an OutputMessage)."""
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        content = item.get("content")
        if item.get("role") == "assistant" and _output_parts(content):
            item.setdefault("status", "completed")
            if item.get("id") is None:
                item["id"] = new_id("message")
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict):
                for key, value in _PART_DEFAULTS.get(str(part.get("type")), {}).items():
                    part.setdefault(key, value)


def body_model(operation_id: str) -> type[BaseModel]:
    """The generated model of `operation_id`'s request body, as the operations table has it."""
    model = OPERATIONS[operation_id].body
    if model is None:
        raise LookupError(f"{operation_id} takes no request body")
    return model


def operation_id(req: ConnexionRequest) -> str:
    """The operation connexion routed this request to."""
    routing: dict[str, str] = req.scope["extensions"]["connexion_routing"]
    return routing["operation_id"]


async def read_body(
    req: ConnexionRequest, fill: Callable[[dict[str, Any]], None] | None = None
) -> BaseModel:
    """The request body as its operation's model (`body_model`), or a 400/413 that says
    exactly what is wrong. Handlers narrow the model with `isinstance` (mypy cannot read
    the table).

    `fill` may add defaults the API applies but the spec marks as required.
    """
    declared = req.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:  # refuse before reading it
        raise _too_large()
    raw = await req.body()
    if len(raw) > MAX_BODY_BYTES:
        raise _too_large()
    try:
        # No body at all is no fields at all: operations whose body is optional (creating a
        # conversation) take it so, and the others say which field is missing.
        data = load_json(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid(
            "We could not parse the JSON body of your request. Send valid JSON (UTF-8) with "
            "'Content-Type: application/json'.",
            code="invalid_json",
        ) from exc
    return parse_body(data, body_model(operation_id(req)), fill)


MAX_JSON_DEPTH = 100
"""How deeply a request body may nest arrays and objects (a JSON schema in a function tool's
`parameters`, `text.format.schema` or chat's `response_format` about 48 levels of nested
`properties`). orjson and pydantic give up near 255 levels, and what the server writes (the
response, its events, the upstream request) nests a client's values a few levels deeper:
a body must be refused before any of that fails."""


def load_json(raw: bytes | str) -> Any:
    """A request body or WebSocket message parsed; a 400 when it nests too deeply.
    Invalid JSON raises orjson's JSONDecodeError (a ValueError)."""
    data = orjson.loads(raw)
    # Each level opens a bracket: a body with fewer brackets than the limit, which is
    # almost every body, needs no walk.
    brackets = (
        raw.count("{") + raw.count("[")
        if isinstance(raw, str)
        else (raw.count(b"{") + raw.count(b"["))
    )
    if brackets > MAX_JSON_DEPTH:
        _check_depth(data)
    return data


def _check_depth(data: Any) -> None:
    top = data.items() if isinstance(data, dict) else [(None, data)]
    for key, value in top:
        if _deeper_than(value, MAX_JSON_DEPTH - 1 if key else MAX_JSON_DEPTH):
            raise invalid(
                f"The request body nests arrays and objects more than {MAX_JSON_DEPTH} levels "
                "deep" + (f" (in '{key}')." if key else "."),
                param=key,
                code="nesting_too_deep",
            )


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels in `value` (iteratively:
    a recursive walk would itself fail on the documents it looks for)."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


METADATA_PAIRS, METADATA_KEY_CHARS, METADATA_VALUE_CHARS = 16, 64, 512
"""OpenAI's limits on `metadata`, which its spec states only in prose."""


def check_metadata(metadata: dict[str, Any]) -> None:
    """A 400 in OpenAI's words for metadata over its limits (every object that has it)."""
    if len(metadata) > METADATA_PAIRS:
        raise invalid(
            f"Invalid 'metadata': too many properties. Expected an object with at most "
            f"{METADATA_PAIRS} properties, but got an object with {len(metadata)} properties "
            "instead.",
            param="metadata",
            code="object_above_max_properties",
        )
    for key, value in metadata.items():
        if len(key) > METADATA_KEY_CHARS:
            raise _too_long(f"metadata.{key}", "key", METADATA_KEY_CHARS, len(key))
        if isinstance(value, str) and len(value) > METADATA_VALUE_CHARS:
            raise _too_long(f"metadata.{key}", "string", METADATA_VALUE_CHARS, len(value))


def _too_long(param: str, what: str, limit: int, length: int) -> APIError:
    return invalid(
        f"Invalid '{param}': {what} too long. Expected a {what} with maximum length {limit}, "
        f"but got a {what} with length {length} instead.",
        param=param,
        code="string_above_max_length",
    )


@functools.cache
def _names(model: type[BaseModel]) -> dict[str, str]:
    """The keys an object of `model` may have, and the attribute each is read into
    (computed once per model: CreateResponse has ~40 fields)."""
    return {field.alias or name: name for name, field in model.model_fields.items()}


_ITEM_LISTS = ("input", "items")
"""Body keys holding input items, whose keys are checked as the body's are."""


@functools.cache
def _listed_keys() -> dict[str, frozenset[str]]:
    """The keys of each item type as the API lists items (a response's input items, a
    conversation's, a compacted window): clients send listed items back as input, keys and
    all (an input message's `id`), and OpenAI takes them."""
    keys: dict[str, set[str]] = {}
    for model in ITEM_MODELS:
        for kind in get_args(model.model_fields["type"].annotation):
            keys.setdefault(kind, set()).update(_names(model))
    return {kind: frozenset(names) for kind, names in keys.items()}


def _unknown_item_key(raw: list[Any], items: Any, name: str) -> str | None:
    """The first key of the input items in `raw` that their validated models do not know
    (see `_unknown_key`), as a parameter path."""
    if isinstance(items, RootModel):  # a list wrapped for its length limit
        items = items.root
    for index, (entry, item) in enumerate(zip(raw, items or [], strict=False)):
        if type(entry) is dict:
            listed = _listed_keys().get(entry.get("type", "message"), frozenset())
            found = _unknown_key(entry, item, f"{name}[{index}]", listed)
            if found is not None:
                return found
    return None


@functools.cache
def _checked(cls: type) -> dict[str, str] | None:
    """The keys of a model whose objects' keys are checked, or None: not a model, or one that
    allows extra keys."""
    if not issubclass(cls, BaseModel) or cls.model_config.get("extra") == "allow":
        return None
    return _names(cls)


@functools.cache
def _wrapper(cls: type) -> bool:
    return issubclass(cls, RootModel)


def _unknown_key(
    raw: Any, value: Any, path: str, listed: frozenset[str] = frozenset()
) -> str | None:
    """The first key in `raw` that the model validated from it has no field for (nor
    `listed` does), as a parameter path (`input[0].content[1].x`); pydantic ignores such
    keys, OpenAI refuses them. (`type() is` rather than isinstance: this runs on every
    request, and the JSON parser makes exact dicts and lists.)"""
    kind: type = type(value)
    if _wrapper(kind):
        return _unknown_key(raw, value.root, path, listed)
    if type(raw) is dict:
        names = _checked(kind)
        if names is None:
            return None
        for key, sub in raw.items():
            if key not in names:
                if key in listed:
                    continue
                return f"{path}.{key}"
            if type(sub) is dict or type(sub) is list:
                found = _unknown_key(sub, value.__dict__[names[key]], f"{path}.{key}")
                if found is not None:
                    return found
    elif type(raw) is list and type(value) is list:
        for index, (sub, item) in enumerate(zip(raw, value, strict=False)):
            if type(sub) is dict or type(sub) is list:
                found = _unknown_key(sub, item, f"{path}[{index}]")
                if found is not None:
                    return found
    return None


def _unknown(name: str) -> APIError:
    return invalid(f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")


def parse_body(
    data: Any, model: type[ModelT], fill: Callable[[dict[str, Any]], None] | None = None
) -> ModelT:
    """Parsed JSON as `model` (see `read_body`); also what a WebSocket message goes through."""
    if not isinstance(data, dict):
        raise invalid("The request body must be a JSON object.", code="invalid_json")
    # A RootModel is a union of bodies (each forbidding unknown keys itself): no key check.
    unknown = [] if issubclass(model, RootModel) else sorted(data.keys() - _names(model).keys())
    if unknown:
        raise _unknown(unknown[0])
    if fill is not None:
        fill(data)
    if isinstance(metadata := data.get("metadata"), dict):
        check_metadata(metadata)
    try:
        body = model.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc) from exc
    for name in _ITEM_LISTS:
        if isinstance(items := data.get(name), list):
            found = _unknown_item_key(items, body.__dict__.get(name), name)
            if found is not None:
                raise _unknown(found)
    return body
