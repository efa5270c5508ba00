"""Make the assembled specs usable by our tools without changing what they mean.

Six transformations, all pure functions of the input:

* `correct_to_wire`: where OpenAI's spec describes a response differently from what OpenAI's
  API sends (and its SDKs read), the spec is corrected to the wire, one entry per field in
  `WIRE_CORRECTIONS` with its evidence; spec/SOURCES.md lists them.

* `correct_openresponses`: the same for the Open Responses release, where it contradicts the
  wire it was derived from (`OPENRESPONSES_CORRECTIONS`); `spec/openresponses/openapi.json`
  stays byte-identical to the release, the corrections reach `generated/` only.

* `default_omittable`: where OpenAI's spec requires a request field that the API lets
  clients omit, the models get the API's default instead (`OMITTABLE`); `generated/openai.json`
  keeps the requirement, which the responses the harness checks meet.

* `name_inline_bodies`: a request body declared inline (OpenAI's `createConversationItems`)
  has no schema name, so the model generator would give the handler nothing to validate
  with; each becomes `components/schemas/<OperationId>Body`, the name OpenAI's other bodies
  follow (`CreateConversationBody`).

* `add_discriminator_mappings`: OpenAI's unions carry `discriminator: {propertyName: type}`
  without a `mapping` (openapi-core cannot resolve those), sometimes over members where
  `type` is optional or shared (`InputMessage` and `OutputMessage` are both `message`), and
  many large unions (`ResponseStreamEvent`) carry none. A union becomes discriminated, with
  an explicit mapping, exactly when every member is a reference to an object whose `type`
  is required and single-valued, and no value repeats; otherwise any discriminator is
  dropped so that validators fall back to trying each member. Discriminated unions are
  what make pydantic fast and its errors precise.
* `downconvert_to_30`: connexion 3 accepts only OpenAPI 3.0.x, so the routing copy of the
  spec rewrites the 3.1 (JSON Schema 2020-12) idioms OpenAI uses into their 3.0 spelling.
  It also opens multipart bodies to extra fields: the official SDKs send a nested object
  field as `expires_after[anchor]`, `expires_after[seconds]`, which connexion would drop as
  unknown before the handler, which reads them (api/files.py), could see them; and it leaves
  object fields untyped there, so one sent as a JSON part reaches the handler as text.
"""

from __future__ import annotations

import copy
from typing import Any

SCHEMA_PREFIX = "#/components/schemas/"


