"""The decision record: what the worker (or `edgepick pin`) writes and the edge reads.

Encoded as one short ASCII line, `1|<v1>,<v2>,…|<model>|<arm>|<decided_at>`, because every
field is an identifier drawn from `[a-z0-9_-]` (so `|` and `,` never occur inside one) and
the edge decodes it with two `split`s, far cheaper than JSON on the hot path. The leading
`1` is the format version: a reader refuses versions it does not know.

A decision made inside an experiment (a model rollout) is format 2, the same fields and the
experiment's id last: `2|<v1>,…|<model>|<arm>|<decided_at>|<experiment>`, its arm being the
experiment's variation (`control` or `treatment`). The edge logs an exposure for it when it
serves it. Records outside any experiment stay format 1, so a store written before
experiments existed reads the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_functions.errors import CorruptRecord, InvalidIdentifier
from edge_functions.identifiers import check_id

FORMAT_VERSION = "1"
EXPERIMENT_FORMAT_VERSION = "2"
MAX_RANKED = 8
HOLDOUT_ARM = "holdout"


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    ranked: tuple[str, ...]  # variant ids, best first
    model_version: str
    arm: str
    decided_at: int  # unix seconds
    experiment: str = ""  # the experiment the arm belongs to; "" outside any

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
        if self.experiment:
            check_id("experiment", self.experiment)


def encode(record: DecisionRecord) -> bytes:
    line = f"{','.join(record.ranked)}|{record.model_version}|{record.arm}|{record.decided_at}"
    if record.experiment:
        return f"{EXPERIMENT_FORMAT_VERSION}|{line}|{record.experiment}".encode("ascii")
    return f"{FORMAT_VERSION}|{line}".encode("ascii")


def decode(raw: bytes) -> DecisionRecord:
    try:
        version, ranked, model, arm, decided_at, *rest = raw.decode("ascii").split("|")
        if (version, len(rest)) not in ((FORMAT_VERSION, 0), (EXPERIMENT_FORMAT_VERSION, 1)):
            raise CorruptRecord(f"decision record format {version!r} with {len(rest) + 5} "
                                "fields is not supported")
        experiment = rest[0] if rest else ""
        if version == EXPERIMENT_FORMAT_VERSION and not experiment:
            raise CorruptRecord("a format 2 decision record names its experiment")
        return DecisionRecord(tuple(ranked.split(",")), model, arm, int(decided_at),
                              experiment)
    except CorruptRecord:
        raise
    except (UnicodeDecodeError, ValueError) as e:
        raise CorruptRecord(f"decision record {raw[:60]!r} does not decode: {e}") from e
    except InvalidIdentifier as e:
        raise CorruptRecord(f"decision record {raw[:60]!r} is invalid: {e}") from e


def decode_for_serving(raw: bytes) -> tuple[list[str], str, str]:
    """The hot path's decode: ranked ids, arm and experiment ("" outside any), no validation
    objects.

    The ids are only used as dictionary keys into the manifest, so an id that is not a
    published variant simply does not match; nothing from the record builds a URL. The arm
    and experiment only label an exposure, checked where it is counted.
    """
    parts = raw.split(b"|")
    if len(parts) == 5 and parts[0] == b"1":
        experiment = ""
    elif len(parts) == 6 and parts[0] == b"2" and parts[5]:
        experiment = parts[5].decode("ascii", "replace")
    else:
        raise CorruptRecord("decision record does not decode")
    return (parts[1].decode("ascii", "replace").split(","), parts[3].decode("ascii", "replace"),
            experiment)
