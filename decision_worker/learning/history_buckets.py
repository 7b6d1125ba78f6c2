"""The evaluation split by how much the user had done before: new users and heavy users are
different problems (trending serves the first, personal taste the second), and an average
over both can hide a model that loses on one of them. Per bucket, every model's mean and the
candidate's paired difference from production and from trending, with 95 % intervals
(users resampled, intervals.py)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from decision_worker.learning.evaluation import HISTORY_BUCKETS, Evaluation
from decision_worker.learning.intervals import paired_difference


def by_history(evaluations: list[Evaluation], metric: str) -> dict[str, dict[str, Any]]:
    """{bucket: {"groups", "users", "means": {model: mean}, "vs <model>": interval}} of
    `metric` (a session metric) over the test sessions. `evaluations[0]` is the candidate;
    the others are compared with it."""
    candidate = evaluations[0]
    history = candidate.session_history
    out: dict[str, dict[str, Any]] = {}
    for low, high, label in HISTORY_BUCKETS:
        rows = np.flatnonzero((history >= low) & (history <= high))
        if not len(rows):
            continue
        users = [candidate.session_users[i] for i in rows]
        mine = candidate.per_session[metric][rows]
        entry: dict[str, Any] = {"groups": len(rows), "users": len(set(users)),
                                 "means": {e.name: float(e.per_session[metric][rows].mean())
                                           for e in evaluations}}
        for other in evaluations[1:]:
            entry[f"vs {other.name}"] = asdict(paired_difference(
                users, mine, other.per_session[metric][rows]))
        out[label] = entry
    return out


def describe(buckets: dict[str, dict[str, Any]], metric: str, against: str) -> list[str]:
    """One line per bucket: every model's mean and the candidate − `against` interval."""
    lines = []
    for label, entry in buckets.items():
        means = ", ".join(f"{name.split(' (')[0]} {value:.4f}"
                          for name, value in entry["means"].items())
        diff = next(v for k, v in entry.items() if k.startswith(f"vs {against}"))
        lines.append(f"{label} ({entry['groups']:,} sessions, {entry['users']:,} users): "
                     f"{metric} {means}; candidate − {against} {diff['value']:+.4f} "
                     f"[{diff['low']:+.4f}, {diff['high']:+.4f}]")
    return lines
