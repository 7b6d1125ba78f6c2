"""Errors of the publishing side, each naming the file (and line) a user has to fix."""

from __future__ import annotations

from pathlib import Path

from edge_functions.errors import EdgepickError


class PublishError(EdgepickError):
    """Root of the publisher's errors (publish, unpublish, the CMS hook)."""


class ContentError(PublishError):
    """A content file (variant or template) that cannot be published as it is."""

    http_status = 422
    error_code = "invalid_content"

    def __init__(self, path: Path | str, message: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.line = line


class FolderRefused(ContentError):
    """The content folder as a whole exceeds a limit: nothing of it is published."""


class OriginError(PublishError):
    """The origin (folder or S3) refused a read or write."""

    http_status = 502
    error_code = "origin_error"


class PrewarmError(PublishError):
    """A new object could not be fetched through the CDN, so it was not made eligible."""

    http_status = 502
    error_code = "prewarm_failed"


class ManifestError(PublishError):
    """A manifest change that would break serving (e.g. removing a placement's default)."""

    http_status = 409
    error_code = "manifest_conflict"


class PublishTimeout(PublishError):
    """The whole publish outlived EDGEPICK_PUBLISH_TIMEOUT_S before its manifest write."""

    http_status = 504
    error_code = "publish_timeout"

    def __init__(self, limit_s: float) -> None:
        super().__init__(f"publish stopped: it took longer than EDGEPICK_PUBLISH_TIMEOUT_S="
                         f"{limit_s:g} s before its manifest write; nothing was published")


class PublishBusy(PublishError):
    """Another publish holds the lock of a placement this one needs."""

    http_status = 409
    error_code = "publish_in_progress"

    def __init__(self, placement: str, retry_after_s: int) -> None:
        super().__init__(f"placement {placement!r} is being published by another request; "
                         f"try again in {retry_after_s} s")
        self.placement = placement
        self.retry_after_s = retry_after_s
