"""Importing history: Segment messages from files into the event log (`edgepick import`).

The first thing a new site does is bring the events it already has (a warehouse or S3
export: JSON Lines, gzip or not, one message a line). Each line is read with the API's strict
JSON reader and validated with the API's own contract and the deployment's rules, so what an
import adds, training and the worker read exactly as live traffic. A message keeps its
`receivedAt` when it has one (exports do); otherwise it is taken as received at its event
time, so the replay meets imported history in event order.

Deduplicated by `messageId` against the log (each event day's ids are read once, when the
first message of that day comes) and within the run: importing a file twice adds nothing,
and an import that crashed is resumed by running it again. Lines are written to their
event day in chunks as they come, each chunk whole or not at all. Messages of ids that were
forgotten (`edgepick forget`, the log's tombstones) are not imported. A bad line is reported
with its file and line number and skipped (`strict`: the import stops there, with
everything before it written).
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from decision_worker.errors import RequestRejected, WorkerError
from decision_worker.ingest.event_log import EventLog, TimedMessage
from decision_worker.ingest.event_time import parse_time
from decision_worker.ingest.events import DEFAULT_RULES, Event, EventRules, validate_message
from decision_worker.ingest.ingestion import log_record
from decision_worker.ingest.request_body import loads_strict
from edge_functions.keys import user_tag

FLUSH_LINES = 20_000  # buffered lines written to the log at a time
MAX_LINE_BYTES = 64 * 1024  # a message is at most 32 KB stored; longer lines are refused
PROBLEMS_KEPT = 20  # reported in detail; the rest are counted
SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz", ".json.gz", ".gz")


class ImportRefused(WorkerError):
    """A path that cannot be imported, or (with `strict`) the first bad line."""

    http_status = 400
    error_code = "import_refused"


@dataclass(frozen=True)
class LineProblem:
    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


@dataclass
class ImportSummary:
    files: int = 0
    lines: int = 0
    imported: int = 0
    duplicates: int = 0
    forgotten: int = 0
    bad_lines: int = 0
    problems: list[LineProblem] = field(default_factory=list)  # the first PROBLEMS_KEPT
    first: dt.datetime | None = None  # event time of the earliest message imported
    last: dt.datetime | None = None
    days: set[dt.date] = field(default_factory=set)
    imported_records: list[TimedMessage] = field(default_factory=list)  # with keep_records


class HistoryImport:
    """One import run into `log` (blocking; `add` each line, then `close`)."""

    def __init__(self, log: EventLog, rules: EventRules = DEFAULT_RULES, secret: bytes = b"",
                 strict: bool = False, keep_records: bool = False,
                 now: dt.datetime | None = None) -> None:
        self.log = log
        self.rules = rules
        self.strict = strict
        self.keep_records = keep_records
        self.summary = ImportSummary()
        self._now = now or dt.datetime.now(dt.UTC)
        self._secret = secret
        self._forgotten = log.read_tombstones()
        self._known: dict[dt.date, set[str]] = {}
        self._buffer: list[TimedMessage] = []

    def add(self, source: str, line_no: int, raw: bytes | dict[str, Any]) -> None:
        self.summary.lines += 1
        try:
            message = raw if isinstance(raw, dict) else _parse_line(raw)
            event, received_at = self._validate(message)
        except ImportRefused as e:
            self.refuse_line(source, line_no, str(e))
            return
        if self._is_forgotten(event):
            self.summary.forgotten += 1
            return
        known = self._ids_of(event.timestamp.date())
        if event.message_id in known:
            self.summary.duplicates += 1
            return
        known.add(event.message_id)
        self._buffer.append((event.timestamp, log_record(event, received_at)))
        self._counted(event.timestamp)
        if len(self._buffer) >= FLUSH_LINES:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self.log.append(self._now, self._buffer)
            if self.keep_records:
                self.summary.imported_records.extend(self._buffer)
            self._buffer = []

    def close(self) -> ImportSummary:
        self.flush()
        return self.summary

    def _validate(self, message: Any) -> tuple[Event, dt.datetime]:
        stated = parse_time(message.get("receivedAt")) if isinstance(message, dict) else None
        result = validate_message(0, message, stated or self._now, rules=self.rules)
        if not isinstance(result, Event):
            raise ImportRefused(f"field '{result.field}' {result.reason}")
        return result, stated or result.timestamp

    def _ids_of(self, day: dt.date) -> set[str]:
        known = self._known.get(day)
        if known is None:
            known = self._known[day] = self.log.message_ids(day)
        return known

    def _is_forgotten(self, event: Event) -> bool:
        return bool(self._forgotten) and any(
            user_tag(self._secret, i) in self._forgotten
            for i in (event.user_id, event.anonymous_id, event.previous_id) if i)

    def _counted(self, at: dt.datetime) -> None:
        s = self.summary
        s.imported += 1
        s.days.add(at.date())
        s.first = at if s.first is None else min(s.first, at)
        s.last = at if s.last is None else max(s.last, at)

    def refuse_line(self, source: str, line_no: int, reason: str) -> None:
        """Report a bad line (and stop there when `strict`)."""
        problem = LineProblem(source, line_no, reason)
        if self.strict:
            self.flush()
            raise ImportRefused(str(problem))
        self.summary.bad_lines += 1
        if len(self.summary.problems) < PROBLEMS_KEPT:
            self.summary.problems.append(problem)


def import_paths(paths: Iterable[Path], run: HistoryImport,
                 on_bytes: Callable[[int], None] = lambda n: None) -> ImportSummary:
    """Import every file of `paths` (files, or folders searched for JSON Lines files);
    `on_bytes` is told how many bytes of the files were read, for a progress bar."""
    for path in expand_paths(paths):
        run.summary.files += 1
        with path.open("rb") as raw:
            for line_no, line in enumerate(_lines(path, raw, on_bytes), start=1):
                if line is None:
                    run.summary.lines += 1
                    run.refuse_line(str(path), line_no,
                                    f"line is longer than {MAX_LINE_BYTES:,} bytes")
                elif line.strip():
                    run.add(str(path), line_no, line)
    return run.close()


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """The files to import, in a stable order; a path that is neither is refused by name."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file()
                          and p.name.lower().endswith(SUFFIXES))
        elif path.is_file():
            out.append(path)
        else:
            raise ImportRefused(f"{path}: no such file or folder")
    return out


