"""One event model, two spellings.

The engine speaks OpenAI's generated models. Clients get either OpenAI's dialect (the
default, what the official SDKs expect) or the Open Responses spec's dialect, chosen per
request by the `OpenResponses-Version` header or server-wide. Both send response objects that
satisfy both specs (`_superset`); they differ only where the specs conflict: event and item
names, extension prefixes, error types and the streamed error's shape (README, Dialects). The
Open Responses side is validated into the spec's own generated models before it leaves, so
what we send is what the spec says, not what we hope it says.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Annotated, Any, Union, get_args

from pydantic import BaseModel, Field, TypeAdapter

from openresponses.config import Dialect
from openresponses.errors import APIError, ErrorKind
from openresponses.generated import openresponses_models as orm
from openresponses.items import type_values

EXTENSION_PREFIX = "openresponses:"
"""Our implementor slug, prefixed to event types the Open Responses spec does not define."""

HEADER = "openresponses-version"
SPEC_VERSION = "2026-04-24"


def select(headers: Mapping[str, str], default: Dialect) -> Dialect:
    """The dialect a request asked for: the header wins over the server's default."""
    return Dialect.OPENRESPONSES if headers.get(HEADER) else default


def _dump(model: BaseModel) -> dict[str, Any]:
    data: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return data


# --- errors ---------------------------------------------------------------------------------

_OPENAI_TYPES = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error",
    ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.NOT_FOUND: "invalid_request_error",
    ErrorKind.CONFLICT: "invalid_request_error",
    ErrorKind.TOO_LARGE: "invalid_request_error",
    ErrorKind.RATE_LIMIT: "rate_limit_error",
    ErrorKind.MODEL: "upstream_error",
    ErrorKind.SERVER: "server_error",
}
_SPEC_TYPES = {
    ErrorKind.INVALID_REQUEST: "invalid_request",
    ErrorKind.AUTHENTICATION: "invalid_request",
    ErrorKind.NOT_FOUND: "not_found",
    ErrorKind.CONFLICT: "invalid_request",
    ErrorKind.TOO_LARGE: "invalid_request",
    ErrorKind.RATE_LIMIT: "too_many_requests",
    ErrorKind.MODEL: "model_error",
    ErrorKind.SERVER: "server_error",
}


def error_type(error: APIError, dialect: Dialect) -> str:
    table = _SPEC_TYPES if dialect is Dialect.OPENRESPONSES else _OPENAI_TYPES
    return table[error.kind]


def error_body(error: APIError, dialect: Dialect) -> dict[str, Any]:
    """`{"error": {"message", "type", "param", "code"}}`, the one error shape we send."""
    return {
        "error": {
            "message": error.message,
            "type": error_type(error, dialect),
            "param": error.param,
            "code": error.code,
        }
    }


# --- responses ------------------------------------------------------------------------------


_EXTENSIONS = ("conversation",)
"""Response keys the spec lacks that the spec dialect keeps, as the spec allows optional
fields to extend its schemas: `conversation` names the conversation the response extends."""


