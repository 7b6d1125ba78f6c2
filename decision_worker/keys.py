"""Redis keys of the worker side. All share the hash tag `{ep:events}`, so the ingest script
that checks idempotency markers and appends to the stream touches one Cluster slot."""

from __future__ import annotations

EVENTS_STREAM = "{ep:events}:stream"
DEAD_LETTER_STREAM = "{ep:events}:dead"
SEEN_PREFIX = "{ep:events}:seen:"  # + messageId: idempotency marker with a TTL

SEEN_TTL_S = 48 * 3600  # longer than any sender's retry window (Segment retries for hours)
STREAM_MAX_LEN = 1_000_000  # approximate trim; entries are archived in the event log first
DEAD_LETTER_MAX_LEN = 100_000
