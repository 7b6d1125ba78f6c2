"""When an event happened, by Segment's rules, bounded by when it was received.

`timestamp`; else `originalTimestamp` corrected for the sender's clock skew with `sentAt` as
Segment does (received − (sentAt − originalTimestamp)); else the time received. Never later
than the time received plus the skew allowance (a client stamping its events a year ahead
cannot freeze its profile or reach into a schedule window early), never before 1970.
`parse_time` is the one ISO-8601 reader of the package.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from decision_worker.ingest.message_fields import FieldRefused

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


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


def event_time(message: dict[str, Any], received_at: dt.datetime,
               skew_s: float) -> dt.datetime:
    """The event's time (raises FieldRefused naming the field that does not parse)."""
    times: dict[str, dt.datetime] = {}
    for name in ("timestamp", "originalTimestamp", "sentAt"):
        value = message.get(name)
        if value is None:
            continue
        parsed = parse_time(value)
        if parsed is None:
            raise FieldRefused(name, "must be an ISO-8601 date-time such as "
                                     "2026-11-23T10:00:00Z")
        times[name] = parsed
    if "timestamp" in times:
        at = times["timestamp"]
    elif "originalTimestamp" in times and "sentAt" in times:
        try:
            at = received_at - (times["sentAt"] - times["originalTimestamp"])
        except OverflowError as e:  # centuries apart: no sender's clock is that far off
            raise FieldRefused("sentAt", "is too far from 'originalTimestamp' to correct the "
                                         "clock skew") from e
    else:
        at = times.get("originalTimestamp", received_at)
    if at < EPOCH:
        raise FieldRefused("timestamp" if "timestamp" in times else "originalTimestamp",
                           "is before 1970-01-01")
    return min(at, received_at + dt.timedelta(seconds=skew_s))
