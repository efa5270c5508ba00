"""Compaction: a conversation folded into an input window of the user's messages and a summary.

`POST /v1/responses/compact` asks the requested model for a summary of everything but the
user's own messages (its answers, tool calls and their results), and returns the user's
messages verbatim followed by one `compaction` item holding that summary. The client sends
the window back as input; before any provider sees it, `expand` turns each compaction item
into a plain user message that introduces the summary, which every chat model understands.

`encrypted_content` is *sealed*, not encrypted: zlib-compressed JSON with an HMAC-SHA256 tag
under the server's secret. The summary is the model's account of the client's own
conversation, so there is nothing to hide from the client; the tag makes sure that what the
server later hands a model as its own summary is one it wrote (and was not altered), and
lets every replica that shares the secret read it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
import zlib
from pathlib import Path

from openresponses.errors import invalid
from openresponses.generated import openai_models as m
from openresponses.items import Item, new_id, user_text

PREFIX = "orc1."
"""Marks our sealed format and its version, so a later format can still read this one."""

INSTRUCTIONS = (
    "You are compacting a conversation so that it can continue with less context. Write a "
    "summary of the conversation so far for your own later use: facts learned, decisions "
    "made, names and numbers, tool calls and what they returned, and what was still to be "
    "done. The user's own messages are kept verbatim, so do not repeat them; keep everything "
    "else that matters. Write plain, dense notes, no preamble."
)

PREAMBLE = "Summary of the earlier part of this conversation, written by the assistant:"
"""What a model reads before an expanded summary."""


def load_secret(data_dir: Path, env_value: str | None) -> bytes:
    """The sealing key: `OPENRESPONSES_SECRET` when set (replicas must share one), else a
    random key kept in `data_dir/secret.key`, made on first start."""
    if env_value:
        return hashlib.sha256(env_value.encode()).digest()
    path = data_dir / "secret.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        # Written aside and linked into place: a server starting beside this one either makes
        # the key or finds it whole, never half-written.
        temporary = data_dir / f"secret.key.{os.getpid()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
        try:
            os.link(temporary, path)  # fails if another process got there first: use theirs
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return path.read_bytes()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(key: bytes, summary: str, model: str) -> str:
    payload = json.dumps({"summary": summary, "model": model, "created_at": int(time.time())})
    body = _b64(zlib.compress(payload.encode()))
    tag = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    return f"{PREFIX}{body}.{tag}"


def unseal(key: bytes, sealed: str) -> str | None:
    """The summary in `sealed`, or None when this server did not write it or it was altered."""
    if not sealed.startswith(PREFIX):
        return None
    body, _, tag = sealed[len(PREFIX) :].rpartition(".")
    expected = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(tag, expected):
        return None
    try:
        summary = json.loads(zlib.decompress(_unb64(body)))["summary"]
    except (ValueError, KeyError, TypeError, zlib.error):
        return None
    return summary if isinstance(summary, str) else None


def item(key: bytes, summary: str, model: str) -> m.CompactionBody:
    return m.CompactionBody(
        type="compaction", id=new_id("compaction"), encrypted_content=seal(key, summary, model)
    )


def expand(key: bytes, items: list[Item]) -> list[Item]:
    """`items` with each compaction item replaced by a user message holding its summary."""
    expanded: list[Item] = []
    for entry in items:
        if not isinstance(entry, m.CompactionBody):
            expanded.append(entry)
            continue
        summary = unseal(key, entry.encrypted_content)
        if summary is None:
            raise invalid(
                f"The compaction item '{entry.id}' was not produced by this server, or was "
                "altered: its encrypted_content does not verify.",
                param="input",
                code="invalid_encrypted_content",
            )
        expanded.append(user_text(f"{PREAMBLE}\n\n{summary}", entry.id))
    return expanded


def kept(items: list[Item]) -> list[Item]:
    """What a compacted window keeps verbatim: the user's messages, in order."""
    return [
        entry
        for entry in items
        if getattr(entry, "type", None) == "message" and getattr(entry, "role", None) == "user"
    ]
