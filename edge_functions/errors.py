"""One error root for the serving layer; each error knows its HTTP status."""

from __future__ import annotations


class EdgepickError(Exception):
    """Root of every error edgepick raises on purpose. `str(e)` is a message a user can act on."""

    http_status = 500
    error_code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidIdentifier(EdgepickError):
    http_status = 400
    error_code = "invalid_identifier"


class UnknownPlacement(EdgepickError):
    http_status = 404
    error_code = "unknown_placement"


class ConfigError(EdgepickError):
    """An EDGEPICK_… variable (or a CLI option) that cannot be used."""

    error_code = "invalid_configuration"


class CorruptRecord(EdgepickError):
    """A stored decision record or manifest that does not decode."""

    error_code = "corrupt_record"
