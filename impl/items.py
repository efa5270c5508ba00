"""The item vocabulary shared by handlers, the engine and the store.

Items are the generated OpenAI models, typed by the spec's own unions, which codegen names
(`ItemResource`, what a listing holds; `OutputItem`, what a response outputs): a spec update
that adds an item type reaches the store with no edit here.
"""

from __future__ import annotations

import os
import threading
from typing import Any, TypeAlias, get_args, get_origin

from pydantic import BaseModel, RootModel, TypeAdapter

from openresponses.generated import openai_models as m

Item: TypeAlias = m.ItemResource | m.OutputItem
"""Every item of a response's input or output: messages, tool calls, their outputs…"""
ITEM_RESOURCE: TypeAdapter[m.ItemResource] = TypeAdapter(m.ItemResource)
ITEM_MODELS: tuple[type[BaseModel], ...] = get_args(m.ItemResource)
OUTPUT_ITEM: TypeAdapter[m.OutputItem] = TypeAdapter(m.OutputItem)


def type_values(annotation: Any) -> frozenset[str]:
    """The `type` values of the models a field's annotation admits, through lists, unions,
    `Annotated` and RootModel wrappers: what a spec's union defines, read off its models."""
    if get_origin(annotation) is None and isinstance(annotation, type):
        if issubclass(annotation, RootModel):
            return type_values(annotation.model_fields["root"].annotation)
        if issubclass(annotation, BaseModel):
            return frozenset(get_args(annotation.model_fields["type"].annotation))
        return frozenset()
    return frozenset().union(*(type_values(arg) for arg in get_args(annotation)))


# Prefixes OpenAI uses, so ids look familiar in logs and SDK debug output.
PREFIX = {
    "response": "resp",
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "reasoning": "rs",
    "compaction": "cmp",
    "item_reference": "ref",
    "call": "call",
    "mcp_list_tools": "mcpl",
    "mcp_call": "mcp",
    "mcp_approval_request": "mcpr",
    "web_search_call": "ws",
    "file_search_call": "fs",
    "conversation": "conv",
}


class _RandomPool:
    """Bytes from the operating system's CSPRNG, fetched 4 KiB at a time.

    `secrets.token_hex` makes one `getrandom` system call per id, and a system call releases
    the GIL: while the store's writer thread is busy, each one costs the request a wait for the
    GIL (measured: ~0.3 ms per id under load, three ids a response). One call per ~170 ids
    keeps the ids exactly as unguessable.
    """

    _SIZE = 4096

    def __init__(self) -> None:
        self._buffer = b""
        self._offset = 0
        self._lock = threading.Lock()  # ids are also made on worker threads

    def take(self, n: int) -> bytes:
        with self._lock:
            if self._offset + n > len(self._buffer):
                self._buffer, self._offset = os.urandom(self._SIZE), 0
            chunk = self._buffer[self._offset : self._offset + n]
            self._offset += n
            return chunk


_random = _RandomPool()


def new_id(kind: str) -> str:
    """A fresh, unguessable id with the OpenAI-style prefix for `kind`."""
    return f"{PREFIX.get(kind, 'item')}_{_random.take(24).hex()}"


def item_id(item: BaseModel) -> str:
    value = getattr(item, "id", None)
    if not isinstance(value, str):
        raise ValueError(f"{type(item).__name__} has no id")
    return value


def input_message(
    role: Any, content: list[Any], item_id: str | None = None
) -> m.InputMessageResource:
    """A stored input message (`InputMessageResource`) with `content` parts."""
    return m.InputMessageResource(
        id=item_id or new_id("message"),
        type="message",
        role=role,
        content=content,
        status="completed",
    )


def user_text(text: str, item_id: str | None = None) -> m.InputMessageResource:
    """A stored user message holding one `input_text` part."""
    return input_message("user", [m.InputTextContent(type="input_text", text=text)], item_id)
