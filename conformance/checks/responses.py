"""`POST /responses` without streaming: the response object and the basic request shapes."""

from __future__ import annotations

import base64
import struct
import zlib

from openresponses.conformance.checks.common import (
    OR_SPEC,
    require_completed,
    require_text_answer,
    user,
)
from openresponses.conformance.context import Context
from openresponses.conformance.outcomes import require
from openresponses.conformance.registry import check


def _png_data_url(size: int = 32) -> str:
    """A small red square as a PNG data URL, built here so its bytes are known to be valid."""
    row = b"\x00" + b"\xdd\x22\x22" * size  # filter byte, then RGB pixels
    raw = zlib.compress(row * size)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
    return "data:image/png;base64," + base64.b64encode(png).decode()


@check("response.basic", "Basic text response", f"{OR_SPEC} §HTTP Responses")
def basic(ctx: Context) -> str:
    response = ctx.shared(
        "basic", lambda: ctx.create(ctx.body(input=[user("Say hello in exactly 3 words.")]))
    )
    require(response.get("object") == "response", f"$.object is {response.get('object')!r}")
    return f"said {require_text_answer(response)[:60]!r}"


@check("response.string_input", "input as a plain string", f"{OR_SPEC} §Items")
def string_input(ctx: Context) -> None:
    require_text_answer(ctx.create(ctx.body(input="Say hello.")))


@check("response.usage", "Usage adds up", f"{OR_SPEC} §HTTP Responses")
def usage(ctx: Context) -> str:
    response = ctx.shared(
        "basic", lambda: ctx.create(ctx.body(input=[user("Say hello in exactly 3 words.")]))
    )
    counts = response.get("usage")
    require(isinstance(counts, dict), "the completed response has no usage")
    assert isinstance(counts, dict)
    tokens = {k: counts.get(k) for k in ("input_tokens", "output_tokens", "total_tokens")}
    require(
        all(isinstance(v, int) and v >= 0 for v in tokens.values()),
        f"$.usage token counts are not non-negative integers: {tokens}",
    )
    require(
        tokens["total_tokens"] == tokens["input_tokens"] + tokens["output_tokens"],  # type: ignore[operator]
        f"$.usage.total_tokens {tokens['total_tokens']} is not input + output {tokens}",
    )
    return f"{tokens}"


@check("response.instructions", "instructions are applied and echoed", f"{OR_SPEC} §Items")
def instructions(ctx: Context) -> None:
    text = "You are a terse assistant. Answer in one short sentence."
    response = ctx.create(ctx.body(instructions=text, input="What colour is the sky?"))
    require_text_answer(response)
    require(
        response.get("instructions") == text,
        f"$.instructions is {response.get('instructions')!r}, not the instructions sent",
    )


@check("response.system_prompt", "A system message in the input", f"{OR_SPEC} §Items")
def system_prompt(ctx: Context) -> None:
    system = {
        "type": "message",
        "role": "system",
        "content": "You are a pirate. Always respond in pirate speak.",
    }
    require_text_answer(ctx.create(ctx.body(input=[system, user("Say hello.")])))


@check("response.multi_turn_input", "Conversation history in the input", f"{OR_SPEC} §Items")
def multi_turn_input(ctx: Context) -> None:
    history = [
        user("My name is Alice."),
        {"type": "message", "role": "assistant", "content": "Hello Alice! How can I help?"},
        user("What is my name?"),
    ]
    require_text_answer(ctx.create(ctx.body(input=history)))


@check("response.image_input", "An input_image given as a data URL", f"{OR_SPEC} §Content")
def image_input(ctx: Context) -> None:
    content = [
        {"type": "input_text", "text": "What do you see in this image? Answer in one sentence."},
        {"type": "input_image", "image_url": _png_data_url()},
    ]
    message = {"type": "message", "role": "user", "content": content}
    require_text_answer(ctx.create(ctx.body(input=[message])))


@check(
    "response.assistant_phase",
    "Assistant input messages carry phase",
    f"{OR_SPEC} §Items (message phase)",
)
def assistant_phase(ctx: Context) -> None:
    def assistant(text: str, phase: str) -> dict[str, object]:
        part = {"type": "output_text", "text": text, "annotations": []}
        return {"type": "message", "role": "assistant", "content": [part], "phase": phase}

    history = [
        user("Plan a short answer, then give it: what is 2 + 2?"),
        assistant("I will add the numbers.", "commentary"),
        assistant("4", "final_answer"),
        user("And 3 + 3?"),
    ]
    require_text_answer(ctx.create(ctx.body(input=history)))


@check("response.metadata", "metadata is stored and echoed", f"{OR_SPEC} §HTTP Responses")
def metadata(ctx: Context) -> None:
    sent = {"suite": "conformance", "case": "metadata"}
    response = ctx.create(ctx.body(input="Say hello.", metadata=sent))
    require_completed(response)
    require(response.get("metadata") == sent, f"$.metadata is {response.get('metadata')!r}")
