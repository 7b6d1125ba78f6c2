"""The why-record: what each decision's first slot was chosen from, kept beside the decisions.

The worker scores with a compiled model that cannot say which features moved a score, and
computing LightGBM's per-row contributions for every decision would cost the worker a
large share of its throughput. So the worker keeps, per user and placement, only what an
explanation needs later: the variant put first, the probability that it was (exploration.py),
whether the draw explored, and that variant's feature row. `GET /v1/decisions/{user}` and
`edgepick explain` load the model named in the decision and compute the contributions on
read (contributions.py).

One key per user, `ep:w:{<tag>}` (decision_worker/keys.py), for all the placements decided
together, written in the same compare-and-set as the decisions and with their TTL: one more
SET per user rather than one per placement (measured: a key per placement cost the worker
about a tenth of its throughput). ASCII lines:

    1|<decided_at>
    <placement>|<variant>|<propensity>|<explored 0/1>|<row>

the propensity exact (`repr`), the row the scored features as little-endian float32,
base64 (a 30-feature row: 160 characters). Contributions are those of the stored row, which
differs from the scored one only where a value lies within float32 rounding of a split
threshold. A holdout decision has no row: it serves the default by rule. A reader uses an
entry only for the decision it was written with (same `decided_at`, same first variant): a
decision pinned by hand since has none.
"""

from __future__ import annotations

import base64
import binascii
import functools
import struct
from dataclasses import dataclass

from edge_functions.errors import CorruptRecord, InvalidIdentifier
from edge_functions.identifiers import check_id

FORMAT_VERSION = "1"


@dataclass(frozen=True, slots=True)
class WhyRecord:
    variant: str  # the variant put first
    propensity: float  # P(that variant first) under the placement's policy
    explored: bool  # the draw took the exploration branch
    features: tuple[float, ...]  # its feature row as scored (empty: not scored)


@functools.lru_cache(maxsize=8)
def _row_format(length: int) -> struct.Struct:
    return struct.Struct(f"<{length}f")


def encode_whys(decided_at: int, whys: dict[str, WhyRecord]) -> bytes:
    """One user's why-records, all decided at `decided_at`."""
    lines = [f"{FORMAT_VERSION}|{decided_at}"]
    for placement, why in whys.items():
        row = base64.b64encode(_row_format(len(why.features)).pack(*why.features)).decode()
        lines.append(f"{placement}|{why.variant}|{why.propensity!r}|{int(why.explored)}|{row}")
    return "\n".join(lines).encode("ascii")


def decode_whys(raw: bytes) -> tuple[int, dict[str, WhyRecord]]:
    """(decided_at, {placement: why-record}); CorruptRecord when it does not decode."""
    try:
        head, *lines = raw.decode("ascii").split("\n")
        version, decided_at = head.split("|")
        if version != FORMAT_VERSION:
            raise CorruptRecord(f"why-record format {version!r} is not supported")
        whys = {}
        for line in lines:
            placement, variant, propensity, explored, row = line.split("|")
            check_id("placement", placement)
            check_id("variant", variant)
            p = float(propensity)
            if not 0.0 < p <= 1.0 or explored not in ("0", "1"):
                raise ValueError(f"propensity {propensity} or flag {explored} out of range")
            packed = base64.b64decode(row, validate=True)
            whys[placement] = WhyRecord(variant, p, explored == "1",
                                        _row_format(len(packed) // 4).unpack(packed))
        return int(decided_at), whys
    except CorruptRecord:
        raise
    except (UnicodeDecodeError, ValueError, InvalidIdentifier, binascii.Error,
            struct.error) as e:
        raise CorruptRecord(f"why-record {raw[:60]!r} does not decode: {e}") from e
