"""Validate JSON against the Open Responses spec's schemas, reporting JSON paths.

Validation is by JSON Schema (draft 2020-12, what OpenAPI 3.1 uses) against the spec shipped
in `openresponses.generated/openresponses.json`, not against our own pydantic models, so a
bug in our models cannot hide a bug in our output.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

_URN = "urn:openresponses"


@cache
def _spec() -> dict[str, Any]:
    text = resources.files("openresponses.generated").joinpath("openresponses.json").read_text()
    spec: dict[str, Any] = json.loads(text)
    return spec


@cache
def _registry() -> Registry[Any]:
    resource: Resource[Any] = Resource.from_contents(_spec(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(_URN, resource)
    return registry


@cache
def validator(schema_name: str) -> jsonschema.Draft202012Validator:
    if schema_name not in _spec()["components"]["schemas"]:
        raise KeyError(f"the spec has no schema named {schema_name!r}")
    ref = {"$ref": f"{_URN}#/components/schemas/{schema_name}"}
    return jsonschema.Draft202012Validator(ref, registry=_registry())


@cache
def event_schemas() -> dict[str, str]:
    """Streaming event `type` → the spec schema that defines it."""
    found: dict[str, str] = {}
    for name, schema in _spec()["components"]["schemas"].items():
        if name.endswith("StreamingEvent"):
            found[schema["properties"]["type"]["enum"][0]] = name
    return found


def _path(error: jsonschema.ValidationError) -> str:
    path = "$"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def errors(instance: Any, schema_name: str) -> list[str]:
    """Every violation of `schema_name` as `"$.json.path: message"`, most specific first."""
    found = []
    for error in validator(schema_name).iter_errors(instance):
        leaf = min(error.context or [error], key=lambda e: len(e.context or []))
        best = jsonschema.exceptions.best_match([leaf, *(error.context or [])]) or error
        found.append(f"{_path(best)}: {best.message}")
    return sorted(found)


def event_errors(event: dict[str, Any]) -> list[str]:
    """Violations of the schema for this event's `type` (an unknown type is one violation)."""
    schema = event_schemas().get(str(event.get("type")))
    if schema is None:
        return [f"$.type: {event.get('type')!r} is not a streaming event type of the spec"]
    return errors(event, schema)
