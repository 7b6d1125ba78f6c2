"""The audit log's durable copy: every rollout transition, on the origin.

The audit stream in Redis is written in the same MULTI as each transition
(rollout_store.py), which is what lets a controller resume; but it is capped and lives only
as long as Redis keeps its data. The leading controller copies new entries at each look to
the origin, as immutable JSON-lines objects named by their first stream id,

    audit/rollouts/<first stream id>.jsonl   one {"id", "at", "experiment", "action",
                                             "status", "step_index", "share", "reason"}
                                             a line (AuditEntry's fields)

then records the last copied id in `{ep:exp}:audit-archived`. A controller that dies
between the upload and the pointer writes the same object again at the next look (the same
first id, perhaps more entries): readers keep each stream id once.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import cast

import orjson
from redis import Redis

from decision_worker.keys import ROLLOUT_AUDIT, ROLLOUT_AUDIT_ARCHIVED
from decision_worker.learning.experiments.rollout_store import AuditEntry, decoded_entry
from object_store.store import ObjectStore

PREFIX = "audit/rollouts/"
BATCH = 10_000  # entries per object at most


def archive(redis: Redis, store: ObjectStore) -> int:
    """Copy the audit entries not yet on the origin; returns how many were copied."""
    copied = 0
    while True:
        last = cast(bytes | None, redis.get(ROLLOUT_AUDIT_ARCHIVED))
        start = "(" + last.decode() if last else "-"
        found = cast(list[tuple[bytes, dict[bytes, bytes]]],
                     redis.xrange(ROLLOUT_AUDIT, min=start, count=BATCH))
        if not found:
            return copied
        lines = [orjson.dumps({"id": sid.decode(), **asdict(decoded_entry(fields))})
                 for sid, fields in found]
        first, final = found[0][0].decode(), found[-1][0].decode()
        store.put(f"{PREFIX}{first.replace('-', '_')}.jsonl", b"\n".join(lines) + b"\n",
                  content_type="application/x-ndjson")
        redis.set(ROLLOUT_AUDIT_ARCHIVED, final)
        copied += len(found)


def archived_history(store: ObjectStore, experiment_id: str | None = None
                     ) -> list[AuditEntry]:
    """Every archived entry (of one experiment, or all), oldest first, each once."""
    seen: dict[str, AuditEntry] = {}
    for key in store.keys(PREFIX):
        for raw in (store.get(key) or b"").splitlines():
            try:
                doc = orjson.loads(raw)
                sid = str(doc.pop("id"))
                entry = AuditEntry(**doc)
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
                continue  # a torn line: the next copy of the object has it whole
            if experiment_id is None or entry.experiment == experiment_id:
                seen.setdefault(sid, entry)
    return [seen[sid] for sid in sorted(seen, key=_order)]


def _order(stream_id: str) -> tuple[int, int]:
    millis, _, sequence = stream_id.partition("-")
    return int(millis), int(sequence or 0)
