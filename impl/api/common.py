"""What every handler shares: reading a body into a generated model, picking the dialect,
finding the server's services, and writing JSON.

Request bodies are validated here with the generated pydantic models rather than by
connexion's jsonschema validator: same spec, an order of magnitude faster, and its error
locations name the exact parameter (`input[0].content`) for the OpenAI error's `param`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from connexion import request
from connexion.lifecycle import ConnexionRequest
from pydantic import BaseModel, RootModel, ValidationError
from starlette.responses import Response

from openresponses.core.dialects import Dialect, select
from openresponses.core.items import new_id
from openresponses.core.runner import Services
from openresponses.errors import APIError, ErrorKind, invalid

ModelT = TypeVar("ModelT", bound=BaseModel)

MAX_BODY_BYTES = 64 * 1024 * 1024


def current() -> ConnexionRequest:
    """This request, resolved once: every access through connexion's context proxy costs."""
    found: ConnexionRequest = request._get_current_object()
    return found


def services(req: ConnexionRequest) -> Services:
    found: Services = req.state.services
    return found


def dialect(req: ConnexionRequest) -> Dialect:
    return select(req.headers, services(req).settings.dialect)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data), status_code=status, media_type="application/json", headers=headers
    )


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


def _validation_error(exc: ValidationError) -> APIError:
    errors = exc.errors(include_url=False)
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
compliance suite) let clients omit in input, with the values the API assumes."""


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


async def read_body(
    req: ConnexionRequest,
    model: type[ModelT],
    fill: Callable[[dict[str, Any]], None] | None = None,
) -> ModelT:
    """The request body as `model`, or a 400/413 that says exactly what is wrong.

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
        data = orjson.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid(
            "We could not parse the JSON body of your request. Send valid JSON (UTF-8) with "
            "'Content-Type: application/json'.",
            code="invalid_json",
        ) from exc
    return parse_body(data, model, fill)


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
def _keys(model: type[BaseModel]) -> frozenset[str]:
    """The keys a body may have (computed once per model: CreateResponse has ~40 fields)."""
    return frozenset(field.alias or name for name, field in model.model_fields.items())


def parse_body(
    data: Any, model: type[ModelT], fill: Callable[[dict[str, Any]], None] | None = None
) -> ModelT:
    """Parsed JSON as `model` (see `read_body`); also what a WebSocket message goes through."""
    if not isinstance(data, dict):
        raise invalid("The request body must be a JSON object.", code="invalid_json")
    # A RootModel is a union of bodies (each forbidding unknown keys itself): no key check.
    unknown = [] if issubclass(model, RootModel) else sorted(data.keys() - _keys(model))
    if unknown:
        raise invalid(
            f"Unknown parameter: '{unknown[0]}'.", param=unknown[0], code="unknown_parameter"
        )
    if fill is not None:
        fill(data)
    if isinstance(metadata := data.get("metadata"), dict):
        check_metadata(metadata)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc) from exc
