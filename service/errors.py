"""Errors whose messages are meant for API users, and their OpenAI error envelope."""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    """An error returned to the client as `{"error": {"message", "type", "param", "code"}}`."""

    status_code: int = 500
    error_type: str = "server_error"

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        if error_type is not None:
            self.error_type = error_type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        return error_envelope(self.message, self.error_type, self.param, self.code)


class BadRequest(APIError):
    status_code = 400
    error_type = "invalid_request_error"


class NotFound(APIError):
    status_code = 404
    error_type = "invalid_request_error"


class PayloadTooLarge(APIError):
    status_code = 413
    error_type = "invalid_request_error"


class Conflict(APIError):
    status_code = 409
    error_type = "invalid_request_error"


class ServiceUnavailable(APIError):
    """Temporarily unable to answer (set `Retry-After`)."""

    status_code = 503
    error_type = "service_unavailable"


class InsufficientStorage(APIError):
    """Writing the store failed (disk full, read-only volume); nothing published was changed."""

    status_code = 507
    error_type = "server_error"


class EngineUnavailable(APIError):
    """The engine is starting, restarting or gone: retry later."""

    status_code = 503
    error_type = "service_unavailable"

    def __init__(self, message: str, *, retry_after_s: int = 5) -> None:
        super().__init__(message, code="engine_unavailable", headers={"Retry-After": str(retry_after_s)})


def error_envelope(
    message: str, error_type: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def error_type_for_status(status: int) -> str:
    if status in (401,):
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 404:
        return "invalid_request_error"
    if status == 429:
        return "rate_limit_error"
    if status == 503:
        return "service_unavailable"
    if 400 <= status < 500:
        return "invalid_request_error"
    return "server_error"


class InvalidModelOutput(APIError):
    """The model's structured output (a tool call, an analysis) is not valid after the retries.

    A bad gateway: the engine answered, but with nothing the gateway can serve. `finish_reason`
    tells a cut-off (`length`) from output that is wrong as written.
    """

    status_code = 502
    error_type = "server_error"

    def __init__(self, message: str, *, code: str, finish_reason: str | None = None) -> None:
        super().__init__(message, code=code)
        self.finish_reason = finish_reason


def max_tokens_too_small(*, param: str, max_tokens: int, need: int, what: str) -> BadRequest:
    """The client's max_tokens cut off structured output (`what`): a 400 naming what would fit."""
    least = f"at least {need}" if need > max_tokens else f"more than {max_tokens}"
    return BadRequest(
        f"{param}={max_tokens} is too small for {what} (it was cut off); use {param} {least}",
        param=param,
        code="max_tokens_too_small",
    )


def error_response(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The one mapping of an exception to (HTTP status, OpenAI envelope, headers).

    An `APIError` says its own; anything else is a bug: a 500 that names the exception type only
    (the server log has the rest).
    """
    if isinstance(exc, APIError):
        return exc.status_code, exc.envelope(), exc.headers
    message = f"internal error ({type(exc).__name__}); see the server log"
    return 500, error_envelope(message, "server_error", None, "internal_error"), {}
