"""`GET /healthz` (the process serves) and `GET /readyz` (it can serve requests: see
core.health), for load balancers and orchestrators.

They are served beside connexion, not in the spec: outside `/v1`, API-key auth and rate
limits, since a probe holds no key and must not spend a client's limits.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from openresponses.api.dialects import error_body
from openresponses.config import Dialect
from openresponses.core.health import OK, readiness
from openresponses.core.services import Services
from openresponses.errors import APIError, ErrorKind

PATHS = frozenset({"/healthz", "/readyz"})


async def serve(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers a request to one of `PATHS`."""
    if scope["method"] not in ("GET", "HEAD"):
        message = f"Method {scope['method']} is not allowed on {scope['path']}."
        error = APIError(ErrorKind.INVALID_REQUEST, message, status=405)
        response = JSONResponse(error_body(error, Dialect.OPENAI), 405, {"Allow": "GET, HEAD"})
    elif scope["path"] == "/healthz":
        response = JSONResponse({"status": OK})
    else:
        services: Services = scope["state"]["services"]
        checks = await readiness(services)
        ready = all(result == OK for result in checks.values())
        body = {"status": "ready" if ready else "unavailable", "checks": checks}
        response = JSONResponse(body, 200 if ready else 503)
    await response(scope, receive, send)
