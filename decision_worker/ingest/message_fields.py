"""The checks of one Segment message's fields, each naming the field it refuses.

`FieldRefused(field, reason)` is how a check says no; events.validate_message turns it into
the message's Rejection. Storability is checked here too: a message must encode as UTF-8
JSON (no lone surrogate, nesting within MAX_DEPTH), measured as it will be stored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from edge_functions.errors import InvalidIdentifier
from edge_functions.identifiers import check_user_id, is_valid_id

MAX_EVENT_NAME = 200
MAX_MESSAGE_ID = 128
MAX_DEPTH = 64  # nesting of one message's objects and arrays
# Engagement events: name → (label for the ranker, the property that carries the variant id)
ENGAGEMENT = {
    "Variant Viewed": ("view", "variant"),
    "Variant Clicked": ("click", "variant"),
    "Variant Converted": ("conversion", "variant"),
    "Promotion Viewed": ("view", "promotion_id"),
    "Promotion Clicked": ("click", "promotion_id"),
}


class FieldRefused(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"field '{field}' {reason}")
        self.field, self.reason = field, reason


@dataclass(frozen=True, slots=True)
class Engagement:
    kind: str  # view | click | conversion
    placement: str
    variant: str
    position: int | None


def canonical(message: Any) -> bytes | None:
    """The message as compact JSON with sorted keys (its size, and its content hash); None
    when it cannot be stored as UTF-8 JSON."""
    try:
        return orjson.dumps(message, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return None


def unstorable(value: Any, path: str = "", depth: int = 0) -> FieldRefused:
    """Why a message fails to encode: the field and the reason (a lone surrogate, nesting
    deeper than MAX_DEPTH). Only called on the rare message that does fail."""
    where = path or "(message)"
    if depth > MAX_DEPTH:
        return FieldRefused(where, f"is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, str):
        return FieldRefused(where, "is not valid Unicode text (it contains a lone surrogate)")
    if isinstance(value, dict):
        for key, item in value.items():
            if not _encodable(str(key)):
                return FieldRefused(where, "has a key that is not valid Unicode text")
            if canonical(item) is None:
                return unstorable(item, f"{path}.{key}" if path else str(key), depth + 1)
    if isinstance(value, list):
        for i, item in enumerate(value):
            if canonical(item) is None:
                return unstorable(item, f"{path}[{i}]", depth + 1)
    return FieldRefused(where, "cannot be stored as JSON")


def message_id_of(kept: dict[str, Any], encoded: bytes) -> str:
    """The sender's messageId, or a hash of the content (a sender's retry dedupes too)."""
    message_id = kept.get("messageId")
    if message_id is None:
        return "h-" + hashlib.sha256(encoded).hexdigest()[:32]
    if not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_MESSAGE_ID \
            or not message_id.isprintable():
        raise FieldRefused("messageId", f"must be a string of 1 to {MAX_MESSAGE_ID} "
                                        "printable characters")
    return message_id


def user_ids(kept: dict[str, Any]) -> tuple[str | None, str | None]:
    """(userId, anonymousId), at least one of them; numeric ids read as strings (Segment)."""
    ids: list[str | None] = []
    for name in ("userId", "anonymousId"):
        value = kept.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        try:
            ids.append(None if value is None else check_user_id(value))
        except InvalidIdentifier as e:
            raise FieldRefused(name, e.message) from e
    if ids[0] is None and ids[1] is None:
        raise FieldRefused("userId", "or 'anonymousId' is required")
    return ids[0], ids[1]


def objects_of(kept: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """properties, traits and context (an identify's traits may sit in context.traits)."""
    objects: dict[str, dict[str, Any]] = {}
    for name in ("properties", "traits", "context"):
        value = kept.get(name)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise FieldRefused(name, "must be an object")
        objects[name] = value
    context_traits = objects["context"].get("traits")
    if kind == "identify" and not objects["traits"] and isinstance(context_traits, dict):
        objects["traits"] = context_traits
    return objects


def named_parts(kind: str, kept: dict[str, Any], properties: dict[str, Any],
                user_id: str | None) -> tuple[str | None, str | None, Engagement | None]:
    """(event or page name, alias previousId, engagement) for the message's type."""
    if kind == "track":
        name = kept.get("event")
        if not isinstance(name, str) or not name.strip():
            raise FieldRefused("event", "is required for a track message")
        if len(name) > MAX_EVENT_NAME:
            raise FieldRefused("event", f"is longer than {MAX_EVENT_NAME} characters")
        return name, None, engagement_of(name, properties) if name in ENGAGEMENT else None
    if kind == "page":
        page_name = kept.get("name")
        if page_name is not None and not isinstance(page_name, str):
            raise FieldRefused("name", "must be a string")
        return page_name, None, None
    if kind == "alias":
        if user_id is None:
            raise FieldRefused("userId", "is required for an alias message")
        try:
            return None, check_user_id(kept.get("previousId")), None
        except InvalidIdentifier as e:
            raise FieldRefused("previousId", e.message) from e
    return None, None, None


def engagement_of(name: str, properties: dict[str, Any]) -> Engagement:
    kind, variant_field = ENGAGEMENT[name]
    placement = properties.get("placement", properties.get("creative"))
    variant = properties.get(variant_field)
    if not isinstance(placement, str) or not is_valid_id(placement):
        raise FieldRefused("properties.placement", f"must be a placement id for {name!r}")
    if not isinstance(variant, str) or not is_valid_id(variant):
        raise FieldRefused(f"properties.{variant_field}", f"must be a variant id for {name!r}")
    position = properties.get("position")
    if position is not None and (isinstance(position, bool) or not isinstance(position, int)
                                 or position < 0):
        if not name.startswith("Promotion"):
            raise FieldRefused("properties.position", "must be a non-negative integer")
        position = None  # Segment's promotion `position` is a free-text slot name
    return Engagement(kind, placement, variant, position)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
