"""Domain errors. Services raise these; one handler renders `{"detail", "code"}`."""

from __future__ import annotations


class AppError(Exception):
    status_code = 400
    code = "bad_request"
    # Commit what the request wrote before raising (security side effects that must survive).
    keep_writes = False

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        keep_writes: bool | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}  # more fields of the error body, beside detail and code
        if code is not None:
            self.code = code
        self.headers = headers
        if keep_writes is not None:
            self.keep_writes = keep_writes


class BadRequest(AppError):
    status_code = 400
    code = "bad_request"


class Unauthorized(AppError):
    status_code = 401
    code = "not_authenticated"

    def __init__(self, detail: str = "Not authenticated", **kwargs: object) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)  # type: ignore[arg-type]


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class ValidationFailed(AppError):
    """Semantically invalid input that passed schema validation (a foreign id, a bad reference)."""

    status_code = 422
    code = "validation_failed"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(AppError):
    status_code = 415
    code = "unsupported_media_type"


class Overloaded(AppError):
    """More requests want the database at once than the process has request slots for, and
    this one waited as long as it may (`request_queue_timeout_seconds`)."""

    status_code = 503
    code = "overloaded"


class RateLimited(AppError):
    status_code = 429
    code = "rate_limited"
