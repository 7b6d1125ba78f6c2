"""The event contract: Segment-spec messages in, validated `Event`s (or named rejections) out.

Size limits follow Segment's HTTP API so any Segment-compatible sender fits: 500 KB a
request, 32 KB a message, 2,500 messages a batch. Every message needs `userId` or
`anonymousId`; a `track` needs `event`; an `alias` needs `previousId`. A rejection names
the message's index in the batch and the field, and its neighbours are still accepted.

Event time is `timestamp`, else `originalTimestamp`, else the time received. A message
without `messageId` gets a deterministic one (a hash of its content), so a sender's retry of
the same message is still deduplicated.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

import orjson

from edge_functions.errors import InvalidIdentifier
from edge_functions.identifiers import check_user_id, is_valid_id

MAX_REQUEST_BYTES = 500 * 1024
MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_MESSAGES = 2500
MAX_EVENT_NAME = 200
MAX_MESSAGE_ID = 128
TYPES = ("track", "identify", "page", "alias")
SESSION_START_EVENTS = frozenset({"Session Started", "Application Opened"})
# Engagement events: name → (label for the ranker, the property that carries the variant id)
ENGAGEMENT = {
    "Variant Viewed": ("view", "variant"),
    "Variant Clicked": ("click", "variant"),
    "Variant Converted": ("conversion", "variant"),
    "Promotion Viewed": ("view", "promotion_id"),
    "Promotion Clicked": ("click", "promotion_id"),
}


@dataclass(frozen=True, slots=True)
class Engagement:
    kind: str  # view | click | conversion
    placement: str
    variant: str
    position: int | None


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    message_id: str
    user_id: str | None
    anonymous_id: str | None
    timestamp: dt.datetime  # event time, UTC
    name: str | None = None  # track event name
    previous_id: str | None = None  # alias
    properties: dict[str, Any] = dataclass_field(default_factory=dict)
    traits: dict[str, Any] = dataclass_field(default_factory=dict)
    context: dict[str, Any] = dataclass_field(default_factory=dict)
    session_start: bool = False
    engagement: Engagement | None = None
    raw: dict[str, Any] = dataclass_field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    field: str
    reason: str
    raw: Any = dataclass_field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"message {self.index}: field '{self.field}' {self.reason}"


class RequestRejected(Exception):
    """The whole request is unusable (not JSON, too large, not a message or batch)."""

    def __init__(self, status: int, field: str, reason: str) -> None:
        super().__init__(f"field '{field}' {reason}")
        self.status, self.field, self.reason = status, field, reason


def parse_request(body: bytes, received_at: dt.datetime) -> tuple[list[Event], list[Rejection]]:
    """One HTTP body: a single message or `{"batch": [...]}`."""
    if len(body) > MAX_REQUEST_BYTES:
        raise RequestRejected(413, "(body)", f"is larger than {MAX_REQUEST_BYTES} bytes")
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RequestRejected(400, "(body)", f"is not JSON: {e}") from e
    if not isinstance(doc, dict):
        raise RequestRejected(400, "(body)", "must be a JSON object (a message or a batch)")
    if "batch" in doc:
        messages = doc["batch"]
        if not isinstance(messages, list):
            raise RequestRejected(400, "batch", "must be an array of messages")
        if len(messages) > MAX_BATCH_MESSAGES:
            raise RequestRejected(413, "batch", f"has more than {MAX_BATCH_MESSAGES} messages")
        # Segment lets batch-level `context` apply to every message that lacks one.
        shared_context = doc.get("context")
    else:
        messages, shared_context = [doc], None
    events: list[Event] = []
    rejections: list[Rejection] = []
    for index, message in enumerate(messages):
        result = validate_message(index, message, received_at, shared_context)
        (events if isinstance(result, Event) else rejections).append(result)  # type: ignore[arg-type]
    return events, rejections


def validate_message(index: int, message: Any, received_at: dt.datetime,
                     shared_context: Any = None) -> Event | Rejection:
    def reject(name: str, reason: str) -> Rejection:
        return Rejection(index, name, reason, message)

    if not isinstance(message, dict):
        return reject("(message)", "must be a JSON object")
    encoded = _canonical(message)
    if len(encoded) > MAX_MESSAGE_BYTES:
        return reject("(message)", f"is larger than {MAX_MESSAGE_BYTES} bytes")
    kind = message.get("type")
    if kind not in TYPES:
        return reject("type", f"must be one of {', '.join(TYPES)} (got {str(kind)[:40]!r})")

    ids: dict[str, str | None] = {}
    for id_field in ("userId", "anonymousId"):
        value = message.get(id_field)
        if value is None:
            ids[id_field] = None
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)  # Segment accepts numeric ids and treats them as strings
        try:
            ids[id_field] = check_user_id(value)
        except InvalidIdentifier as e:
            return reject(id_field, e.message)
    if ids["userId"] is None and ids["anonymousId"] is None:
        return reject("userId", "or 'anonymousId' is required")

    objects: dict[str, dict[str, Any]] = {}
    for object_field in ("properties", "traits", "context"):
        value = message.get(object_field)
        if object_field == "context" and value is None and isinstance(shared_context, dict):
            value = shared_context
        if value is None:
            value = {}
        if not isinstance(value, dict):
            return reject(object_field, "must be an object")
        objects[object_field] = value
    if kind == "identify" and not objects["traits"] and isinstance(objects["context"].get(
            "traits"), dict):
        objects["traits"] = objects["context"]["traits"]

    timestamp = received_at
    for time_field in ("timestamp", "originalTimestamp"):
        value = message.get(time_field)
        if value is None:
            continue
        parsed = _parse_time(value)
        if parsed is None:
            return reject(time_field, "must be an ISO-8601 date-time such as 2026-11-23T10:00:00Z")
        timestamp = parsed
        break

    message_id = message.get("messageId")
    if message_id is None:
        message_id = "h-" + hashlib.sha256(encoded).hexdigest()[:32]
    elif not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_MESSAGE_ID:
        return reject("messageId", f"must be a string of 1 to {MAX_MESSAGE_ID} characters")

    name: str | None = None
    previous_id: str | None = None
    engagement: Engagement | None = None
    if kind == "track":
        name = message.get("event")
        if not isinstance(name, str) or not name.strip():
            return reject("event", "is required for a track message")
        if len(name) > MAX_EVENT_NAME:
            return reject("event", f"is longer than {MAX_EVENT_NAME} characters")
        if name in ENGAGEMENT:
            result = _engagement(name, objects["properties"])
            if isinstance(result, tuple):
                return reject(*result)
            engagement = result
    elif kind == "page":
        page_name = message.get("name")
        if page_name is not None and not isinstance(page_name, str):
            return reject("name", "must be a string")
        name = page_name
    elif kind == "alias":
        previous = message.get("previousId")
        if ids["userId"] is None:
            return reject("userId", "is required for an alias message")
        try:
            previous_id = check_user_id(previous)
        except InvalidIdentifier as e:
            return reject("previousId", e.message)

    session_start = (kind == "track" and name in SESSION_START_EVENTS) or \
        objects["context"].get("sessionStart") is True
    return Event(kind, message_id, ids["userId"], ids["anonymousId"], timestamp, name,
                 previous_id, objects["properties"], objects["traits"], objects["context"],
                 session_start, engagement, message)


def _canonical(message: dict[str, Any]) -> bytes:
    """The message as compact JSON with sorted keys: its size, and its content hash."""
    try:
        return orjson.dumps(message, option=orjson.OPT_SORT_KEYS, default=str)
    except (TypeError, orjson.JSONEncodeError):  # lone surrogates, very deep nesting
        return json.dumps(message, separators=(",", ":"), sort_keys=True,
                          default=str).encode("utf-8", "surrogatepass")


def _engagement(name: str, properties: dict[str, Any]) -> Engagement | tuple[str, str]:
    kind, variant_field = ENGAGEMENT[name]
    placement = properties.get("placement", properties.get("creative"))
    variant = properties.get(variant_field)
    if not isinstance(placement, str) or not is_valid_id(placement):
        return ("properties.placement", "must be a placement id for " + repr(name))
    if not isinstance(variant, str) or not is_valid_id(variant):
        return (f"properties.{variant_field}", "must be a variant id for " + repr(name))
    position = properties.get("position")
    if position is not None and (isinstance(position, bool) or not isinstance(position, int)
                                 or position < 0):
        if name.startswith("Promotion"):
            position = None  # Segment's promotion `position` is a free-text slot name
        else:
            return ("properties.position", "must be a non-negative integer")
    return Engagement(kind, placement, variant, position)


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)
