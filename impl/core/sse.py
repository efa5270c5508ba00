"""Server-sent events framing: the one function every stream is written through.

Each event is one complete frame: an `event:` line equal to the JSON `type`, the JSON on a
single `data:` line, a blank line. No `id:` lines (the Open Responses spec asks servers not
to use them, and OpenAI sends none either).
"""

from __future__ import annotations

from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"


def frame(data: dict[str, Any]) -> bytes:
    kind: str = data["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
