"""Errors as the API reports them.

Everything that can go wrong is raised as an `APIError` with a dialect-neutral `kind`;
`api.dialects` decides how a kind is spelled (`invalid_request_error` for OpenAI's SDKs,
`invalid_request` for the Open Responses spec). The status code is part of the error, so a
handler never has to pick one.
"""

from __future__ import annotations

from enum import Enum


class ErrorKind(Enum):
    INVALID_REQUEST = "invalid_request"
    AUTHENTICATION = "authentication"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"
    RATE_LIMIT = "rate_limit"
    MODEL = "model"  # the upstream model or provider failed
    SERVER = "server"


DEFAULT_STATUS = {
    ErrorKind.INVALID_REQUEST: 400,
    ErrorKind.AUTHENTICATION: 401,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.TOO_LARGE: 413,
    ErrorKind.RATE_LIMIT: 429,
    ErrorKind.MODEL: 502,
    ErrorKind.SERVER: 500,
}


class APIError(Exception):
    """An error with everything the client needs to see, and nothing it must not."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.param = param
        self.code = code
        self.status = status or DEFAULT_STATUS[kind]
        self.headers = headers or {}


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(ErrorKind.INVALID_REQUEST, message, param=param, code=code)


def not_found(message: str, *, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(ErrorKind.NOT_FOUND, message, param=param, code=code)


def conflict(message: str, *, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(ErrorKind.CONFLICT, message, param=param, code=code)
