"""The durable event log training reads: JSON Lines, one Segment message a line, by day.

`<origin>/events/dt=YYYY-MM-DD/events-<host>-<pid>.jsonl`, partitioned by the day the
message was received (late events land in the day they arrived; training orders by event
time). Each batch is one `write` of whole lines to a file opened for append and fsynced
before the API answers, so an accepted message is on disk. Redelivered messages may appear
twice here: readers deduplicate by `messageId`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class FolderEventLog:
    def __init__(self, root: Path) -> None:
        self.root = root / "events"
        self._file_name = f"events-{socket.gethostname()}-{os.getpid()}.jsonl"

    def path_for(self, day: dt.date) -> Path:
        return self.root / f"dt={day.isoformat()}" / self._file_name

    def append(self, received_at: dt.datetime, messages: Iterable[dict[str, Any]]) -> int:
        lines = [json.dumps(m, separators=(",", ":"), ensure_ascii=False, default=str)
                 for m in messages]
        if not lines:
            return 0
        path = self.path_for(received_at.date())
        path.parent.mkdir(parents=True, exist_ok=True)
        data = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return len(lines)

    def read_day(self, day: dt.date) -> list[dict[str, Any]]:
        """Every message of one day, duplicates removed by messageId (first one wins)."""
        seen: set[str] = set()
        out: list[dict[str, Any]] = []
        for path in sorted((self.root / f"dt={day.isoformat()}").glob("*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                message = json.loads(line)
                if message["messageId"] not in seen:
                    seen.add(message["messageId"])
                    out.append(message)
        return out
