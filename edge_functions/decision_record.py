"""The decision record: what the worker (or `edgepick pin`) writes and the edge reads.

Encoded as one short ASCII line, `1|<v1>,<v2>,…|<model>|<arm>|<decided_at>`, because every
field is an identifier drawn from `[a-z0-9_-]` (so `|` and `,` never occur inside one) and
the edge decodes it with two `split`s, far cheaper than JSON on the hot path. The leading
`1` is the format version: a reader refuses versions it does not know.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_functions.errors import CorruptRecord, InvalidIdentifier
from edge_functions.identifiers import check_id

FORMAT_VERSION = "1"
MAX_RANKED = 8
HOLDOUT_ARM = "holdout"


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    ranked: tuple[str, ...]  # variant ids, best first
    model_version: str
    arm: str
    decided_at: int  # unix seconds

    def __post_init__(self) -> None:
        if not 1 <= len(self.ranked) <= MAX_RANKED:
            raise CorruptRecord(f"a decision ranks 1 to {MAX_RANKED} variants, "
                                f"got {len(self.ranked)}")
        for variant in self.ranked:
            check_id("variant", variant)
        check_id("model version", self.model_version)
        check_id("arm", self.arm)
        if self.decided_at < 0:
            raise CorruptRecord("decided_at must be a unix time in seconds")


def encode(record: DecisionRecord) -> bytes:
    return (
        f"{FORMAT_VERSION}|{','.join(record.ranked)}|{record.model_version}"
        f"|{record.arm}|{record.decided_at}"
    ).encode("ascii")


def decode(raw: bytes) -> DecisionRecord:
    try:
        version, ranked, model, arm, decided_at = raw.decode("ascii").split("|")
        if version != FORMAT_VERSION:
            raise CorruptRecord(f"decision record format {version!r} is not supported")
        return DecisionRecord(tuple(ranked.split(",")), model, arm, int(decided_at))
    except CorruptRecord:
        raise
    except (UnicodeDecodeError, ValueError) as e:
        raise CorruptRecord(f"decision record {raw[:60]!r} does not decode: {e}") from e
    except InvalidIdentifier as e:
        raise CorruptRecord(f"decision record {raw[:60]!r} is invalid: {e}") from e


def decode_for_serving(raw: bytes) -> tuple[list[str], str]:
    """The hot path's decode: ranked ids and arm only, no validation objects.

    The ids are only used as dictionary keys into the manifest, so an id that is not a
    published variant simply does not match; nothing from the record builds a URL.
    """
    parts = raw.split(b"|")
    if len(parts) != 5 or parts[0] != b"1":
        raise CorruptRecord("decision record does not decode")
    return parts[1].decode("ascii", "replace").split(","), parts[3].decode("ascii", "replace")
