"""The event contract: Segment-spec messages in, validated `Event`s (or named rejections) out.

Size limits follow Segment's HTTP API so any Segment-compatible sender fits: 500 KB a
request, 32 KB a message, 2,500 messages a batch. A message is measured as it is stored,
with the batch-level context it inherits (so one request cannot store a large context once
per message). Every message needs `userId` or `anonymousId`; a `track` needs `event`; an
`alias` needs `previousId`. A rejection names the message's index in the batch and the
field, and its neighbours are still accepted.

Event time is `timestamp`; else `originalTimestamp` corrected for the sender's clock skew
with `sentAt` as Segment does (received − (sentAt − originalTimestamp)); else the time
received. It is never later than the time received plus `clock_skew_s`: a client stamping
its events a year ahead cannot freeze its profile or reach into a schedule window early.
A message without `messageId` gets a deterministic one (a hash of its content), so a
sender's retry of the same message is still deduplicated.

Everything accepted here is storable everywhere downstream: ids and names are valid UTF-8
(no lone surrogates), numbers finite and 64-bit (request_body.py), traits limited to the
allow-list (privacy.py). The worker and the offline replay validate stream entries and log
lines with this same function, so what the API accepts, the worker applies.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

import orjson

from decision_worker.errors import RequestRejected
from decision_worker.ingest.privacy import DEFAULT_TRAITS, is_pii_trait, privacy_signal, scrub
from decision_worker.ingest.request_body import loads_strict
from decision_worker.settings import WorkerSettings
from edge_functions.errors import ConfigError, InvalidIdentifier
from edge_functions.identifiers import check_user_id, is_valid_id

MAX_REQUEST_BYTES = 500 * 1024
MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_MESSAGES = 2500
MAX_EVENT_NAME = 200
MAX_MESSAGE_ID = 128
MAX_DEPTH = 64  # nesting of one message's objects and arrays
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
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
class EventRules:
    """The deployment's settings that validation depends on (the same for API, worker and
    replay: `EDGEPICK_CLOCK_SKEW_S`, `EDGEPICK_TRAITS`)."""

    clock_skew_s: float = 300.0
    allowed_traits: frozenset[str] = frozenset(DEFAULT_TRAITS)


DEFAULT_RULES = EventRules()


def event_rules(settings: WorkerSettings) -> EventRules:
    """The deployment's rules, from `EDGEPICK_CLOCK_SKEW_S` and `EDGEPICK_TRAITS`."""
    names = DEFAULT_TRAITS if settings.traits is None else tuple(
        t.strip() for t in settings.traits.split(",") if t.strip())
    pii = sorted(t for t in names if is_pii_trait(t))
    if pii:
        raise ConfigError(f"EDGEPICK_TRAITS names personal data ({', '.join(pii)}): profiles "
                          "keep no e-mail, phone, name or address (docs/privacy.md)")
    return EventRules(settings.clock_skew_s, frozenset(names))


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
    privacy: str | None = None  # privacy.OPT_OUT / OPT_IN when the message says so
    raw: dict[str, Any] = dataclass_field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    field: str
    reason: str
    raw: Any = dataclass_field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"message {self.index}: field '{self.field}' {self.reason}"


def parse_request(body: bytes, received_at: dt.datetime,
                  rules: EventRules = DEFAULT_RULES) -> tuple[list[Event], list[Rejection]]:
    """One HTTP body (already decompressed): a single message or `{"batch": [...]}`."""
    if len(body) > MAX_REQUEST_BYTES:
        raise RequestRejected(413, "(body)", f"is larger than {MAX_REQUEST_BYTES} bytes")
    doc = loads_strict(body)
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
        result = validate_message(index, message, received_at, shared_context, rules)
        (events if isinstance(result, Event) else rejections).append(result)  # type: ignore[arg-type]
    return events, rejections


