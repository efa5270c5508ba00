"""`POST /v1/embeddings` (operationId createEmbedding).

`all-MiniLM-L6-v2` runs here (see vectors.embedders); any other model is routed like chat
(`openai@text-embedding-3-small`, or a bare name to the default provider) and the provider's
answer is relayed. Token-array inputs are OpenAI tokens; for the local model they are decoded
with `cl100k_base`, the encoding of OpenAI's embedding models, and embedded as text.
"""

from __future__ import annotations

import base64
from typing import Any

import tiktoken
from starlette.responses import Response

from openresponses import tokens
from openresponses.api.common import (
    caller,
    current,
    json_response,
    read_body,
    services,
    unless_gone,
)
from openresponses.errors import invalid
from openresponses.generated import openai_models as m
from openresponses.ratelimit.limiter import reported_tokens
from openresponses.vectors.embedders import LOCAL_NAMES

_OPENAI_ENCODING_MODEL = "text-embedding-3-small"


def texts(value: Any) -> list[str]:
    """The request's `input` as texts: a string, strings, a token array or token arrays."""
    raw = value.root if hasattr(value, "root") else value
    items: list[Any] = [raw] if isinstance(raw, str) else list(raw)
    if items and isinstance(items[0], int):  # one token array
        return [_decode(items, "input")]
    out = []
    for index, item in enumerate(items):
        item = item.root if hasattr(item, "root") else item
        out.append(item if isinstance(item, str) else _decode(list(item), f"input[{index}]"))
    if any(not text for text in out):
        raise invalid("'input' must not contain an empty string.", param="input")
    return out


def _decode(ids: list[int], param: str) -> str:
    """OpenAI tokens as text; a 400 naming the first id the encoding does not have."""
    encoding, _ = tokens.encoding_for(_OPENAI_ENCODING_MODEL)
    try:
        return encoding.decode(ids)
    except (KeyError, OverflowError, ValueError):  # a gap in the vocabulary, or out of range
        index, token = next((i, t) for i, t in enumerate(ids) if not _known(encoding, t))
        raise invalid(
            f"Invalid value for '{param}[{index}]': {token} is not a token id of {encoding.name}.",
            param=f"{param}[{index}]",
            code="invalid_value",
        ) from None


def _known(encoding: tiktoken.Encoding, token: int) -> bool:
    try:
        encoding.decode_single_token_bytes(token)
    except (KeyError, OverflowError, ValueError):
        return False
    return True


def _encode(vector: Any, encoding_format: str | None) -> Any:
    """A row as OpenAI sends it: floats, or base64 of little-endian float32."""
    if encoding_format == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode()
    return vector.tolist()


async def create_embedding() -> Response:
    req = current()
    body = await read_body(req)
    assert isinstance(body, m.CreateEmbeddingRequest)
    found = services(req)
    model = str(body.model)
    if model.lower() not in LOCAL_NAMES:
        who = caller(req)
        provider, upstream_model = found.registry.route(model, who.provider, who.project_name)
        forwarded = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
        forwarded["model"] = upstream_model
        call = provider.embeddings(forwarded, api_key=who.upstream_key)
        answer = await unless_gone(req, call)
        await found.limiter.spend(who.key, reported_tokens(answer))
        return json_response(answer)
    embedder = found.embedder
    if body.dimensions is not None and body.dimensions != embedder.dimensions:
        raise invalid(
            f"Model '{model}' makes {embedder.dimensions}-dimensional vectors only; "
            f"'dimensions' cannot be {body.dimensions}.",
            param="dimensions",
            code="invalid_value",
        )
    embedded = await embedder.embed(texts(body.input))
    await found.limiter.spend(caller(req).key, embedded.tokens)
    # Plain JSON: with base64, `embedding` is a string, which OpenAI's Embedding schema omits.
    return json_response(
        {
            "object": "list",
            "data": [
                {
                    "object": "embedding",
                    "index": index,
                    "embedding": _encode(row, body.encoding_format),
                }
                for index, row in enumerate(embedded.vectors)
            ],
            "model": embedder.name,
            "usage": {"prompt_tokens": embedded.tokens, "total_tokens": embedded.tokens},
        }
    )
