"""Validate JSON against a spec's schemas, reporting JSON paths.

Validation is by JSON Schema (draft 2020-12, what OpenAPI 3.1 uses) against the specs shipped in
`openresponses.generated` (the Open Responses spec, and OpenAI's as `spec/openapi.yaml` trims
it), not against our own pydantic models, so a bug in our models cannot hide a bug in our
output, and the harness holds any other server to the same text.
"""

from __future__ import annotations

import json
from functools import cache, cached_property
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012


class Schemas:
    """The component schemas of one spec file in `openresponses.generated`.

    With `optional_nullable`, a property that is not required may also be `null`. OpenAI's
    spec leaves `nullable` off many optional fields that its own API sends as `null`
    (`user`, and `usage` while a response is in progress, say), and its SDKs type them
    `Optional`; holding other servers to the letter there would fail OpenAI itself.
    """

    def __init__(self, filename: str, *, optional_nullable: bool = False) -> None:
        self.filename = filename
        self.optional_nullable = optional_nullable
        self._urn = f"urn:openresponses:{filename}"

    @cached_property
    def spec(self) -> dict[str, Any]:
        text = resources.files("openresponses.generated").joinpath(self.filename).read_text()
        spec: dict[str, Any] = json.loads(text)
        if self.optional_nullable:
            _admit_null_for_optional(spec)
        return spec

    @cached_property
    def _registry(self) -> Registry[Any]:
        resource: Resource[Any] = Resource.from_contents(
            self.spec, default_specification=DRAFT202012
        )
        registry: Registry[Any] = Registry().with_resource(self._urn, resource)
        return registry

    @cache  # noqa: B019 - two instances live for the whole process
    def validator(self, schema_name: str) -> jsonschema.Draft202012Validator:
        if schema_name not in self.spec["components"]["schemas"]:
            raise KeyError(f"{self.filename} has no schema named {schema_name!r}")
        ref = {"$ref": f"{self._urn}#/components/schemas/{schema_name}"}
        return jsonschema.Draft202012Validator(ref, registry=self._registry)

    @cached_property
    def event_schemas(self) -> dict[str, str]:
        """Streaming event `type` → the schema that defines it.

        An event schema is one whose name ends in `StreamingEvent` (Open Responses) or a
        member of `ResponseStreamEvent` (OpenAI), and whose `type` is a one-value enum.
        """
        schemas = self.spec["components"]["schemas"]
        union = schemas.get("ResponseStreamEvent", {}).get("oneOf", [])
        names = [ref["$ref"].rsplit("/", 1)[1] for ref in union if "$ref" in ref]
        names += [name for name in schemas if name.endswith("StreamingEvent")]
        found: dict[str, str] = {}
        for name in names:
            enum = schemas[name].get("properties", {}).get("type", {}).get("enum", [])
            if len(enum) == 1:
                found[enum[0]] = name
        return found

    def errors(self, instance: Any, schema_name: str) -> list[str]:
        """Every violation of `schema_name` as `"$.json.path: message"`, most specific first."""
        found = {
            f"{json_path(leaf.absolute_path)}: {leaf.message}"
            for error in self.validator(schema_name).iter_errors(instance)
            for leaf in _leaves(error)
        }
        return sorted(found)

    def event_errors(self, event: dict[str, Any]) -> list[str]:
        """Violations of the schema for this event's `type` (an unknown type is one)."""
        schema = self.event_schemas.get(str(event.get("type")))
        if schema is None:
            return [f"$.type: {event.get('type')!r} is not a streaming event type of the spec"]
        return self.errors(event, schema)


def _leaves(error: ValidationError) -> list[ValidationError]:
    """The errors that say what is wrong, rather than "not valid under any of the given schemas".

    A failed `oneOf`/`anyOf` carries every branch's errors. The branch meant is the one whose
    discriminator matched: it neither failed on the instance's JSON type (`null` in a nullable
    union) nor on its `type` property (another item kind). When exactly one branch is left, its
    own errors are the answer, explained in turn; otherwise jsonschema's heuristic picks one.
    """
    if not error.context:
        return [error]
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    meant = [b for b in branches.values() if not any(_wrong_kind(e, error) for e in b)]
    if len(meant) != 1:
        return [jsonschema.exceptions.best_match([error]) or error]
    return [leaf for sub in meant[0] for leaf in _leaves(sub)]


def _wrong_kind(error: ValidationError, parent: ValidationError) -> bool:
    """Whether `error` rules its branch out as meant for another kind of value."""
    here = list(parent.absolute_path)
    if error.validator == "type" and list(error.absolute_path) == here:
        return True
    return error.validator in ("enum", "const") and list(error.absolute_path) == [*here, "type"]


def _admit_null_for_optional(node: Any) -> None:
    """Lets every optional property of every object schema under `node` be `null` too."""
    if isinstance(node, list):
        for child in node:
            _admit_null_for_optional(child)
        return
    if not isinstance(node, dict):
        return
    for child in node.values():
        _admit_null_for_optional(child)
    properties = node.get("properties")
    if isinstance(properties, dict):
        required = set(node.get("required", []))
        for name, schema in properties.items():
            if name not in required and isinstance(schema, dict):
                properties[name] = {"anyOf": [schema, {"type": "null"}]}


def json_path(parts: Any) -> str:
    """`["output", 0, "id"]` → `$.output[0].id`."""
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


OPENRESPONSES = Schemas("openresponses.json")
OPENAI = Schemas("openai.json", optional_nullable=True)


def errors(instance: Any, schema_name: str) -> list[str]:
    """Violations of an Open Responses schema (see `Schemas.errors`)."""
    return OPENRESPONSES.errors(instance, schema_name)


def event_errors(event: dict[str, Any]) -> list[str]:
    """Violations of the Open Responses schema for this event (see `Schemas.event_errors`)."""
    return OPENRESPONSES.event_errors(event)
