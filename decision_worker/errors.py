"""The decision worker's errors: one root, each error knowing its HTTP status."""

from __future__ import annotations

from edge_functions.errors import EdgepickError


class WorkerError(EdgepickError):
    """Root of the decision worker's errors (events API, worker, training)."""


class RequestRejected(WorkerError):
    """An events API request that is unusable as a whole (not JSON, too large, …)."""

    error_code = "invalid_request"

    def __init__(self, status: int, field: str, reason: str) -> None:
        super().__init__(f"field '{field}' {reason}")
        self.http_status = self.status = status
        self.field, self.reason = field, reason


class IngestUnavailable(WorkerError):
    """A dependency fault (Redis, the event log, a full stream): answer 503 with
    `Retry-After`; the request is safe to retry."""

    http_status = 503
    error_code = "unavailable"

    def __init__(self, reason: str, retry_after_s: int = 1) -> None:
        super().__init__(reason)
        self.reason, self.retry_after_s = reason, retry_after_s


class EventLogError(WorkerError):
    http_status = 503
    error_code = "event_log_unavailable"


class ModelError(WorkerError):
    http_status = 422
    error_code = "model_refused"


class RegistryError(WorkerError):
    http_status = 409
    error_code = "registry"


class FeatureConfigError(WorkerError):
    """A feature configuration training cannot use (file, line and what is wrong)."""

    http_status = 422
    error_code = "feature_config"
