"""What kind of file some bytes are, for the data URLs that carry them to a model.

Uploads are stored without a content type (OpenAI's file object has none), so the type is
read off the bytes where a signature says it for certain (images, PDF), else guessed from
the file name; providers choose how to send a file by this type (core.attachments,
providers.anthropic).
"""

from __future__ import annotations

import base64
import mimetypes

_IMAGES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
"""Signatures of the image types every vision provider takes (WEBP is checked apart: its
signature has the file size in the middle)."""

_PDF = b"%PDF-"
_OCTET = "application/octet-stream"


def image_type(data: bytes) -> str | None:
    """The media type of an image in a format vision models take, else None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in _IMAGES if data.startswith(magic)), None)


def file_type(data: bytes, filename: str | None, declared: str | None = None) -> str:
    """The media type of a file: its signature's, else `declared` (a server's Content-Type)
    unless that says nothing more than "bytes", else its name's, else bytes."""
    if data.startswith(_PDF):
        return "application/pdf"
    known = image_type(data)
    if known is not None:
        return known
    if declared and declared != _OCTET:
        return declared
    guessed, _ = mimetypes.guess_type(filename or "", strict=False)
    return guessed or _OCTET


def data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"
