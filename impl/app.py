"""The ASGI application: connexion routes the spec's operations to `openresponses.api`.

Connexion reads the generated OpenAPI 3.0 rendering of `spec/openapi.yaml` (as a loaded dict,
because connexion would otherwise render the YAML through Jinja2, and OpenAI's text contains
`{{…}}`), validates path and query parameters, and resolves each operationId through the
generated operations table (routing.py: which of connexion's per-request work is kept).
Request bodies are validated by the handlers with the generated pydantic models (see
api/common.py). Every error leaves in OpenAI's error shape.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import import_module, resources
from typing import Any

from connexion import AsyncApp
from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from connexion.resolver import Resolver
from prometheus_client import make_asgi_app
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from openresponses import tracing
from openresponses.api import health, websocket
from openresponses.api.dialects import error_body, select
from openresponses.api.request_ids import RequestIds
from openresponses.api.routing import MIDDLEWARES, VALIDATORS, OperationsApi
from openresponses.config import Dialect, Settings
from openresponses.core.background import Runs
from openresponses.core.services import Services, open_services
from openresponses.errors import APIError, ErrorKind
from openresponses.generated.operations import OPERATIONS

log = logging.getLogger("openresponses")

_STATUS_KIND = {
    400: ErrorKind.INVALID_REQUEST,
    401: ErrorKind.AUTHENTICATION,
    403: ErrorKind.AUTHENTICATION,
    404: ErrorKind.NOT_FOUND,
    405: ErrorKind.INVALID_REQUEST,
    409: ErrorKind.CONFLICT,
    413: ErrorKind.TOO_LARGE,
    415: ErrorKind.INVALID_REQUEST,
    429: ErrorKind.RATE_LIMIT,
}


def load_spec() -> dict[str, Any]:
    text = resources.files("openresponses.generated").joinpath("openapi.json").read_text("utf-8")
    spec: dict[str, Any] = json.loads(text)
    return spec


def _resolve(operation_id: str) -> Any:
    module, function = OPERATIONS[operation_id].handler.rsplit(".", 1)
    return getattr(import_module(f"openresponses.api.{module}"), function)


def _dialect(request: ConnexionRequest) -> Dialect:
    services: Services | None = getattr(request.state, "services", None)
    default = services.settings.dialect if services else Dialect.OPENAI
    return select(request.headers, default)


def _reply(request: ConnexionRequest, error: APIError) -> ConnexionResponse:
    return ConnexionResponse(
        status_code=error.status,
        content_type="application/json",
        body=json.dumps(error_body(error, _dialect(request))).encode(),
        headers=error.headers,
    )


async def _api_error(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, APIError)
    return _reply(request, exc)


async def _http_error(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """connexion's and starlette's own errors (bad parameters, unknown routes…)."""
    status = int(getattr(exc, "status", None) or getattr(exc, "status_code", None) or 500)
    detail = str(getattr(exc, "detail", None) or getattr(exc, "title", None) or "Request failed.")
    detail = detail.splitlines()[0]  # connexion appends the whole failing schema
    if status == 404:
        detail = f"Unknown request URL: {request.method} {request.url.path}."
    elif status == 405:
        detail = f"Method {request.method} is not allowed on {request.url.path}."
    elif status == 400:
        detail = f"Invalid request parameter: {detail}"
    kind = _STATUS_KIND.get(status, ErrorKind.SERVER)
    headers = {"Allow": _allowed(request.url.path)} if status == 405 else {}
    return _reply(request, APIError(kind, detail, status=status, headers=headers))


def _path_pattern(template: str) -> re.Pattern[str]:
    return re.compile("/v1" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "/?")


_METHODS: dict[re.Pattern[str], list[str]] = {}
for _operation in OPERATIONS.values():
    _METHODS.setdefault(_path_pattern(_operation.path), []).append(_operation.method.upper())


def _allowed(path: str) -> str:
    """The `Allow` header RFC 9110 requires on a 405: every method the spec serves at `path`
    (starlette's own names only the first operation's route that matched)."""
    matching = [pattern for pattern in _METHODS if pattern.fullmatch(path)]
    # A literal path (`/responses/compact`) is that operation's, not `/responses/{id}`'s.
    literal = [pattern for pattern in matching if "[^/]+" not in pattern.pattern]
    methods = {method for pattern in literal or matching for method in _METHODS[pattern]}
    if "GET" in methods:
        methods.add("HEAD")  # starlette answers HEAD wherever it answers GET
    return ", ".join(sorted(methods))


async def _unexpected(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    if isinstance(exc, UnicodeDecodeError):
        error = APIError(ErrorKind.INVALID_REQUEST, "The request is not valid UTF-8.")
        return _reply(request, error)
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _reply(
        request, APIError(ErrorKind.SERVER, "The server had an error processing your request.")
    )


class _BesideConnexion:
    """connexion serves the spec's HTTP operations; beside it are WebSocket mode at
    `/v1/responses` (connexion routes HTTP only), the health probes (see api.health) and
    `GET /metrics` (no part of the API: no key, not in the spec). Lifespan messages go to
    connexion, whose state reaches all of them."""

    def __init__(self, app: AsyncApp, metrics: bool) -> None:
        self.app = app
        self.metrics = metrics
        """Whether `/metrics` is served here (not on a port of its own)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.metrics and scope["type"] == "http" and scope["path"] == METRICS_PATH:
            await _METRICS(scope, receive, send)
        elif scope["type"] == "http" and scope["path"] in health.PATHS:
            await health.serve(scope, receive, send)
        elif scope["type"] != "websocket":
            await self.app(scope, receive, send)
        elif scope["path"].rstrip("/") == WEBSOCKET_PATH:
            await websocket.serve(scope, receive, send)
        else:
            await websocket.not_found(scope, receive, send)


WEBSOCKET_PATH = "/v1/responses"
METRICS_PATH = "/metrics"
_METRICS = make_asgi_app()


async def _auth_line(services: Services) -> str:
    """How the server checks callers, for its start-up banner."""
    if await services.keys.required():
        listed = len(services.settings.api_keys)
        extra = f", {listed} from OPENRESPONSES_API_KEYS" if listed else ""
        return (
            f"  auth: API keys, each of one project (`openresponses keys`{extra}); "
            "providers without a key of their own get none"
        )
    return (
        "  auth: none: anyone who reaches the port is served, all in one project, and "
        "providers without a key get the client's bearer token (create a key with "
        "`openresponses keys create --project NAME` before exposing the port)"
    )


def create_app(settings: Settings, runs: Runs | None = None) -> ASGIApp:
    """The server for `settings`; services start and stop with the ASGI lifespan. `runs`
    (the responses in flight) is given by a caller that tells them when the server stops."""
    runs = runs or Runs()

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[dict[str, Any]]:
        async with open_services(settings, runs) as services:
            print(await _auth_line(services), flush=True)
            yield {"services": services}
        tracing.shutdown()

    app = AsyncApp(__name__, lifespan=lifespan, validator_map=VALIDATORS, middlewares=MIDDLEWARES)
    app._middleware_app.api_cls = OperationsApi
    app.add_api(
        load_spec(),
        resolver=Resolver(_resolve),
        validate_responses=False,
        strict_validation=False,
    )
    app.add_error_handler(APIError, _api_error)
    app.add_error_handler(ProblemException, _http_error)
    app.add_error_handler(HTTPException, _http_error)
    app.add_error_handler(Exception, _unexpected)
    inner: ASGIApp = _BesideConnexion(app, metrics=settings.metrics_port is None)
    if tracing.ENABLED:
        tracing.setup()
        inner = tracing.Traced(inner)
    return RequestIds(inner)
