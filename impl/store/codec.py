"""Models to the JSON the tables hold, and back; and the strings the other columns hold.

Rows store items and responses as the JSON of their models (TEXT columns both databases take
as they are): the models are the schema.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import BaseModel, TypeAdapter
from sqlalchemy import Dialect, String, TypeDecorator

from openresponses.items import ITEM_RESOURCE, OUTPUT_ITEM, Item, item_id
from openresponses.store.base import StoredResponse

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


def load_item(role: str, body: str) -> Item:
    """An item saved from a list of `role` (input items, or a response's output)."""
    item: Item = _ADAPTERS[role].validate_json(body)
    return item


@dataclass(frozen=True)
class Encoded:
    """A stored response as its rows hold it, every model serialized exactly once.

    A save is written twice, to the journal and then to the tables, and the response's body
    contains its output items, which have rows of their own: dumped naively, each model was
    serialized two or three times per save. Here the output items are dumped once and the
    response's body is assembled around them.
    """

    id: str
    project: str
    created_at: int
    status: str | None
    model: str | None
    previous_response_id: str | None
    body: str
    inputs: list[tuple[str, str]]
    """(item id, JSON) of each input item, in order."""
    outputs: list[tuple[str, str]]

    def size(self) -> int:
        """Characters of JSON: what holding the response in memory costs, roughly."""
        return len(self.body) + sum(len(body) for _, body in self.inputs)

    def journal_line(self) -> bytes:
        """One JSON line: `{"project": …, "response": …, "input_items": [...]}`."""
        inputs = ",".join(body for _, body in self.inputs)
        project = orjson.dumps(self.project).decode()
        return f'{{"project":{project},"response":{self.body},"input_items":[{inputs}]}}\n'.encode()


def encode(record: StoredResponse) -> Encoded:
    response = record.response
    outputs = [(item_id(item), dump(item)) for item in response.output]
    rest = response.model_dump_json(by_alias=True, exclude_unset=True, exclude={"output"})
    # `rest` is an object with an id, never empty. The output goes last: key order means
    # nothing to the model that reads the body back.
    listed = ",".join(body for _, body in outputs)
    return Encoded(
        id=response.id,
        project=record.project,
        created_at=response.created_at,
        status=response.status,
        model=response.model,
        previous_response_id=response.previous_response_id,
        body=f'{rest[:-1]},"output":[{listed}]}}',
        inputs=[(item_id(item), dump(item)) for item in record.input_items],
        outputs=outputs,
    )


_MARK = "\uffff"
"""Starts an escaped value: a noncharacter, which no text a client means to send starts with
(and one that does is escaped too, so that every value reads back as it was written)."""


def _escape(value: str | None) -> str | None:
    if value is None or ("\x00" not in value and not value.startswith(_MARK)):
        return value
    return _MARK + orjson.dumps(value).decode()  # JSON writes NUL as \u0000


def _unescape(value: str | None) -> str | None:
    if value is None or not value.startswith(_MARK):
        return value
    loaded: str = orjson.loads(value[1:])
    return loaded


class Varchar(TypeDecorator[str]):
    """A VARCHAR column that holds any string, NUL included, on both databases.

    A JSON string may carry NUL (U+0000): a model name, a vector store's name, a filename,
    an id or a cursor to look up. PostgreSQL's text types refuse it, so there such a value
    is stored escaped (`_escape`): it reads back as it was written, and an id with NUL,
    which no stored row has, is looked up and simply not found. DuckDB holds NUL as it is.
    """

    impl = String
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Callable[[str | None], str | None] | None:
        return _escape if dialect.name == "postgresql" else None

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[str | None], str | None] | None:
        return _unescape if dialect.name == "postgresql" else None
