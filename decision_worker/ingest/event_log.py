"""The durable event log training reads: JSON Lines, one Segment message a line, by day.

On the origin's storage, under `events/dt=YYYY-MM-DD/`, partitioned by the day the message
was received (late events land in the day they arrived; training orders by event time).
Two implementations: a folder (one file per process, appended and fsynced before the API
answers) and S3 (one object per accepted request, since S3 objects cannot be appended to;
the PUT completes before the API answers). Either way an accepted message is durable.
Under Redis faults a message may appear twice (ingest.py): readers deduplicate by
`messageId`.

Beside the days, `events/tombstones/` holds one line per forgotten id (`edgepick forget`):
`{"tag": <the id's keyed hash>, "at": …}`. Readers that learn from the log (the replay)
skip every message of a tombstoned id; the raw lines stay until the log's retention removes
them (docs/privacy.md).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson


class EventLog(Protocol):
    def append(self, received_at: dt.datetime, messages: Iterable[dict[str, Any]]) -> int:
        """Store whole lines durably before returning; returns how many."""
        ...

    def read_day(self, day: dt.date) -> list[dict[str, Any]]:
        """Every message received that day, duplicates removed by messageId. Unreadable
        lines are skipped and added to `corrupt_lines`."""
        ...

    def append_tombstones(self, records: list[dict[str, Any]]) -> None:
        """Durably record forgotten ids (their keyed hashes) before anything is deleted."""
        ...

    def read_tombstones(self) -> set[str]:
        """Every forgotten id's keyed hash."""
        ...

    corrupt_lines: int

    def describe(self) -> str: ...


def event_log_from_url(origin: str) -> EventLog:
    """`file://DIR` or `s3://bucket/prefix`, as EDGEPICK_ORIGIN."""
    if origin.startswith("file://"):
        return FolderEventLog(Path(origin[len("file://"):]))
    from decision_worker.ingest.s3_event_log import S3EventLog

    parts = urlsplit(origin)
    return S3EventLog(parts.netloc, parts.path.strip("/"))


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


TOMBSTONES = "tombstones"


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


class FolderEventLog:
    def __init__(self, root: Path) -> None:
        self.root = root / "events"
        self._file_name = f"events-{socket.gethostname()}-{os.getpid()}.jsonl"
        self.corrupt_lines = 0

    def path_for(self, day: dt.date) -> Path:
        return self.root / f"dt={day.isoformat()}" / self._file_name

    def describe(self) -> str:
        return f"file://{self.root}"

    def append(self, received_at: dt.datetime, messages: Iterable[dict[str, Any]]) -> int:
        data = encode_lines(messages)
        if not data:
            return 0
        path = self.path_for(received_at.date())
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return data.count(b"\n")

    def read_day(self, day: dt.date) -> list[dict[str, Any]]:
        """Every message of one day, duplicates removed by messageId (first one wins)."""
        seen: set[str] = set()
        out: list[dict[str, Any]] = []
        for path in sorted((self.root / f"dt={day.isoformat()}").glob("*.jsonl")):
            self.corrupt_lines += decode_lines(path.read_bytes(), seen, out)
        return out

    def append_tombstones(self, records: list[dict[str, Any]]) -> None:
        path = self.root / TOMBSTONES / self._file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, encode_lines(records))
            os.fsync(fd)
        finally:
            os.close(fd)

    def read_tombstones(self) -> set[str]:
        return tombstone_tags(path.read_bytes()
                              for path in sorted((self.root / TOMBSTONES).glob("*.jsonl")))