def validate_message(index: int, message: Any, received_at: dt.datetime,
                     shared_context: Any = None,
                     rules: EventRules = DEFAULT_RULES) -> Event | Rejection:
    """One message → an Event, or a Rejection naming the field. The Event's `raw` is the
    message as it is stored (scrubbed, the batch's shared context folded in). The size limit
    applies to the message as stored, so the worker and the replay, which validate what was
    stored, agree with the API on every message."""
    if not isinstance(message, dict):
        return Rejection(index, "(message)", "must be a JSON object", message)
    encoded = _canonical(message)
    if encoded is None:
        return Rejection(index, *_unstorable(message), raw=scrub_any(message, rules))
    sent = message
    folded = message.get("context") is None and isinstance(shared_context, dict)
    if folded:
        # Segment's batch-level context applies to messages without one; it is folded into
        # the stored message so the worker and the replay see what the API saw.
        message = {**message, "context": shared_context}
    kept = scrub(message, rules.allowed_traits)

    def reject(name: str, reason: str) -> Rejection:
        return Rejection(index, name, reason, kept)

    message_id = kept.get("messageId")
    if message_id is None:
        message_id = "h-" + hashlib.sha256(encoded).hexdigest()[:32]
    elif not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_MESSAGE_ID \
            or not message_id.isprintable():
        return reject("messageId", f"must be a string of 1 to {MAX_MESSAGE_ID} printable "
                                   "characters")
    as_sent = kept is sent and kept.get("messageId") is not None and "receivedAt" not in kept
    stored = encoded if as_sent else _canonical(_as_stored(kept, message_id))
    if stored is None:  # the batch's context cannot be stored
        return reject(*_unstorable(kept))
    if len(stored) > MAX_MESSAGE_BYTES:
        return reject("(message)", f"is larger than {MAX_MESSAGE_BYTES} bytes"
                      + (" with the batch's context" if folded else ""))
    kind = kept.get("type")
    if kind not in TYPES:
        return reject("type", f"must be one of {', '.join(TYPES)} (got {str(kind)[:40]!r})")

    ids: dict[str, str | None] = {}
    for id_field in ("userId", "anonymousId"):
        value = kept.get(id_field)
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
        value = kept.get(object_field)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            return reject(object_field, "must be an object")
        objects[object_field] = value
    if kind == "identify" and not objects["traits"] and isinstance(objects["context"].get(
            "traits"), dict):
        objects["traits"] = objects["context"]["traits"]

    timestamp = _event_time(kept, received_at, rules.clock_skew_s)
    if isinstance(timestamp, tuple):
        return reject(*timestamp)

    name: str | None = None
    previous_id: str | None = None
    engagement: Engagement | None = None
    if kind == "track":
        name = kept.get("event")
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
        page_name = kept.get("name")
        if page_name is not None and not isinstance(page_name, str):
            return reject("name", "must be a string")
        name = page_name
    elif kind == "alias":
        previous = kept.get("previousId")
        if ids["userId"] is None:
            return reject("userId", "is required for an alias message")
        try:
            previous_id = check_user_id(previous)
        except InvalidIdentifier as e:
            return reject("previousId", e.message)

    session_start = (kind == "track" and name in SESSION_START_EVENTS) or \
        objects["context"].get("sessionStart") is True
    signal = privacy_signal(kind, name, objects["traits"], objects["context"])
    return Event(kind, message_id, ids["userId"], ids["anonymousId"], timestamp, name,
                 previous_id, objects["properties"], objects["traits"], objects["context"],
                 session_start, engagement, signal, kept)


def scrub_any(message: Any, rules: EventRules) -> Any:
    """`privacy.scrub` for whatever a sender sent (dead letters keep no PII either)."""
    return scrub(message, rules.allowed_traits) if isinstance(message, dict) else message


def _as_stored(kept: dict[str, Any], message_id: str) -> dict[str, Any]:
    """The message as the event log and the stream keep it, less the `receivedAt` ingest
    stamps on it: what the size limit measures, the same whether the API or the worker does."""
    return {**{k: v for k, v in kept.items() if k != "receivedAt"}, "messageId": message_id}


def _canonical(message: dict[str, Any]) -> bytes | None:
    """The message as compact JSON with sorted keys: its size, and its content hash.
    None when it cannot be stored as UTF-8 JSON (see `_unstorable`)."""
    try:
        return orjson.dumps(message, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return None


def _unstorable(value: Any, path: str = "", depth: int = 0) -> tuple[str, str]:
    """Why a message fails to encode: the field path and the reason (a lone surrogate, a
    nesting deeper than MAX_DEPTH). Only called on the rare message that does fail."""
    where = path or "(message)"
    if depth > MAX_DEPTH:
        return where, f"is nested more than {MAX_DEPTH} levels deep"
    if isinstance(value, str):
        return where, "is not valid Unicode text (it contains a lone surrogate)"
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if not _encodable(str(key)):
                return (path or "(message)"), "has a key that is not valid Unicode text"
            if _canonical_part(item) is None:
                return _unstorable(item, child, depth + 1)
    if isinstance(value, list):
        for i, item in enumerate(value):
            if _canonical_part(item) is None:
                return _unstorable(item, f"{path}[{i}]", depth + 1)
    return where, "cannot be stored as JSON"


def _canonical_part(value: Any) -> bytes | None:
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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


def _event_time(message: dict[str, Any], received_at: dt.datetime,
                skew_s: float) -> dt.datetime | tuple[str, str]:
    """When the event happened (see the module docstring), or (field, reason)."""
    times: dict[str, dt.datetime] = {}
    for time_field in ("timestamp", "originalTimestamp", "sentAt"):
        value = message.get(time_field)
        if value is None:
            continue
        parsed = parse_time(value)
        if parsed is None:
            return time_field, "must be an ISO-8601 date-time such as 2026-11-23T10:00:00Z"
        times[time_field] = parsed
    if "timestamp" in times:
        at = times["timestamp"]
    elif "originalTimestamp" in times and "sentAt" in times:
        try:
            at = received_at - (times["sentAt"] - times["originalTimestamp"])
        except OverflowError:  # centuries apart: no sender's clock is that far off
            return "sentAt", "is too far from 'originalTimestamp' to correct the clock skew"
    else:
        at = times.get("originalTimestamp", received_at)
    if at < EPOCH:
        return ("timestamp" if "timestamp" in times else "originalTimestamp",
                "is before 1970-01-01")
    return min(at, received_at + dt.timedelta(seconds=skew_s))


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO-8601 date-time as UTC (no offset: UTC), or None when it is not one."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError):  # 9999-12-31T23:59:59-23:59 overflows into year 10000
        return None
