"""Corrections to the Open Responses spec where it contradicts the wire it was derived from.

Applied in `generated/` only (`spec/openresponses/openapi.json` stays byte-identical to the
release); each one is listed in `spec/SOURCES.md` with the evidence.
"""

from __future__ import annotations

from typing import Any

JSON_SCHEMA_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": {}}


def fix_openresponses(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` with its known defects corrected, in place."""
    schemas = spec["components"]["schemas"]
    # The response echoes the JSON schema the request gave, as OpenAI's Response does; the
    # release admits only null there, so no response with structured output could validate.
    echoed = schemas["JsonSchemaResponseFormat"]["properties"]["schema"]
    echoed["anyOf"] = [JSON_SCHEMA_OBJECT, {"type": "null"}]
    return spec
