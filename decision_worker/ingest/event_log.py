"""The durable event log training reads: JSON Lines, one Segment message a line, by day.

On the origin's object store, under `events/dt=YYYY-MM-DD/`, partitioned by the day the
message was received (late events land in the day they arrived; training orders by event
time). A store that can append (a folder) gets one file per process, appended and fsynced
before the API answers; one that cannot (S3) gets one object per accepted request, whose PUT
completes before the API answers. Either way an accepted message is durable. Under Redis
faults a message may appear twice (ingestion.py): readers deduplicate by `messageId`.

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
TOMBSTONES = f"{PREFIX}/tombstones"
NDJSON = "application/x-ndjson"


class EventLog:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._name = f"events-{socket.gethostname()}-{os.getpid()}"
        self._counter = itertools.count()
        self.corrupt_lines = 0  # unreadable lines met by the reads so far

    def describe(self) -> str:
        return f"{self.store.describe()}{PREFIX}"

    def append(self, received_at: dt.datetime, messages: Iterable[dict[str, Any]]) -> int:
        """Store whole lines durably before returning; returns how many."""
        data = encode_lines(messages)
        if data:
            self._write(f"{PREFIX}/dt={received_at.date().isoformat()}", data)
        return data.count(b"\n")

    def read_day(self, day: dt.date) -> list[dict[str, Any]]:
        """Every message received that day, duplicates removed by messageId (first wins).
        Unreadable lines are skipped and counted in `corrupt_lines`."""
        seen: set[str] = set()
        out: list[dict[str, Any]] = []
        for data in self._read_all(f"{PREFIX}/dt={day.isoformat()}/"):
            self.corrupt_lines += decode_lines(data, seen, out)
        return out

    def append_tombstones(self, records: list[dict[str, Any]]) -> None:
        """Durably record forgotten ids (their keyed hashes) before anything is deleted."""
        self._write(TOMBSTONES, encode_lines(records))

    def read_tombstones(self) -> set[str]:
        return tombstone_tags(self._read_all(f"{TOMBSTONES}/"))

    def _write(self, folder: str, data: bytes) -> None:
        try:
            if self.store.supports_append:
                self.store.append(f"{folder}/{self._name}.jsonl", data)
            else:
                self.store.put(f"{folder}/{self._name}-{time.time_ns()}-"
                               f"{next(self._counter)}.jsonl", data, content_type=NDJSON)
        except StoreError as e:
            raise EventLogError(f"event log write failed: {e}") from e

    def _read_all(self, prefix: str) -> Iterable[bytes]:
        try:
            for key in self.store.keys(prefix):
                if key.endswith(".jsonl"):
                    yield self.store.get(key) or b""
        except StoreError as e:
            raise EventLogError(f"event log read failed: {e}") from e


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
