"""How connexion runs the spec's operations: its routing and parameter checks, minus the
per-request work our handlers make unnecessary.

connexion builds much of its machinery anew on every request: a URI parser and a parameter
validator per request, and a decoration of the handler (signature inspection, arguments
mapped from the request, the return value converted). On a small `POST /v1/responses` that
was about a third of the server's CPU. Handlers validate bodies themselves with the
generated pydantic models (api/common.py), and those without parameters read the request
themselves and return a Starlette response; for them connexion's work would be empty, so it
is skipped. Operations with path or query parameters keep all of it: connexion types and
checks those parameters against the spec.
"""

from __future__ import annotations

import inspect
from collections.abc import MutableMapping
from typing import Any

from connexion.apps.asynchronous import AsyncApi, AsyncOperation
from connexion.datastructures import MediaTypeDict
from connexion.middleware.context import ContextMiddleware
from connexion.middleware.exceptions import ExceptionMiddleware
from connexion.middleware.lifespan import LifespanMiddleware
from connexion.middleware.request_validation import (
    RequestValidationAPI,
    RequestValidationMiddleware,
    RequestValidationOperation,
)
from connexion.middleware.routing import RoutingMiddleware
from connexion.middleware.server_error import ServerErrorMiddleware
from connexion.validators import VALIDATOR_MAP
from starlette.types import Receive, Scope, Send

from openresponses.api.auth import ApiKeyMiddleware
from openresponses.api.metered import RequestMetrics
from openresponses.api.ratelimits import RateLimitHeaders
from openresponses.files.limits import UploadLimitMiddleware


class _UnvalidatedBody:
    """connexion's body validator, letting the body through: handlers validate it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    async def wrap_receive(self, receive: Any, *, scope: MutableMapping[str, Any]) -> Any:
        return receive, scope


VALIDATORS = {**VALIDATOR_MAP, "body": MediaTypeDict({"*/*": _UnvalidatedBody})}


class _Validation(RequestValidationOperation):
    """Parameters are checked where the operation has any; the media type always (a 415)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._operation.parameters:
            await super().__call__(scope, receive, send)
            return
        mime_type, _ = self.extract_content_type(scope["headers"])
        self.validate_mime_type(mime_type)
        await self.next_app(scope, receive, send)


class _ValidationApi(RequestValidationAPI):
    def make_operation(self, operation: Any) -> RequestValidationOperation:
        return _Validation(
            self.next_app,
            operation=operation,
            strict_validation=self.strict_validation,
            validator_map=self.validator_map,
        )


class _RequestValidation(RequestValidationMiddleware):
    api_cls = _ValidationApi


class _Operation(AsyncOperation):
    """A handler without parameters is called directly; the others are decorated once (by
    connexion, per request)."""

    def __init__(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(fn, *args, **kwargs)
        self._direct = not inspect.signature(fn).parameters
        self._decorated = super().fn

    @property
    def fn(self) -> Any:
        return self._decorated

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        response = await (self._fn() if self._direct else self._decorated())
        return await response(scope, receive, send)


class OperationsApi(AsyncApi):
    """The API connexion's app mounts, running `_Operation`s (connexion has no argument for
    its operation class: set it as the app's `api_cls`)."""

    def make_operation(self, operation: Any) -> AsyncOperation:
        return _Operation.from_operation(
            operation, pythonic_params=self.pythonic_params, jsonifier=self.jsonifier
        )


# connexion's stack without Swagger UI (not installed), connexion's security (the server
# checks its own keys, if any, in ApiKeyMiddleware), or response validation (tests do that).
# RateLimitHeaders is outside ExceptionMiddleware, whose error answers get them too;
# RequestMetrics outside all, so that it counts every answer.
MIDDLEWARES = [
    RequestMetrics,
    ServerErrorMiddleware,
    RateLimitHeaders,
    ExceptionMiddleware,
    ApiKeyMiddleware,
    UploadLimitMiddleware,
    RoutingMiddleware,
    _RequestValidation,
    LifespanMiddleware,
    ContextMiddleware,
]
