"""Every HTTP request counted for `GET /metrics`: by the spec's operationId (the one connexion
routed it to) and status code, and timed to the end of its answer."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openresponses import metrics

_ROUTING = "connexion_routing"
"""Where connexion's routing names the operation, in the scope's `extensions`."""


class RequestMetrics:
    """The outermost middleware: it sees every answer, the 500s of unhandled errors too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # connexion routes a shallow copy of the scope: a dict made here is shared with it,
        # and holds the operation once routed.
        routing: dict[str, Any] = scope.setdefault("extensions", {}).setdefault(_ROUTING, {})
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            operation = routing.get("operation_id") or metrics.UNKNOWN_OPERATION
            metrics.request(operation, status, time.perf_counter() - started)
