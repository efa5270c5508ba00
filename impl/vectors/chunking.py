"""Token-based chunking, as OpenAI's vector stores do it.

Text is cut into windows of `max_chunk_size_tokens` tokens (cl100k_base, the encoding of
OpenAI's embedding models) that overlap by `chunk_overlap_tokens`; `auto` is 800 and 400.
Each chunk keeps its character offsets in the text, found from the token offsets, so a chunk
is exactly a slice of the parsed text.

With the local model, only a chunk's first 256 word pieces shape its vector (the model's
limit); the whole chunk is searched by keyword (BM25) and returned.
"""

from __future__ import annotations

from typing import Any

from openresponses import tokens
from openresponses.errors import invalid
from openresponses.vectors.index import Chunk

AUTO = {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}


def strategy(requested: Any) -> dict[str, Any]:
    """The chunking strategy as stored and reported (`auto` becomes its static values)."""
    if requested is None or getattr(requested, "type", None) == "auto":
        return {"type": "static", "static": dict(AUTO)}
    static = requested.static
    size, overlap = static.max_chunk_size_tokens, static.chunk_overlap_tokens
    if overlap < 0 or overlap > size // 2:
        raise invalid(
            "chunk_overlap_tokens must be between 0 and half of max_chunk_size_tokens.",
            param="chunking_strategy.static.chunk_overlap_tokens",
            code="invalid_value",
        )
    return {
        "type": "static",
        "static": {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap},
    }


def chunk(text: str, chosen: dict[str, Any]) -> list[Chunk]:
    """`text` in overlapping token windows; nothing for blank text."""
    if not text.strip():
        return []
    size = chosen["static"]["max_chunk_size_tokens"]
    step = size - chosen["static"]["chunk_overlap_tokens"]
    encoding, _ = tokens.encoding_for("text-embedding-3-small")
    ids = encoding.encode(text, disallowed_special=())
    decoded, offsets = encoding.decode_with_offsets(ids)
    if decoded != text:  # cannot happen for valid text; never store misplaced offsets
        offsets = [min(offset, len(text)) for offset in offsets]
    out = []
    for start in range(0, len(ids), step):
        end = min(start + size, len(ids))
        first = offsets[start]
        last = offsets[end] if end < len(ids) else len(text)
        out.append(Chunk(text[first:last], first, last))
        if end == len(ids):
            break
    return out
