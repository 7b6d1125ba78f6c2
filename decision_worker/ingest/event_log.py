"""The durable event log training reads: JSON Lines, one Segment message a line, by day.

On the origin's object store, under `events/event_day=YYYY-MM-DD/`, partitioned by the day
the event *happened* (its validated event time), so a window of event time reads only its
own days, whether the events arrived live or were imported years later (`edgepick import`).
Each file's name starts with the day it was written (`rYYYY-MM-DD-…`), so recovery finds
what arrived in a window of *arrival* time by listing names, whatever the events' dates.
A store that can append (a folder) gets one file per process and event day, appended and
fsynced before the API answers; one that cannot (S3) gets one object per accepted request
and event day, whose PUT completes before the API answers. Either way an accepted message
is durable. Under Redis faults a message may appear twice (ingestion.py): readers
deduplicate by `messageId`.

Logs written before this layout (`events/dt=YYYY-MM-DD/`, by arrival day) are still read:
an event arrives at most the clock-skew allowance before its time, so its arrival day is
never earlier than the day before its event day, and a window reads the old days from
there on. Nothing needs migrating.

Exposures the edge served (a decision of an experiment's arm) are Segment A/B-spec
`Experiment Viewed` messages, the first of each user in each step of an experiment, written
by the worker that counted them under `events/exposures/event_day=YYYY-MM-DD/` in the same
line format: any Segment destination (or GrowthBook's warehouse analysis) can read them. They
are kept apart from the days above because they never went through the events stream: the
replay that rebuilds profiles reads what the stream carried, and these would move its
timestamps away from the online profile's (training–serving skew).

Beside the days, `events/tombstones/` holds one line per forgotten id (`edgepick forget`):
`{"tag": <the id's keyed hash>, "at": …}`. Readers that learn from the log (the replay)
skip every message of a tombstoned id; the raw lines stay until the log's retention removes
them (docs/privacy.md).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import socket
import time
from collections.abc import Iterable
from typing import Any

import orjson

from decision_worker.errors import EventLogError
from object_store import from_url
from object_store.store import ObjectStore, StoreError

PREFIX = "events"
EVENT_DAY = f"{PREFIX}/event_day="
LEGACY_DAY = f"{PREFIX}/dt="  # the arrival-day layout of earlier versions
TOMBSTONES = f"{PREFIX}/tombstones"
EXPOSURE_DAY = f"{PREFIX}/exposures/event_day="
NDJSON = "application/x-ndjson"
TimedMessage = tuple[dt.datetime, dict[str, Any]]  # (event time, message as stored)


class EventLog:
    def __init__(self, store: ObjectStore, writer: str = "") -> None:
        self.store = store
        self._name = writer or f"{socket.gethostname()}-{os.getpid()}"
        self._counter = itertools.count()
        self.corrupt_lines = 0  # unreadable lines met by the reads so far

    def describe(self) -> str:
        return f"{self.store.describe().rstrip('/')}/{PREFIX}"

    def append(self, received_at: dt.datetime, messages: Iterable[TimedMessage]) -> int:
        """Store whole lines durably, each in its event day, before returning; returns how
        many. Days are written one after another: a crash between two leaves whole lines
        of some days, which a retry (the API's, or an import's) completes by messageId."""
        by_day: dict[dt.date, list[dict[str, Any]]] = {}
        for at, message in messages:
            by_day.setdefault(at.date(), []).append(message)
        written = 0
        for day in sorted(by_day):
            data = encode_lines(by_day[day])
            self.write_file(f"{EVENT_DAY}{day.isoformat()}", received_at.date(), data)
            written += data.count(b"\n")
        return written

    def read_day(self, day: dt.date) -> list[dict[str, Any]]:
        """Every message of that event day (and of that arrival day in the old layout),
        duplicates removed by messageId (first wins). Unreadable lines are skipped and
        counted in `corrupt_lines`."""
        return self.read_days(day, day)

    def read_days(self, first: dt.date, last: dt.date) -> list[dict[str, Any]]:
        """Every message whose event day is in [first, last], plus, from the old layout,
        every day that may hold them (arrival day from the day before `first` on): callers
        filter by event time. Each messageId once."""
        seen: set[str] = set()
        out: list[dict[str, Any]] = []
        for key in self._day_files(first - dt.timedelta(days=1), None, legacy=True):
            self.corrupt_lines += decode_lines(self._get(key), seen, out)
        for key in self._day_files(first, last, legacy=False):
            self.corrupt_lines += decode_lines(self._get(key), seen, out)
        return out

    def received_between(self, first: dt.date, last: dt.date) -> list[dict[str, Any]]:
        """Every message in files written on days [first, last] (whatever their event
        days), each messageId once: what recovery re-streams from."""
        seen: set[str] = set()
        out: list[dict[str, Any]] = []
        for key in self._keys(f"{PREFIX}/"):
            written = _written_day(key)
            if written is not None and first <= written <= last:
                self.corrupt_lines += decode_lines(self._get(key), seen, out)
        return out

    def message_ids(self, day: dt.date) -> set[str]:
        """The messageIds already logged for an event day (imports skip them)."""
        seen: set[str] = set()
        out: list[dict[str, Any]] = []
        for key in self._keys(f"{EVENT_DAY}{day.isoformat()}/"):
            self.corrupt_lines += decode_lines(self._get(key), seen, out)
        return seen

    def event_days(self) -> list[dt.date]:
        """The event days present in the log (new layout), oldest first."""
        days = {_day_of(key, EVENT_DAY) for key in self._keys(EVENT_DAY)}
        return sorted(d for d in days if d is not None)

    def append_exposures(self, messages: Iterable[TimedMessage]) -> int:
        """Store `Experiment Viewed` messages durably, each in its event day."""
        by_day: dict[dt.date, list[dict[str, Any]]] = {}
        for at, message in messages:
            by_day.setdefault(at.date(), []).append(message)
        today = dt.datetime.now(dt.UTC).date()
        for day in sorted(by_day):
            self.write_file(f"{EXPOSURE_DAY}{day.isoformat()}", today,
                            encode_lines(by_day[day]))
        return sum(len(lines) for lines in by_day.values())

    def read_exposures(self, first: dt.date, last: dt.date) -> list[dict[str, Any]]:
        """The `Experiment Viewed` messages of event days [first, last], each messageId
        once (readers skip tombstoned ids as they do for the events)."""
        seen: set[str] = set()
        out: list[dict[str, Any]] = []
        for key in self._keys(EXPOSURE_DAY):
            day = _day_of(key, EXPOSURE_DAY)
            if day is not None and first <= day <= last:
                self.corrupt_lines += decode_lines(self._get(key), seen, out)
        return out

    def append_tombstones(self, records: list[dict[str, Any]]) -> None:
        """Durably record forgotten ids (their keyed hashes) before anything is deleted."""
        self.write_file(TOMBSTONES, dt.datetime.now(dt.UTC).date(), encode_lines(records))

    def read_tombstones(self) -> set[str]:
        return tombstone_tags(self._get(k) for k in self._keys(f"{TOMBSTONES}/"))

    def write_file(self, folder: str, written: dt.date, data: bytes) -> None:
        """Whole lines into `folder`, durably: appended to this writer's file of the day
        `written` where the store appends, else one new object (the decision log too)."""
        name = f"r{written.isoformat()}-{self._name}"
        try:
            if self.store.supports_append:
                self.store.append(f"{folder}/{name}.jsonl", data)
            else:
                self.store.put(f"{folder}/{name}-{time.time_ns()}-{next(self._counter)}.jsonl",
                               data, content_type=NDJSON)
        except StoreError as e:
            raise EventLogError(f"event log write failed: {e}") from e

    def _day_files(self, first: dt.date, last: dt.date | None, legacy: bool) -> list[str]:
        prefix = LEGACY_DAY if legacy else EVENT_DAY
        out = []
        for key in self._keys(prefix):
            day = _day_of(key, prefix)
            if day is not None and first <= day and (last is None or day <= last):
                out.append(key)
        return out

    def _keys(self, prefix: str) -> list[str]:
        try:
            return [k for k in self.store.keys(prefix) if k.endswith(".jsonl")]
        except StoreError as e:
            raise EventLogError(f"event log read failed: {e}") from e

    def _get(self, key: str) -> bytes:
        try:
            return self.store.get(key) or b""
        except StoreError as e:
            raise EventLogError(f"event log read failed: {e}") from e


def _day_of(key: str, prefix: str) -> dt.date | None:
    """The partition's day of a key under `prefix` (None for anything else)."""
    if not key.startswith(prefix):
        return None
    try:
        return dt.date.fromisoformat(key[len(prefix):len(prefix) + 10])
    except ValueError:
        return None


