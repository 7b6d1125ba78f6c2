"""Dead letters: what could not be taken, kept (scrubbed, bounded) with the reason.

One writer for the two sources: messages the events API refused (`index` in their request)
and stream entries the worker gave up on (`entry`: undecodable, or failing delivery after
delivery). `{ep:events}:dead` is capped by count on append and trimmed by age by workers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from redis.asyncio.client import Pipeline

from decision_worker.ingest.event_log import encode_json
from decision_worker.keys import DEAD_LETTER_MAX_LEN, DEAD_LETTER_RAW_BYTES, DEAD_LETTER_STREAM


@dataclass(frozen=True)
class DeadLetter:
    field: str
    reason: str
    raw: Any  # the refused message (scrubbed), or a stream entry's payload bytes
    index: int | None = None  # the message's position in its request
    entry: str | None = None  # the stream entry id


def add_dead_letters(pipe: Pipeline, letters: list[DeadLetter],
                     received_at: dt.datetime) -> None:
    """Queue the letters on `pipe` (the caller executes it, with whatever belongs beside)."""
    for letter in letters:
        raw = letter.raw if isinstance(letter.raw, bytes) else encode_json(letter.raw)
        fields: dict[str, str | int | bytes] = {
            "field": letter.field, "reason": letter.reason,
            "received_at": received_at.isoformat(), "raw": raw[:DEAD_LETTER_RAW_BYTES]}
        if letter.index is not None:
            fields["index"] = letter.index
        if letter.entry is not None:
            fields["entry"] = letter.entry
        pipe.xadd(DEAD_LETTER_STREAM, fields,  # type: ignore[arg-type]
                  maxlen=DEAD_LETTER_MAX_LEN, approximate=True)
