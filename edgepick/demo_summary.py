"""The demo's summary: how fresh the decisions were, and how much the synthetic users would
click what was decided against the placements' defaults, with an interval over users."""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
from redis import Redis
from rich.console import Console
from rich.table import Table

from decision_worker.learning.intervals import paired_difference
from decision_worker.learning.synthetic import Population
from decision_worker.online.batch_result import BatchResult
from decision_worker.settings import WorkerSettings
from edge_functions.decision_record import HOLDOUT_ARM, decode
from edge_functions.errors import EdgepickError
from edge_functions.keys import decision_key, user_tag


class MissingDecision(EdgepickError):
    error_code = "demo_failed"


def print_summary(console: Console, redis: Redis, settings: WorkerSettings,
                  population: Population, totals: BatchResult, per_second: float
                  ) -> dict[tuple[str, str], str]:
    """Read every user's decisions as the edge would and print the table; returns the
    variant put first for each (user id, placement) outside the holdout."""
    served: dict[tuple[str, str], str] = {}
    users, decided, default, held = _click_probabilities(redis, settings, population, served)
    latencies = sorted(totals.latencies)
    table = Table(title=f"Synthetic population: {len(population.users)} users, "
                        f"{len(population.catalog.placements)} placements", show_header=False)
    table.add_column("what")
    table.add_column("figure")
    table.add_row("decisions written", f"{totals.decisions:,}")
    if latencies:
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        table.add_row("session start → decision", f"p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        table.add_row("", f"(one session start per request, {per_second:g}/s)")
    if decided:
        mine, theirs = statistics.fmean(decided), statistics.fmean(default)
        lift = paired_difference(users, np.array(decided), np.array(default))
        table.add_row("click-through, decided variants", f"{mine:.2%}")
        table.add_row("click-through, the defaults", f"{theirs:.2%}")
        table.add_row(f"difference [95 % CI, {lift.users} users]",
                      f"{lift.value:+.2%} [{lift.low:+.2%}, {lift.high:+.2%}], "
                      f"×{mine / theirs:.2f}")
    table.add_row("holdout (always the default)", f"{held} users")
    console.print(table)
    return served


def _click_probabilities(redis: Redis, settings: WorkerSettings, population: Population,
                         served: dict[tuple[str, str], str]
                         ) -> tuple[list[str], list[float], list[float], int]:
    """(user per decision, the decided first variant's click probability, the default's,
    users held out): the synthetic users' hidden preferences, read off every decision
    (each first variant also noted in `served`)."""
    placements = sorted(population.catalog.placements)
    users: list[str] = []
    decided: list[float] = []
    default: list[float] = []
    held = 0
    for user in population.users:
        tag = user_tag(settings.key_secret_bytes, user.user_id)
        raws: Any = redis.mget([decision_key(tag, p) for p in placements])
        for placement, raw in zip(placements, raws, strict=True):
            if raw is None:
                raise MissingDecision(f"no decision for {user.user_id} in {placement}")
            record = decode(raw)
            if record.arm == HOLDOUT_ARM:
                held += placement == placements[0]
                continue
            candidates = population.catalog.placements[placement]
            fallback = candidates.variants[candidates.default_index]
            users.append(user.user_id)
            served[(user.user_id, placement)] = record.ranked[0]
            decided.append(population.click_probability(user, placement, record.ranked[0]))
            default.append(population.click_probability(user, placement, fallback))
    return users, decided, default, held
