"""Identifier rules from the design: what may become part of a key, a path or a URL."""

from __future__ import annotations

import re

from edge_functions.errors import InvalidIdentifier

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_USER_ID_BYTES = 256


def is_valid_id(value: str) -> bool:
    return ID_PATTERN.fullmatch(value) is not None


def check_id(kind: str, value: object) -> str:
    """`value` if it is a valid placement/variant/model/arm id, else InvalidIdentifier."""
    if not isinstance(value, str) or ID_PATTERN.fullmatch(value) is None:
        shown = repr(value)[:80]
        raise InvalidIdentifier(
            f"{kind} id {shown} is invalid: use 1-64 characters of a-z, 0-9, '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def check_user_id(value: object) -> str:
    """User ids are opaque but bounded: non-empty, at most 256 UTF-8 bytes, no control chars."""
    if not isinstance(value, str) or not value:
        raise InvalidIdentifier("user id is empty")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_USER_ID_BYTES:
        raise InvalidIdentifier(f"user id is longer than {MAX_USER_ID_BYTES} bytes")
    if not value.isprintable():
        raise InvalidIdentifier("user id contains control characters")
    return value