def _with_extensions(spec: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """`spec` (validated, so stripped of unknown keys) with `data`'s extension keys back."""
    spec.update({key: data[key] for key in _EXTENSIONS if key in data})
    return spec


# Rendering, not a spec fix: OpenAI's models have no field for `store` or the penalties.
def _superset(data: dict[str, Any], store: bool) -> dict[str, Any]:
    """`data` (a dumped Response, changed in place) with what the Open Responses spec's
    ResponseResource requires and OpenAI's Response leaves out, in values OpenAI's accepts
    too: both dialects send it, so a default server satisfies either spec's clients. Plain
    `setdefault`s on the dumped dict, no validation: this runs on every streamed response."""
    data.setdefault("store", store)
    data.setdefault("presence_penalty", 0.0)
    data.setdefault("frequency_penalty", 0.0)
    reasoning = data.get("reasoning")
    if isinstance(reasoning, dict):
        reasoning.setdefault("effort", None)
        reasoning.setdefault("summary", None)
    for tool in data.get("tools", ()):
        if tool.get("type") == "function":
            for key in ("description", "parameters", "strict"):
                tool.setdefault(key, None)
    text_format = (data.get("text") or {}).get("format")
    if isinstance(text_format, dict) and text_format.get("type") == "json_schema":
        text_format.setdefault("description", None)
        if text_format.get("strict") is None:  # OpenAI's default; the spec's is not nullable
            text_format["strict"] = False
    for item in data.get("output", ()):
        _spec_item(item)
    return data


def _spec_response(data: dict[str, Any], store: bool) -> dict[str, Any]:
    """The superset, validated against the spec's ResponseResource, with our own tools and
    items under the implementor prefix."""
    _superset(data, store)
    reasoning = data.get("reasoning")
    if isinstance(reasoning, dict):
        data["reasoning"] = {"effort": reasoning["effort"], "summary": reasoning["summary"]}
    # Tools and items the spec does not define pass as they are, under our prefix; the rest
    # is validated against the spec's model.
    tools = data.get("tools", [])
    output = data.get("output", [])
    data["tools"] = [tool for tool in tools if tool.get("type") in _SPEC_TOOL_TYPES]
    data["output"] = [item for item in output if item.get("type") in _SPEC_ITEM_TYPES]
    spec = _with_extensions(_dump(orm.ResponseResource.model_validate(data)), data)
    spec["tools"] = _merged(tools, spec["tools"], _SPEC_TOOL_TYPES)
    spec["output"] = [
        _with_status(item) if item["type"].startswith(EXTENSION_PREFIX) else item
        for item in _merged(output, spec["output"], _SPEC_ITEM_TYPES)
    ]
    return spec


_SPEC_ITEM_TYPES = type_values(orm.ResponseResource.model_fields["output"].annotation)
_SPEC_TOOL_TYPES = type_values(orm.ResponseResource.model_fields["tools"].annotation)


def _merged(
    original: list[dict[str, Any]], validated: list[dict[str, Any]], spec_types: frozenset[str]
) -> list[Any]:
    """`original`'s order: the spec's entries as `validated`, ours prefixed."""
    spec = iter(validated)
    return [next(spec) if e.get("type") in spec_types else prefixed(e) for e in original]


def prefixed(entry: dict[str, Any]) -> dict[str, Any]:
    """A tool, item or event of ours, its type under our implementor prefix."""
    return {**entry, "type": f"{EXTENSION_PREFIX}{entry['type']}"}


def _with_status(item: dict[str, Any]) -> dict[str, Any]:
    """Every item has a `status` in the spec, ours too (a tool listing has none in OpenAI's)."""
    if item.get("status") is None:
        return {**item, "status": "failed" if item.get("error") else "completed"}
    return item


def _spec_item(item: dict[str, Any]) -> None:
    if item.get("type") == "reasoning":
        item.setdefault("summary", [])


# Keys a reader looks for first; the models list inherited fields before their own.
_LEADING = ("id", "object", "created_at", "status", "model", "output")


def response_body(response: BaseModel, dialect: Dialect, *, store: bool) -> dict[str, Any]:
    data = _dump(response)
    if dialect is Dialect.OPENRESPONSES:
        return _spec_response(data, store)
    return _leading_first(_superset(data, store))


def compaction_body(resource: BaseModel, dialect: Dialect) -> dict[str, Any]:
    """A `response.compaction` object; the spec dialect is validated against its own model."""
    data = _dump(resource)
    for item in data.get("output", ()):
        _spec_item(item)
    if dialect is Dialect.OPENAI:
        return _leading_first(data)
    return _dump(orm.CompactResource.model_validate(data))


def _leading_first(data: dict[str, Any]) -> dict[str, Any]:
    return {**{key: data[key] for key in _LEADING if key in data}, **data}


# --- stream events --------------------------------------------------------------------------

# Stream errors carry a code, not a kind: the engine uses these two for its own failures and
# for rate limits; everything else that fails a stream comes from the model's provider.
_SPEC_STREAM_ERROR_TYPES = {
    "server_error": "server_error",
    "rate_limit_exceeded": "too_many_requests",
}

_RENAMED = {
    "response.reasoning_text.delta": "response.reasoning.delta",
    "response.reasoning_text.done": "response.reasoning.done",
}

_SPEC_EVENT_CLASSES = tuple(
    cls
    for name, cls in inspect.getmembers(orm, inspect.isclass)
    if name.endswith("StreamingEvent") and issubclass(cls, BaseModel)
)
_SPEC_EVENT: TypeAdapter[Any] = TypeAdapter(
    Annotated[Union[_SPEC_EVENT_CLASSES], Field(discriminator="type")]  # type: ignore[arg-type]  # noqa: UP007
)
SPEC_EVENT_TYPES = frozenset(
    value for cls in _SPEC_EVENT_CLASSES for value in get_args(cls.model_fields["type"].annotation)
)


class _LastResponse:
    """The OpenAI-dialect JSON of the response the last lifecycle event carried, kept with
    the object it came from (compared by identity; the engine replaces its response rather
    than change it): `response.created` and `response.in_progress` carry the same object,
    and a response's dump is the costliest part of a short stream's frames."""

    def __init__(self) -> None:
        self.source: tuple[BaseModel, bool] | None = None
        self.body: dict[str, Any] = {}

    def body_of(self, response: BaseModel, store: bool) -> dict[str, Any]:
        if self.source is None or self.source[0] is not response or self.source[1] != store:
            self.body = _leading_first(_superset(_dump(response), store))
            self.source = (response, store)
        return self.body


_LAST_RESPONSE = _LastResponse()


def event_body(event: BaseModel, dialect: Dialect, *, store: bool) -> dict[str, Any]:
    """The JSON of one stream event in `dialect` (an event the Open Responses spec lacks
    carries our prefix there)."""
    if dialect is Dialect.OPENAI:
        fields = event.__dict__  # not getattr: a missing attribute costs pydantic an exception
        response = fields.get("response")
        if isinstance(response, BaseModel):  # a lifecycle event: these are its three fields
            return {
                "type": fields["type"],
                "response": _LAST_RESPONSE.body_of(response, store),
                "sequence_number": fields["sequence_number"],
            }
        data = _dump(event)
        if "item" in data:
            _spec_item(data["item"])
        return data
    data = _dump(event)
    kind = _RENAMED.get(data["type"], data["type"])
    data["type"] = kind
    if kind not in SPEC_EVENT_TYPES:
        # The spec's rule for events it does not define: the implementor's prefix, and the
        # event as it is (clients that do not know it skip it), in the spec's shapes.
        if "response" in data:
            data["response"] = _spec_response(data["response"], store)
        return prefixed(data)
    if kind == "error":
        data = {
            "type": "error",
            "sequence_number": data["sequence_number"],
            "error": {
                "type": _SPEC_STREAM_ERROR_TYPES.get(str(data.get("code")), "model_error"),
                "code": data.get("code"),
                "message": data.get("message", ""),
                "param": data.get("param"),
            },
        }
    response = None
    if "response" in data:
        # Validated with our tools and items left out (the spec's unions do not have them),
        # sent with them.
        response = _spec_response(data["response"], store)
        data["response"] = {
            **response,
            "tools": [t for t in response["tools"] if t.get("type") in _SPEC_TOOL_TYPES],
            "output": [i for i in response["output"] if i.get("type") in _SPEC_ITEM_TYPES],
        }
    item = data.get("item")
    if item is not None and item.get("type") not in _SPEC_ITEM_TYPES:
        return {**data, "item": _with_status(prefixed(item))}  # a spec event, our item
    if item is not None:
        _spec_item(item)
    spec_event: dict[str, Any] = _SPEC_EVENT.dump_python(
        _SPEC_EVENT.validate_python(data), mode="json", by_alias=True, exclude_unset=True
    )
    if response is not None:
        spec_event["response"] = response
    return spec_event
