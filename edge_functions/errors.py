"""The error root every edgepick package builds on, and the serving layer's own errors.

Every error raised on purpose is an `EdgepickError` that knows its HTTP status, a short code
and a message a user can act on; `field` names the input at fault and `retry_after_s` says
when a refused request may be retried (a 503). Each package has its root under it:
`ServingError` here, `PublishError` (content_variants), `WorkerError` (decision_worker).
HTTP apps turn them into one JSON shape (http_errors.py); the CLI prints one line.
"""

from __future__ import annotations


class EdgepickError(Exception):
    http_status = 500
    error_code = "internal_error"
    field: str | None = None
    retry_after_s: int | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(EdgepickError):
    """An EDGEPICK_… variable (or a CLI option) that cannot be used."""

    error_code = "invalid_configuration"


class ServingError(EdgepickError):
    """Root of the serving layer's errors."""


class InvalidIdentifier(ServingError):
    http_status = 400
    error_code = "invalid_identifier"


class UnknownPlacement(ServingError):
    http_status = 404
    error_code = "unknown_placement"


class MethodNotAllowed(ServingError):
    http_status = 405
    error_code = "method_not_allowed"


class CorruptRecord(ServingError):
    """A stored decision record or manifest that does not decode."""

    error_code = "corrupt_record"