def _written_day(key: str) -> dt.date | None:
    """The day a log file was written: from its name (`r<day>-…`), or, in the old layout,
    its partition (which was the arrival day)."""
    legacy = _day_of(key, LEGACY_DAY)
    if legacy is not None:
        return legacy
    if _day_of(key, EVENT_DAY) is None:
        return None
    name = key.rsplit("/", 1)[-1]
    try:
        return dt.date.fromisoformat(name[1:11]) if name.startswith("r") else None
    except ValueError:
        return None


def event_log_from_url(origin: str) -> EventLog:
    """`file://DIR` or `s3://bucket/prefix`, as EDGEPICK_ORIGIN."""
    return EventLog(from_url(origin))


def encode_lines(messages: Iterable[dict[str, Any]]) -> bytes:
    out = bytearray()
    for message in messages:
        out += encode_json(message)
        out += b"\n"
    return bytes(out)


def encode_json(message: Any) -> bytes:
    """Compact UTF-8 JSON (orjson); a lone surrogate falls back to the standard library,
    escaped, so every line stays valid UTF-8 and nothing accepted is dropped."""
    try:
        return orjson.dumps(message, default=str)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(message, separators=(",", ":"), default=str).encode("ascii")


def tombstone_tags(files: Iterable[bytes]) -> set[str]:
    tags: set[str] = set()
    for data in files:
        for line in data.splitlines():
            try:
                tags.add(str(_loads(line)["tag"]))
            except (ValueError, TypeError, KeyError):
                continue  # a torn last line: the forget that wrote it reported an error
    return tags


def decode_lines(data: bytes, seen: set[str], out: list[dict[str, Any]]) -> int:
    """Append the new messages of `data` to `out`; returns how many lines were unreadable
    (a torn last line after a crash, a corrupted file): skipped and counted, never fatal."""
    corrupt = 0
    for line in data.splitlines():
        try:
            message = _loads(line)
            message_id = message["messageId"]
        except (ValueError, TypeError, KeyError):
            corrupt += 1
            continue
        if message_id not in seen:
            seen.add(message_id)
            out.append(message)
    return corrupt


def _loads(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)  # the standard library also reads escaped lone surrogates
