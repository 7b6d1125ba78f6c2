"""The why-record: what a decision's first slot was chosen from, kept beside the decision.

The worker scores with a compiled model that cannot say which features moved a score, and
computing LightGBM's per-row contributions for every decision would cost the worker a
large share of its throughput. So the worker keeps, per user and placement, only what an
explanation needs later: the variant put first, the probability that it was (exploration.py),
whether the draw explored, and that variant's feature row. `GET /v1/decisions/{user}` and
`edgepick explain` load the model named in the decision and compute the contributions on
read (contributions.py).

Encoded as one ASCII line, `1|<variant>|<propensity>|<explored 0/1>|<f1>,<f2>,…`, the
propensity exact (`repr`), the features to 6 significant digits (a stored row is about
200 bytes; contributions are those of the stored row, which differ from the scored one only
where a value lies within that rounding of a split threshold). A holdout decision has no
row: it serves the default by rule. Written with the decision, in the same compare-and-set
and with its TTL, under `ep:w:{<tag>}:<placement>` (decision_worker/keys.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_functions.errors import CorruptRecord, InvalidIdentifier
from edge_functions.identifiers import check_id

FORMAT_VERSION = "1"


@dataclass(frozen=True)
class WhyRecord:
    variant: str  # the variant put first
    propensity: float  # P(that variant first) under the placement's policy
    explored: bool  # the draw took the exploration branch
    features: tuple[float, ...]  # its feature row as scored (empty: not scored)


def encode_why(why: WhyRecord) -> bytes:
    row = ",".join([f"{v:.6g}" for v in why.features])
    return (f"{FORMAT_VERSION}|{why.variant}|{why.propensity!r}|{int(why.explored)}|{row}"
            ).encode("ascii")


def decode_why(raw: bytes) -> WhyRecord:
    try:
        version, variant, propensity, explored, row = raw.decode("ascii").split("|")
        if version != FORMAT_VERSION:
            raise CorruptRecord(f"why-record format {version!r} is not supported")
        check_id("variant", variant)
        p = float(propensity)
        if not 0.0 < p <= 1.0 or explored not in ("0", "1"):
            raise ValueError(f"propensity {propensity} or explored flag {explored} out of range")
        return WhyRecord(variant, p, explored == "1",
                         tuple(float(v) for v in row.split(",")) if row else ())
    except CorruptRecord:
        raise
    except (UnicodeDecodeError, ValueError, InvalidIdentifier) as e:
        raise CorruptRecord(f"why-record {raw[:60]!r} does not decode: {e}") from e
