"""Exposures: the decisions of an experiment the edge *served*, on their way to the worker.

Serving a format-2 record (a decision inside an experiment) queues one exposure here; it
costs the request an append to a list. The queue never costs a round trip of its own while
requests flow: the decision reader (decision_store.py) sends what is queued in the same
pipeline as a decision lookup, as one `XADD` to `EXPOSURES_STREAM` carrying every queued
exposure packed in one field, once enough have gathered (`ride_min`) or the oldest has
waited `ride_after_s`. When no lookup comes, a timer sends them after `idle_flush_s`; on
shutdown, whatever is left goes too.

Exposures are best effort, by design: serving never waits for them and never fails because
of them. The queue is bounded (`capacity`): when it is full, or Redis refuses or loses a
batch, exposures are dropped and counted (`edgepick_edge_exposures_dropped_total`), so the
analysis can tell a gap from a drop in traffic.

Wire format (the worker parses it with `parse_line`): the entry's field `x` holds one line
per exposure, `<ms>|<placement>|<experiment>|<arm>|<user id>`, lines joined by `\\n`; `<ms>`
is when the lookup that served it was sent (unix milliseconds). The
user id is the one the edge identified the request by (cookie, header or query), in the
clear, last on the line: user ids are printable (no line break) but may hold `|`. The
worker derives the keyed hash itself, and turns first exposures into Segment
`Experiment Viewed` messages, which need the id a Segment destination knows the user by.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from edge_functions.identifiers import check_id, check_user_id

FIELD = b"x"
VERSION_FIELD = b"v"
WIRE_VERSION = b"1"
STREAM_MAX_ENTRIES = 100_000  # approximate cap (XADD MAXLEN ~): bounded if no worker reads
DROP_REASONS = ("buffer-full", "store-error")
log = logging.getLogger("edgepick.edge")


@dataclass(frozen=True, slots=True)
class Exposure:
    at_ms: int
    placement: str
    experiment: str
    arm: str
    user_id: str


def parse_line(line: str) -> Exposure:
    """One exposure line, checked (ValueError or InvalidIdentifier when malformed)."""
    at_ms, placement, experiment, arm, user_id = line.split("|", 4)
    at = int(at_ms)
    if at < 0:
        raise ValueError(f"exposure time {at_ms!r} is negative")
    return Exposure(at, check_id("placement", placement), check_id("experiment", experiment),
                    check_id("arm", arm), check_user_id(user_id))


class ExposureQueue:
    """Exposures waiting for a ride to Redis. One per process, on the serving loop."""

    def __init__(self, capacity: int = 10_000, ride_min: int = 256, ride_after_s: float = 0.25,
                 idle_flush_s: float = 1.0) -> None:
        self.capacity = capacity
        self.ride_min = ride_min
        self.ride_after_s = ride_after_s
        self.idle_flush_s = idle_flush_s
        self._lines: list[tuple[str, str, str, str, str]] = []
        self._oldest = 0.0
        self.stamp = str(int(time.time() * 1000))  # ms of the latest lookup flush
        self._timer: asyncio.TimerHandle | None = None
        # Set by the reader: sends the queue alone (the idle timer, shutdown).
        self.send_alone: Callable[[], Coroutine[Any, Any, None]] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.queued = 0
        self.sent = 0
        self.dropped = dict.fromkeys(DROP_REASONS, 0)

    def add(self, user_id: str, placement: str, experiment: str, arm: str) -> None:
        """Queue one served exposure; never blocks, never raises for a full queue. Kept as a
        tuple, formatted when sent: the hot path pays an append (measured: docs/benchmarks.md,
        "Exposures at the edge")."""
        lines = self._lines
        if len(lines) >= self.capacity:
            self.dropped["buffer-full"] += 1
            return
        if not lines:
            self._oldest = time.monotonic()
            if self._timer is None and self.send_alone is not None:
                self._timer = asyncio.get_running_loop().call_later(self.idle_flush_s,
                                                                    self._on_timer)
        lines.append((self.stamp, placement, experiment, arm, user_id))
        self.queued += 1

    def on_flush(self) -> bool:
        """Called as a lookup flush starts: stamps its time (the exposures served from it
        carry it, one clock read a batch rather than one a request), and says whether the
        queue should ride with it: enough gathered, or the oldest waited long enough."""
        self.stamp = str(int(time.time() * 1000))
        lines = self._lines
        return bool(lines) and (len(lines) >= self.ride_min
                                or time.monotonic() - self._oldest >= self.ride_after_s)

    def take(self) -> tuple[bytes, int]:
        """Everything queued, packed as one stream field, and how many exposures it holds."""
        lines, self._lines = self._lines, []
        return ("\n".join(["|".join(line) for line in lines]).encode("utf-8", "surrogatepass"),
                len(lines))

    def settle(self, count: int, ok: bool) -> None:
        """Account for a batch sent (`ok`) or lost with Redis."""
        if ok:
            self.sent += count
        else:
            self.dropped["store-error"] += count

    def _on_timer(self) -> None:
        self._timer = None
        if not self._lines or self.send_alone is None:
            return
        loop = asyncio.get_running_loop()
        waited = time.monotonic() - self._oldest
        if waited < self.idle_flush_s:  # lookups carried the earlier ones: wait for these
            self._timer = loop.call_later(self.idle_flush_s - waited, self._on_timer)
            return
        task = loop.create_task(self.send_alone())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Send what is left (the reader's `send_alone`), then stop the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._lines and self.send_alone is not None:
            await self.send_alone()