def _type_value(schema: dict[str, Any], schemas: dict[str, Any]) -> str | None:
    """The single required value of `type` on an object schema, following allOf and refs."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(SCHEMA_PREFIX):
        return _type_value(schemas[ref[len(SCHEMA_PREFIX) :]], schemas)
    prop = schema.get("properties", {}).get("type")
    if isinstance(prop, dict) and "type" in schema.get("required", []):
        if "const" in prop:
            return str(prop["const"])
        enum = prop.get("enum")
        if isinstance(enum, list) and len(enum) == 1:
            return str(enum[0])
    for part in schema.get("allOf", []):
        value = _type_value(part, schemas)
        if value is not None:
            return value
    return None


def _mapping(members: list[Any], schemas: dict[str, Any]) -> dict[str, str] | None:
    mapping: dict[str, str] = {}
    for member in members:
        if not isinstance(member, dict):
            return None
        extra = {k for k in member if not k.startswith("x-")} - {"$ref", "title", "description"}
        if extra:
            return None
        ref = member.get("$ref")
        if not isinstance(ref, str):
            return None
        value = _type_value(member, schemas)
        if value is None or value in mapping:
            return None
        mapping[value] = ref
    return mapping


_ANNOTATIONS = ("title", "description", "deprecated", "example", "examples")


def _either(schema: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """`schema` or `other`, its annotations kept outside the union (where generators read them)."""
    inner = {k: v for k, v in schema.items() if k not in _ANNOTATIONS}
    outer = {k: v for k, v in schema.items() if k in _ANNOTATIONS}
    return {**outer, "anyOf": [inner, other]}


def _or_null(schema: dict[str, Any]) -> dict[str, Any]:
    return _either(schema, {"type": "null"})


def _or_string(schema: dict[str, Any]) -> dict[str, Any]:
    return _either(schema, {"type": "string"})


def _with_value(value: str) -> Any:
    def add(schema: dict[str, Any]) -> dict[str, Any]:
        return {**schema, "enum": [*schema["enum"], value]}

    return add


_LISTS = (
    "ConversationItemList",
    "ListFilesResponse",
    "ListVectorStoreFilesResponse",
    "ListVectorStoresResponse",
    "ResponseItemList",
)

WIRE_CORRECTIONS: dict[tuple[str, str], Any] = {
    # An empty page has no first or last item: the API sends null (openai-python's
    # conversation pages read a missing `last_id` as the end).
    **{(name, key): _or_null for name in _LISTS for key in ("first_id", "last_id")},
    # `Optional[...]` in openai-python's FileObject, VectorStore and Response, which are
    # generated from what the API sends: null when unset.
    ("OpenAIFile", "expires_at"): _or_null,
    ("OpenAIFile", "status_details"): _or_null,
    ("VectorStoreObject", "expires_after"): _or_null,
    ("ModelResponseProperties", "user"): _or_null,
    # A response still queued or running, or cancelled before it ended, has no usage yet:
    # the API sends null (`response.created` events show it).
    ("Response", "usage"): _or_null,
    # A file uploaded with purpose `evals` (an upload purpose the spec allows) is that.
    ("OpenAIFile", "purpose"): _with_value("evals"),
    # With `encoding_format: "base64"` the vector is a base64 string of float32s.
    ("Embedding", "embedding"): _or_string,
}
"""(schema, property) → how its schema changes to match the wire."""

_REPLAYS = ("getResponse",)
"""Operations that also answer an event stream: `stream=true` replays a background
response's events (openai-python's `responses.retrieve(..., stream=True)` reads a
`Stream[ResponseStreamEvent]`), which the spec leaves out."""

_DOWNLOADS = ("downloadFile",)
"""Operations that answer a file's bytes (`application/octet-stream`), which the spec
declares as a JSON string; openai-python reads them as binary content."""


_JSON_SCHEMA_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": {}}

OPENRESPONSES_CORRECTIONS: dict[tuple[str, str], Any] = {
    # The response echoes the JSON schema the request gave, as OpenAI's Response does; the
    # release admits only null there, so no response with structured output could validate.
    ("JsonSchemaResponseFormat", "schema"): lambda schema: {
        **schema,
        "anyOf": [_JSON_SCHEMA_OBJECT, {"type": "null"}],
    },
}
"""(schema, property) → how its schema changes, as `WIRE_CORRECTIONS`, in the Open Responses
release."""


OMITTABLE: dict[tuple[str, str], Any] = {
    # Both nullable; the Open Responses spec's FunctionToolParam, derived from the API's
    # requests, leaves both optional, and the API takes a function tool without them.
    ("FunctionTool", "parameters"): None,
    ("FunctionTool", "strict"): None,
}
"""(schema, property) → the default the API applies when a client omits a property its spec
marks required."""


def default_omittable(spec: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of `spec` whose `OMITTABLE` properties are optional, with their default."""
    spec = copy.deepcopy(spec)
    schemas = spec["components"]["schemas"]
    for (name, key), value in OMITTABLE.items():
        part = _part_with(schemas[name], key)
        part["required"].remove(key)
        part["properties"][key] = {**part["properties"][key], "default": value}
    return spec


def _correct(schemas: dict[str, Any], corrections: dict[tuple[str, str], Any]) -> None:
    for (name, key), change in corrections.items():
        properties = _part_with(schemas[name], key)["properties"]
        properties[key] = change(properties[key])


