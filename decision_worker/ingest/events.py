"""The event contract: Segment-spec messages in, validated `Event`s (or named rejections) out.

Size limits follow Segment's HTTP API so any Segment-compatible sender fits: 500 KB a
request, 32 KB a message, 2,500 messages a batch. A message is measured as it is stored,
with the batch-level context it inherits (so one request cannot store a large context once
per message). Every message needs `userId` or `anonymousId`; a `track` needs `event`; an
`alias` needs `previousId`. A rejection names the message's index in the batch and the
field, and its neighbours are still accepted.

Event time follows Segment's rules, bounded by the time received (event_time.py). A message
without `messageId` gets a deterministic one (a hash of its content), so a sender's retry of
the same message is still deduplicated. The field checks are in message_fields.py.

Everything accepted here is storable everywhere downstream: ids and names are valid UTF-8
(no lone surrogates), numbers finite and 64-bit (request_body.py), traits limited to the
allow-list (privacy.py). The worker and the offline replay validate stream entries and log
lines with this same function, so what the API accepts, the worker applies.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from decision_worker.errors import RequestRejected
from decision_worker.ingest.event_time import event_time
from decision_worker.ingest.message_fields import (
    Engagement,
    FieldRefused,
    canonical,
    message_id_of,
    named_parts,
    objects_of,
    unstorable,
    user_ids,
)
from decision_worker.ingest.privacy import DEFAULT_TRAITS, is_pii_trait, privacy_signal, scrub
from decision_worker.ingest.request_body import loads_strict
from decision_worker.settings import WorkerSettings
from edge_functions.errors import ConfigError

MAX_REQUEST_BYTES = 500 * 1024
MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_MESSAGES = 2500
TYPES = ("track", "identify", "page", "alias")
SESSION_START_EVENTS = frozenset({"Session Started", "Application Opened"})


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
        if isinstance(result, Event):
            events.append(result)
        else:
            rejections.append(result)
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
    encoded = canonical(message)
    if encoded is None:
        refused = unstorable(message)
        return Rejection(index, refused.field, refused.reason, scrub_any(message, rules))
    folded = message.get("context") is None and isinstance(shared_context, dict)
    # Segment's batch-level context applies to messages without one; it is folded into the
    # stored message so the worker and the replay see what the API saw.
    kept = scrub({**message, "context": shared_context} if folded else message,
                 rules.allowed_traits)
    try:
        return _event(kept, message, encoded, folded, received_at, rules)
    except FieldRefused as e:
        return Rejection(index, e.field, e.reason, kept)


def _event(kept: dict[str, Any], sent: dict[str, Any], encoded: bytes, folded: bool,
           received_at: dt.datetime, rules: EventRules) -> Event:
    message_id = message_id_of(kept, encoded)
    # Without a folded context and with its own messageId, the stored message is the sent
    # one less some entries (scrubbed, `receivedAt`): never longer, always encodable. So a
    # message that fits as sent fits as stored (a log line read back: no second encoding).
    within = not folded and kept.get("messageId") is not None
    if not within or len(encoded) > MAX_MESSAGE_BYTES:
        stored = canonical(_as_stored(kept, message_id))
        if stored is None:  # the batch's context cannot be stored
            raise unstorable(kept)
        if len(stored) > MAX_MESSAGE_BYTES:
            raise FieldRefused("(message)", f"is larger than {MAX_MESSAGE_BYTES} bytes"
                               + (" with the batch's context" if folded else ""))
    kind = kept.get("type")
    if kind not in TYPES:
        raise FieldRefused("type", f"must be one of {', '.join(TYPES)} "
                                   f"(got {str(kind)[:40]!r})")
    user_id, anonymous_id = user_ids(kept)
    objects = objects_of(kept, kind)
    timestamp = event_time(kept, received_at, rules.clock_skew_s)
    name, previous_id, engagement = named_parts(kind, kept, objects["properties"], user_id)
    session_start = (kind == "track" and name in SESSION_START_EVENTS) or \
        objects["context"].get("sessionStart") is True
    return Event(kind, message_id, user_id, anonymous_id, timestamp, name, previous_id,
                 objects["properties"], objects["traits"], objects["context"], session_start,
                 engagement, privacy_signal(kind, name, objects["traits"], objects["context"]),
                 kept)


def scrub_any(message: Any, rules: EventRules) -> Any:
    """`privacy.scrub` for whatever a sender sent (dead letters keep no PII either)."""
    return scrub(message, rules.allowed_traits) if isinstance(message, dict) else message


def _as_stored(kept: dict[str, Any], message_id: str) -> dict[str, Any]:
    """The message as the event log and the stream keep it, less the `receivedAt` ingest
    stamps on it: what the size limit measures, the same whether the API or the worker does."""
    return {**{k: v for k, v in kept.items() if k != "receivedAt"}, "messageId": message_id}
