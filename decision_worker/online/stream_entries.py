"""What a stream entry holds: an accepted Segment message (field `m`, validated again here by
the API's own rules, since the stream is input too), or a scheduled re-decision (field `r`,
`<user tag>|<due>`, written by redecide_schedule.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from decision_worker.ingest.event_time import parse_time
from decision_worker.ingest.events import (
    DEFAULT_RULES,
    Event,
    EventRules,
    Rejection,
    validate_message,
)


@dataclass(frozen=True, slots=True)
class Redecide:
    """An internal stream entry from the scheduler: re-decide this user."""

    tag: str
    due: float


def decode_entry(fields: dict[bytes, bytes],
                 rules: EventRules = DEFAULT_RULES) -> Event | Redecide | Rejection:
    """A stream entry back into an Event (validated again, by the API's own rules)."""
    try:
        if b"r" in fields:
            tag, due = fields[b"r"].decode().split("|")
            return Redecide(tag, float(due))
        record = json.loads(fields[b"m"])
        received = parse_time(record.get("receivedAt"))
        if received is None:
            raise ValueError("its receivedAt is not a date-time")
    except (KeyError, ValueError, UnicodeDecodeError, TypeError, AttributeError) as e:
        return Rejection(0, "(entry)", f"is not a stream record: {e}", fields)
    return validate_message(0, record, received, rules=rules)