def _lines(path: Path, raw: IO[bytes], on_bytes: Callable[[int], None]
           ) -> Iterator[bytes | None]:
    """The file's lines (gunzipped when it is gzip); None for a line over the limit."""
    counted = _CountingReader(raw, on_bytes)
    try:
        stream: gzip.GzipFile | io.BufferedReader = (
            gzip.GzipFile(fileobj=counted) if _is_gzip(raw) else io.BufferedReader(counted))
        while True:
            line = stream.readline(MAX_LINE_BYTES + 1)
            if not line:
                return
            if len(line) > MAX_LINE_BYTES:
                while line and not line.endswith(b"\n"):  # skip the rest of it
                    line = stream.readline(MAX_LINE_BYTES)
                yield None
            else:
                yield line
    except (OSError, EOFError) as e:  # a truncated or corrupt gzip member
        raise ImportRefused(f"{path}: cannot be read: {e}") from e


def _parse_line(line: bytes) -> Any:
    try:
        message = loads_strict(line.strip())
    except RequestRejected as e:
        raise ImportRefused(e.reason.replace("is not JSON", "is not a JSON message")) from e
    if not isinstance(message, dict):
        raise ImportRefused("is not a JSON object (one Segment message per line)")
    return message


def _is_gzip(raw: IO[bytes]) -> bool:
    magic = raw.read(2)
    raw.seek(0)
    return magic == b"\x1f\x8b"


class _CountingReader(io.RawIOBase):
    """Reads through to `raw`, telling `on_bytes` how much was read (compressed bytes)."""

    def __init__(self, raw: IO[bytes], on_bytes: Callable[[int], None]) -> None:
        self._raw, self._on_bytes = raw, on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        buffer[:len(data)] = data
        self._on_bytes(len(data))
        return len(data)