def correct_openresponses(spec: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of the Open Responses `spec` with `OPENRESPONSES_CORRECTIONS` applied."""
    spec = copy.deepcopy(spec)
    _correct(spec["components"]["schemas"], OPENRESPONSES_CORRECTIONS)
    return spec


def correct_to_wire(spec: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of `spec` corrected where it departs from the API's wire (see above)."""
    spec = copy.deepcopy(spec)
    schemas = spec["components"]["schemas"]
    _correct(schemas, WIRE_CORRECTIONS)
    for item in spec["paths"].values():
        for op in item.values():
            _require_needed_body(op, schemas)
            if op.get("operationId") in _REPLAYS:
                events = {"$ref": f"{SCHEMA_PREFIX}ResponseStreamEvent"}
                op["responses"]["200"]["content"][_EVENT_STREAM] = {"schema": events}
            for response in op["responses"].values():
                _describe_events(response.get("content", {}))
            if op.get("operationId") in _DOWNLOADS:
                content = op["responses"]["200"]["content"]
                content["application/octet-stream"] = {
                    "schema": {"type": "string", "format": "binary"}
                }
                del content["application/json"]
    return spec


_EVENT_STREAM = "text/event-stream"


def _part_with(schema: dict[str, Any], key: str) -> dict[str, Any]:
    """The schema, or its inline `allOf` part, that declares `key` (`Response` declares
    `usage` in one)."""
    for part in [schema, *schema.get("allOf", [])]:
        if key in part.get("properties", {}):
            return part
    raise KeyError(key)


def _describe_events(content: dict[str, Any]) -> None:
    """OpenAI's `text/event-stream` `schema` means each event's JSON `data` (then `[DONE]`);
    OpenAPI reads it as each event's fields (3.1) or the whole stream (3.2). Said in 3.2's
    terms instead, an `itemSchema` whose `data` holds that JSON, so that validators check
    every event's payload."""
    media = content.get(_EVENT_STREAM)
    if media is None or "schema" not in media:
        return
    payload = {"contentMediaType": "application/json", "contentSchema": media.pop("schema")}
    data = {"anyOf": [{"const": "[DONE]"}, payload]}
    media["itemSchema"] = {"type": "object", "required": ["data"], "properties": {"data": data}}


def _require_needed_body(op: dict[str, Any], schemas: dict[str, Any]) -> None:
    """A JSON body with required fields is itself required (`createConversationItems`,
    `updateConversation` leave it optional): no body cannot carry `items`. And it is an
    object (`createConversationItems` leaves out `type`, which lets `null` through)."""
    body = op.get("requestBody", {})
    schema = body.get("content", {}).get("application/json", {}).get("schema", {})
    ref = schema.get("$ref", "")
    target = schemas.get(ref[len(SCHEMA_PREFIX) :], {}) if ref else schema
    if target.get("required") and not body.get("required"):
        body["required"] = True
    if "properties" in target:
        target.setdefault("type", "object")


def add_discriminator_mappings(spec: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of `spec` whose unions are discriminated wherever that is sound."""
    spec = copy.deepcopy(spec)
    schemas = spec["components"]["schemas"]

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
            return
        if not isinstance(node, dict):
            return
        for key in ("oneOf", "anyOf"):
            members = node.get(key)
            if isinstance(members, list) and len(members) > 1:
                mapping = _mapping(members, schemas)
                if mapping is not None:
                    node["discriminator"] = {"propertyName": "type", "mapping": mapping}
                    if key == "anyOf":  # members exclude each other once discriminated
                        node["oneOf"] = node.pop("anyOf")
                elif "discriminator" in node:
                    del node["discriminator"]
        for value in list(node.values()):
            visit(value)

    visit(spec)
    return spec


def name_inline_bodies(spec: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of `spec` whose inline JSON request bodies are named schemas."""
    spec = copy.deepcopy(spec)
    schemas = spec["components"]["schemas"]
    for item in spec["paths"].values():
        for op in item.values():
            media = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            schema = media.get("schema")
            if isinstance(schema, dict) and "$ref" not in schema:
                operation_id = op["operationId"]
                name = f"{operation_id[0].upper()}{operation_id[1:]}Body"
                if name in schemas:
                    raise ValueError(f"{operation_id}: schema {name} exists already")
                schemas[name] = schema
                media["schema"] = {"$ref": f"{SCHEMA_PREFIX}{name}"}
    return spec


# JSON Schema keywords that OpenAPI 3.0's Schema Object does not allow.
_DROP_30 = {
    "$schema",
    "$id",
    "$defs",
    "$comment",
    "prefixItems",
    "contentMediaType",
    "contentEncoding",
    "unevaluatedProperties",
    "unevaluatedItems",
    "dependentRequired",
    "dependentSchemas",
    "if",
    "then",
    "else",
    "propertyNames",
    "examples",
    "const",
    "contains",
    "minContains",
    "maxContains",
    "patternProperties",
    "$dynamicRef",
    "$anchor",
    "$recursiveAnchor",
    "$recursiveRef",
}


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null" and len(schema) <= 2


def _schema_30(schema: Any) -> Any:
    """One schema object from 3.1 to 3.0 spelling (recursive)."""
    if isinstance(schema, list):
        return [_schema_30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _schema_30(prop) for name, prop in value.items()}
        elif key in ("discriminator", "example") or key.startswith("x-"):
            out[key] = value
        elif key not in _DROP_30:
            out[key] = _schema_30(value)
    if "const" in schema:
        out["enum"] = [schema["const"]]
    if "examples" in schema and isinstance(schema["examples"], list) and schema["examples"]:
        out.setdefault("example", schema["examples"][0])
    for bound, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(schema.get(bound), (int, float)) and not isinstance(schema[bound], bool):
            out[inclusive] = schema[bound]
            out[bound] = True
    if out.get("required") == []:
        del out["required"]
    if out.get("default", 0) is None:
        # connexion validates defaults against their own schema, and a null default under
        # a oneOf whose members are not nullable fails that; null says nothing anyway.
        del out["default"]
        out["nullable"] = True
    kind = out.get("type")
    if isinstance(kind, list):
        rest = [k for k in kind if k != "null"]
        if len(rest) < len(kind):
            out["nullable"] = True
        if len(rest) == 1:
            out["type"] = rest[0]
        else:
            del out["type"]
            if rest:
                out["anyOf"] = [{"type": k} for k in rest]
    elif kind == "null":
        del out["type"]
        out["nullable"] = True
        out["enum"] = [None]
    for key in ("anyOf", "oneOf"):
        members = out.get(key)
        if isinstance(members, list) and any(_is_null(m) for m in schema.get(key, [])):
            kept = [m for m in members if not (isinstance(m, dict) and m.get("enum") == [None])]
            out["nullable"] = True
            if len(kept) == 1:
                del out[key]
                if "$ref" in kept[0]:
                    out["allOf"] = kept
                else:
                    out.update({k: v for k, v in kept[0].items() if k not in out})
            else:
                out[key] = kept
    if "$ref" in out and len(out) > 1:  # 3.0 ignores siblings of $ref; keep their meaning
        ref = out.pop("$ref")
        out["allOf"] = [{"$ref": ref}, *out.get("allOf", [])]
    return out


def downconvert_to_30(spec: dict[str, Any]) -> dict[str, Any]:
    """Return an OpenAPI 3.0.3 rendering of a 3.1 `spec` for connexion."""
    spec = copy.deepcopy(spec)
    spec["openapi"] = "3.0.3"
    spec["info"].get("license", {}).pop("identifier", None)
    components = spec.get("components", {})
    components["schemas"] = {k: _schema_30(v) for k, v in components.get("schemas", {}).items()}

    def convert_media(node: Any) -> None:
        if isinstance(node, dict):
            node.pop("itemSchema", None)  # 3.2's; connexion validates no responses anyway
            for key, value in node.items():
                if key == "schema":
                    node[key] = _schema_30(value)
                else:
                    convert_media(value)
        elif isinstance(node, list):
            for item in node:
                convert_media(item)

    convert_media(spec.get("paths", {}))
    convert_media(components.get("responses", {}))
    _open_multipart_bodies(spec)
    return spec


def _open_multipart_bodies(spec: dict[str, Any]) -> None:
    schemas = spec.get("components", {}).get("schemas", {})
    for item in spec.get("paths", {}).values():
        for op in item.values():
            content = op.get("requestBody", {}).get("content", {}) if isinstance(op, dict) else {}
            schema = content.get("multipart/form-data", {}).get("schema", {})
            ref = schema.get("$ref", "")
            target = schemas.get(ref[len(SCHEMA_PREFIX) :]) if ref else schema
            if isinstance(target, dict):
                target.pop("additionalProperties", None)
                # An object field may also come as one JSON part (OpenAPI's default encoding
                # of an object in a form), which connexion would cast with dict(): untyped,
                # it reaches the handler as text, which reads both forms.
                properties = target.get("properties", {})
                for name in [n for n, prop in properties.items() if "$ref" in prop]:
                    del properties[name]
