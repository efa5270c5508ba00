"""The upload size limit (`OPENRESPONSES_MAX_FILE_BYTES`), enforced while the body arrives.

connexion parses a multipart body completely before any handler runs, so the handler would
see an oversized upload only after it had been spooled to disk. This middleware refuses it
first: at once when `Content-Length` says it is too large, otherwise as soon as the bytes
received pass the limit (a chunked upload declares no length).
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openresponses.errors import APIError, ErrorKind

# Room for the multipart framing and the other form fields around the file itself.
_FORM_OVERHEAD = 64 * 1024


def too_large(limit: int) -> APIError:
    return APIError(
        ErrorKind.TOO_LARGE,
        f"The file is larger than this server's limit of {limit} bytes "
        "(OPENRESPONSES_MAX_FILE_BYTES).",
        param="file",
        code="file_too_large",
    )


class UploadLimitMiddleware:
    """Sits inside connexion's exception handling, so the 413 leaves in the API's shape."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope) if scope["type"] == "http" else None
        if headers is None or not headers.get("content-type", "").startswith("multipart/"):
            await self.app(scope, receive, send)
            return
        limit = _limit(scope)
        allowed = limit + _FORM_OVERHEAD
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > allowed:
            raise too_large(limit)
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > allowed:
                raise too_large(limit)
            return message

        await self.app(scope, counted, send)


def _limit(scope: Scope) -> int:
    services: Any = scope.get("state", {}).get("services")
    return int(services.settings.max_file_bytes)
