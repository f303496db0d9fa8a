"""Every JSON error the server answers, in the one DESIGN.md envelope.

Hierarchy::

    APIError                      base: status, type, code, message, param
    ├── BadRequest                400 invalid_request_error (bad JSON, bad parameters)
    ├── Unauthorized              401 authentication_error  (missing, bad, expired credentials)
    ├── Forbidden                 403 permission_error      (role or key scope too low)
    ├── NotFound                  404 invalid_request_error (unknown, or another tenant's)
    ├── Conflict                  409 invalid_request_error (already exists, last owner)
    ├── PayloadTooLarge           413 invalid_request_error (body, or decompressed body)
    ├── UnsupportedMediaType      415 invalid_request_error (not JSON, unknown encoding)
    ├── Unprocessable             422 invalid_request_error (valid JSON, unacceptable content)
    ├── RateLimited               429 rate_limit_error      (carries Retry-After)
    └── StorageFull               507 api_error             (a project's stored-events quota)

Werkzeug's own HTTP errors (404 routes, 405 methods, 413 bodies) and unexpected exceptions (500)
are converted to the same shape, and so are the development server's 414 and 431 (see
`llmlab_server.limits`); a stack trace or HTML page never reaches the client.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, jsonify
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

__all__ = [
    "APIError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "StorageFull",
    "Unauthorized",
    "Unprocessable",
    "UnsupportedMediaType",
    "envelope",
    "error_body",
    "http_error_code",
    "init_app",
    "validation_message",
]

logger = logging.getLogger("llmlab_server")

_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def envelope(data: Any) -> dict[str, Any]:
    """The success envelope around ``data``."""
    return {"success": True, "data": data, "error": None, "timestamp": _now()}


def error_body(status: int, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    """The error envelope for ``status``."""
    kind = _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"success": False, "data": None,
            "error": {"type": kind, "code": code, "message": message, "param": param},
            "timestamp": _now()}


class APIError(Exception):
    """An error answered to the client as-is."""

    status = 400
    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.param = param
        self.headers = headers or {}


class BadRequest(APIError):
    """400: the request cannot be understood."""


class Unauthorized(APIError):
    """401: missing, malformed, expired or revoked credentials."""

    status = 401
    code = "unauthorized"


class Forbidden(APIError):
    """403: authenticated, but the role or key scope does not allow this."""

    status = 403
    code = "forbidden"


class NotFound(APIError):
    """404: no such resource visible to the caller."""

    status = 404
    code = "not_found"


class Conflict(APIError):
    """409: the resource exists already, or the change would break an invariant."""

    status = 409
    code = "conflict"


class PayloadTooLarge(APIError):
    """413: the body (or its decompressed form) is too large."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(APIError):
    """415: the body is not JSON, or its encoding is not supported."""

    status = 415
    code = "unsupported_media_type"


class Unprocessable(APIError):
    """422: well-formed, but not acceptable (e.g. too many events in one batch)."""

    status = 422
    code = "unprocessable"


class RateLimited(APIError):
    """429: the key's rate limit is exhausted; ``Retry-After`` says for how long."""

    status = 429
    code = "rate_limited"


class StorageFull(APIError):
    """507: the project stores as many events as its quota allows."""

    status = 507
    code = "storage_quota_exceeded"


def validation_message(exc: ValidationError) -> tuple[str, str | None]:
    """A short readable message and the first failing field from a pydantic error."""
    parts = []
    first: str | None = None
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"])
        first = first or loc or None
        parts.append(f"{loc}: {err['msg']}" if loc else str(err["msg"]))
    return "; ".join(parts), first


def _respond(status: int, body: dict[str, Any], headers: dict[str, str] | None = None
             ) -> Response:
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "payload_too_large", 414: "uri_too_long",
               415: "unsupported_media_type", 429: "rate_limited",
               431: "request_header_fields_too_large"}


def http_error_code(status: int) -> str:
    """The envelope's ``code`` for an HTTP error ``status`` (``http_error`` when unnamed)."""
    return _HTTP_CODES.get(status, "http_error")


def init_app(app: Flask) -> None:
    """Register the JSON handlers for our errors, Werkzeug's, pydantic's and the rest."""

    @app.errorhandler(APIError)
    def _api_error(exc: APIError) -> Response:
        return _respond(exc.status, error_body(exc.status, exc.code, exc.message, exc.param),
                        exc.headers)

    @app.errorhandler(ValidationError)
    def _validation_error(exc: ValidationError) -> Response:
        message, param = validation_message(exc)
        return _respond(400, error_body(400, "invalid_request", message, param))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = http_error_code(status)
        message = exc.description or exc.name
        headers = {"Allow": exc.response.headers["Allow"]} if (
            exc.response is not None and "Allow" in exc.response.headers) else None
        if status == 405 and headers is None:
            allowed = getattr(exc, "valid_methods", None)
            headers = {"Allow": ", ".join(allowed)} if allowed else None
        return _respond(status, error_body(status, code, message), headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        logger.exception("unhandled error: %r", exc)
        return _respond(500, error_body(500, "internal_error",
                                        "The server failed to handle this request."))
