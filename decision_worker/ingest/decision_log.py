"""The decision log: every decision the worker wrote, one JSON line each, by decided day, on
the origin beside the event log. Training joins it with the event log: what was served
first, under which model and arm, and with which probability (the propensity), so that
a new policy's click-through can be estimated off-policy (learning/off_policy.py) and
training can weigh what the logging policy chose to show.

Why the worker logs, rather than the page echoing a `propensity` property on its
`Variant Viewed` events: the worker is the one that knows the probability, pages need not
cooperate or be redeployed (a page that drops the property would silently bias every
estimate), and the edge stays as it is: no import, no extra round trip.

    decisions/decided_day=YYYY-MM-DD/r<written day>-<host>-<pid>.jsonl
    {"tag": <the user's keyed hash>, "placement", "variant": the first ranked,
     "propensity", "explored", "model", "arm", "decided_at": unix s,
     "experiment": its id, only for a decision in an experiment's arm (record format 2),
     "shadow_model", "shadow_ranked": only when a model in shadow also ranked for this
     decision: its version and the list it would have served (never stored nor served)}

Only the keyed hash of the user is written (training computes it from the event log's ids
with the same secret), and forgotten tags (the event log's tombstones) are left out by
readers. The worker appends lines after the decisions are in Redis, every second
(online/decision_logger.py); a redelivered entry decides the same again and logs it again,
so readers keep one line per (tag, placement, decided_at).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import orjson

from decision_worker.errors import EventLogError
from decision_worker.ingest.event_log import EventLog, encode_lines
from object_store.store import ObjectStore, StoreError

PREFIX = "decisions"
DECIDED_DAY = f"{PREFIX}/decided_day="
FIELDS = ("tag", "placement", "variant", "propensity", "explored", "model", "arm",
          "decided_at")


class DecisionLog:
    def __init__(self, store: ObjectStore, writer: str = "") -> None:
        self.store = store
        self._files = EventLog(store, writer)  # the event log's durable file writing
        self.corrupt_lines = 0

    def describe(self) -> str:
        return f"{self.store.describe().rstrip('/')}/{PREFIX}"

    def append(self, lines: Iterable[dict[str, Any]]) -> int:
        """Write decision lines durably, each in the day it was decided; returns how many."""
        by_day: dict[dt.date, list[dict[str, Any]]] = {}
        for line in lines:
            day = dt.datetime.fromtimestamp(int(line["decided_at"]), dt.UTC).date()
            by_day.setdefault(day, []).append(line)
        written = 0
        today = dt.datetime.now(dt.UTC).date()
        for day in sorted(by_day):
            self._files.write_file(f"{DECIDED_DAY}{day.isoformat()}", today,
                                   encode_lines(by_day[day]))
            written += len(by_day[day])
        return written

    def read_days(self, first: dt.date, last: dt.date,
                  forgotten: frozenset[str] | set[str] = frozenset()) -> list[dict[str, Any]]:
        """The decisions of days [first, last], one per (tag, placement, decided_at), the
        first line met winning; lines of `forgotten` tags and malformed lines left out."""
        try:
            keys = [k for k in self.store.keys(DECIDED_DAY) if k.endswith(".jsonl")]
            chunks = [self.store.get(k) or b"" for k in keys
                      if first.isoformat() <= k[len(DECIDED_DAY):len(DECIDED_DAY) + 10]
                      <= last.isoformat()]
        except StoreError as e:
            raise EventLogError(f"decision log read failed: {e}") from e
        out: dict[tuple[str, str, int], dict[str, Any]] = {}
        for chunk in chunks:
            lines: list[dict[str, Any]] = []
            self.corrupt_lines += _decode(chunk, lines)
            for line in lines:
                if line["tag"] not in forgotten:
                    out.setdefault((line["tag"], line["placement"], line["decided_at"]), line)
        return sorted(out.values(), key=lambda line: (line["decided_at"], line["tag"],
                                                      line["placement"]))


def _decode(data: bytes, out: list[dict[str, Any]]) -> int:
    """Well-formed decision lines of `data` into `out`; returns how many were not (a torn
    last line after a crash: skipped and counted, never fatal)."""
    corrupt = 0
    for raw in data.splitlines():
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            corrupt += 1
            continue
        if isinstance(line, dict) and all(k in line for k in FIELDS) \
                and isinstance(line["tag"], str) and isinstance(line["placement"], str) \
                and isinstance(line["decided_at"], int) \
                and isinstance(line["propensity"], float) and 0 < line["propensity"] <= 1:
            out.append(line)
        else:
            corrupt += 1
    return corrupt
