"""Serve an ASGI app from a background thread on a free loopback port, for the test's life.

Scripted upstreams and deliberately broken targets are reached the way real ones are: over a
real socket, through uvicorn, so clients' HTTP handling is exercised for real.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp


class LoopbackServer:
    """`start()` returns once the app accepts connections; `stop()` cancels what is in flight
    after a second's grace. `http="h11"` is the default because tests that hang up on clients
    rely on its request cycle."""

    def __init__(
        self, app: ASGIApp, *, name: str, http: str = "h11", lifespan: bool = False
    ) -> None:
        self.app = app
        self.name = name
        self.http = http
        self.lifespan = lifespan  # apps with a lifespan (the MCP server's) need it run
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError(f"{self.name} is not started")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} is already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            http=self.http,  # type: ignore[arg-type]
            loop="asyncio",
            lifespan="on" if self.lifespan else "off",
            log_config=None,  # leave the test process's logging alone; errors still propagate
            log_level="warning",
            access_log=False,
            proxy_headers=False,
            timeout_graceful_shutdown=1,  # a slow reply in flight must not hold up stop()
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=self.name, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"{self.name} failed to start")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start within 10 s")
            time.sleep(0.005)

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=5)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None
