"""Models to the JSON the tables hold, and back.

Rows store items and responses as the JSON of their models (TEXT columns both databases take
as they are): the models are the schema.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter

from openresponses.core.items import ITEM_RESOURCE, OUTPUT_ITEM

Role = Literal["input", "output"]

# Read back with the union each list was validated with, so an item returns as the model it
# was saved as (an output `function_call` stays a FunctionToolCall, equal to Response.output).
_ADAPTERS: dict[str, TypeAdapter[Any]] = {"input": ITEM_RESOURCE, "output": OUTPUT_ITEM}


def dump(model: BaseModel) -> str:
    """JSON that validates back to an equal model with the same fields set.

    The API renders models with `exclude_unset`, so a full dump would make every field "set"
    and a stored response would come back with keys it never had; and aliases (`schema` for
    `schema_`) are what the models validate from.
    """
    return model.model_dump_json(by_alias=True, exclude_unset=True)


def load_item(role: str, body: str) -> Any:
    """An item saved from a list of `role` (input items, or a response's output)."""
    return _ADAPTERS[role].validate_json(body)
