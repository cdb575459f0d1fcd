"""The one error hierarchy: every FastrouteError knows its HTTP status and OpenAI error type/code.

Pure: must not import aiohttp. The server renders these through `error_body`.
"""

from __future__ import annotations

from typing import Any, ClassVar


class FastrouteError(Exception):
    """Base of every error fastroute answers with. Subclasses set the class attributes."""

    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    code: ClassVar[str | None] = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers: dict[str, str] = dict(headers or {})
        self._status = status

    @property
    def http_status(self) -> int:
        return self._status if self._status is not None else self.status

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.error_type, self.code, self.param)


def error_body(message: str, error_type: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    """The OpenAI error shape: `{"error": {"message", "type", "param", "code"}}`."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


class InvalidRequest(FastrouteError):
    status = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class MalformedJSON(InvalidRequest):
    code = "invalid_json"


class UnsupportedMediaType(InvalidRequest):
    status = 415
    code = "unsupported_media_type"


class PayloadTooLarge(InvalidRequest):
    status = 413
    code = "payload_too_large"


class RequestTimeout(InvalidRequest):
    """The client sent its request too slowly (slow-body / slowloris protection)."""

    status = 408
    code = "request_timeout"


class ContextLengthExceeded(InvalidRequest):
    code = "context_length_exceeded"


class ModelNotFound(InvalidRequest):
    status = 404
    code = "model_not_found"


class NotFound(InvalidRequest):
    status = 404
    code = "not_found"


class MethodNotAllowed(InvalidRequest):
    status = 405
    code = "method_not_allowed"


class AuthenticationError(FastrouteError):
    status = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(FastrouteError):
    status = 403
    error_type = "permission_error"
    code = "permission_denied"


class ResidencyUnavailable(PermissionDenied):
    """No deployment inside the application's allowed regions/providers can serve the request (compliance)."""

    code = "residency_unavailable"


class PolicyViolation(FastrouteError):
    """A request refused by governance (PII block, content rule, forbidden tier)."""

    status = 400
    error_type = "invalid_request_error"
    code = "policy_violation"


class RateLimited(FastrouteError):
    status = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class BudgetExceeded(RateLimited):
    code = "budget_exceeded"


class Overloaded(FastrouteError):
    status = 503
    error_type = "server_error"
    code = "overloaded"


class StateUnavailable(FastrouteError):
    """Shared governance state (Redis, or the workers' shared table) is unreachable or full: budgets cannot be
    checked, so refuse (fail closed)."""

    status = 503
    error_type = "server_error"
    code = "state_unavailable"


class UpstreamError(FastrouteError):
    """An upstream answered with an error or not at all; `retryable` drives fallback."""

    status = 502
    error_type = "upstream_error"
    code = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        upstream_status: int | None = None,
        reason: str = "upstream_error",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, status=status, headers=headers)
        self.retryable = retryable
        self.retry_after = retry_after
        self.upstream_status = upstream_status
        self.reason = reason


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


class UpstreamUnavailable(UpstreamError):
    """No deployment may be called now (every circuit breaker on the way is open)."""

    status = 503
    code = "upstream_unavailable"


class InternalError(FastrouteError):
    pass
