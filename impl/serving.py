"""Serving the app with uvicorn, and stopping it within a bounded time.

On SIGTERM (or Ctrl-C) uvicorn stops accepting connections and closes WebSockets, and the
requests in flight get `shutdown_timeout` seconds to finish. Then the responses still
running end failed (stored, a stream's `response.failed` sent) and the requests still waiting
for a model's first event get a 503, which relayed chat streams end with too (core.background's
`Runs.stop`); uvicorn cancels anything else `BACKSTOP_SECONDS` later. The app's shutdown
follows: background responses are stored failed and the store is closed with its journal
flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import uvicorn
from prometheus_client import start_http_server

from openresponses.api.common import MAX_BODY_BYTES
from openresponses.app import create_app
from openresponses.config import Settings
from openresponses.core.background import Runs

BACKSTOP_SECONDS = 5.0
"""After the grace period, how long the stopped responses have to send their last events."""


class Server(uvicorn.Server):
    """uvicorn's server, which tells the responses in flight when it starts to stop."""

    def __init__(self, config: uvicorn.Config, runs: Runs, grace: float) -> None:
        super().__init__(config)
        self.runs = runs
        self.grace = grace

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        stopping = asyncio.ensure_future(self.runs.stop(self.grace))
        try:
            await super().shutdown(sockets)
        finally:
            stopping.cancel()


def serve(settings: Settings, log_level: str) -> None:
    """Run the server until it is told to stop."""
    runs = Runs()
    if settings.metrics_port is not None:
        # A thread of prometheus_client's own: scrapes never wait behind the API's loop.
        start_http_server(settings.metrics_port, addr=settings.host)
    config = uvicorn.Config(
        create_app(settings, runs),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        access_log=log_level == "debug",
        ws_max_size=MAX_BODY_BYTES,  # a WebSocket turn may be as large as an HTTP body
        # Typed int by uvicorn, which hands it to asyncio.wait_for: a float works as well.
        timeout_graceful_shutdown=settings.shutdown_timeout + BACKSTOP_SECONDS,  # type: ignore[arg-type]
    )
    # uvicorn re-raises the signal that stopped it once it is done: Ctrl-C is the way to stop
    # a server, not an error to print a traceback for (uvicorn.run swallows it alike).
    with contextlib.suppress(KeyboardInterrupt):
        Server(config, runs, settings.shutdown_timeout).run()
