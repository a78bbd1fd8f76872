"""One JSON error format for every route: {"error": code, "message": ...}."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error with an HTTP status and a stable machine-readable code."""

    status = 500
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        details: Any = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}  # e.g. Retry-After, sent with the error
        if code:
            self.code = code
        if status:
            self.status = status

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class Unprocessable(ApiError):
    status, code = 422, "unprocessable"


class RateLimited(ApiError):
    """A dependency asked us to come back later than this request can wait (its Retry-After travels on)."""

    status, code = 429, "rate_limited"


class UpstreamError(ApiError):
    """A dependency answered, but not usefully (bad JSON, 4xx/5xx)."""

    status, code = 502, "upstream_error"


class NotConfigured(ApiError):
    status, code = 503, "not_configured"


class Unavailable(ApiError):
    status, code = 503, "unavailable"


class DeadlineExceeded(ApiError):
    status, code = 504, "deadline_exceeded"
