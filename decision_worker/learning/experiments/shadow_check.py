"""How a model in shadow would have done: its logged choices against what users then did.

While an experiment is in shadow, the worker also ranks a share of decisions with the
experiment's model and writes what it would have served to the decision log
(`shadow_model`, `shadow_ranked`; online/decision_logger.py), never serving it. Over those
decisions, per placement and overall, with 95 % intervals over users (intervals.py):

- agreement: the share whose shadow first choice is the variant production served first;
- production's click-through: the user clicked (or converted on) the served first choice in
  that placement after the session start and before their next one, at most
  `SESSION_WINDOW_S` later (off_policy.py's reward);
- the shadow's click-through estimated off-policy from the logged propensities (the shadow
  puts its first choice first: IPS and SNIPS of that deterministic policy, off_policy.py's
  estimator). Only decisions where production served the shadow's pick (agreement, or
  exploration landing on it) carry evidence: `support` says how many;
- engagement with the shadow's pick anyway: the share of decisions after which the user
  clicked the shadow's first choice in that placement within the window (further down a
  row, or on another page). The served pick was shown first and the shadow's maybe not at
  all, so this is a floor for the shadow, not a like-for-like comparison.

Decisions at session starts are compared (found by the user's keyed tag and the second, as
off_policy.py finds them; the decision log holds no raw id); re-decisions after a click are
left out, since the click that caused one would count as its outcome.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from decision_worker.ingest.decision_log import DecisionLog
from decision_worker.ingest.event_log import EventLog
from decision_worker.ingest.events import DEFAULT_RULES, Event, EventRules
from decision_worker.learning.intervals import Interval, ratio_interval
from decision_worker.learning.off_policy import UserTags, estimate
from decision_worker.learning.replay import parse_log
from decision_worker.learning.session_groups import (
    SESSION_WINDOW_S,
    engaged_after,
    next_session_starts,
)
from decision_worker.ranking.experiment import Experiment

ALL = "all placements"


@dataclass(frozen=True)
class ShadowFigures:
    decisions: int
    users: int
    agreement: Interval  # share of decisions whose first choices agree
    production_ctr: Interval  # clicks on the served first choice
    shadow_ips: Interval  # the shadow's first-slot click-through, off-policy
    shadow_snips: Interval
    support: int  # decisions where production served the shadow's pick
    shadow_pick_clicked: Interval  # clicks on the shadow's pick, wherever it was shown


@dataclass(frozen=True)
class ShadowReport:
    experiment: str
    model: str
    since: float
    until: float
    figures: dict[str, ShadowFigures]  # ALL and each placement with shadowed decisions


def shadow_report(experiment: Experiment, decisions: list[dict[str, Any]],
                  events: list[Event], secret: bytes, since: float, until: float
                  ) -> ShadowReport:
    """The report over `decisions` (decision-log lines) that the experiment's model shadowed
    in [since, until); `events` must cover the window and `SESSION_WINDOW_S` after it."""
    mine = [d for d in decisions if d.get("shadow_model") == experiment.treatment_model
            and isinstance(d.get("shadow_ranked"), list) and d["shadow_ranked"]
            and since <= d["decided_at"] < until]
    tags = UserTags(secret)
    clicks, starts = _clicks_by_tag(events, tags), _session_starts(events, tags)
    rows: dict[str, list[tuple[str, float, float, float, float]]] = defaultdict(list)
    for d in mine:
        window = starts.get((d["tag"], d["decided_at"]))
        if window is None:
            continue
        served, pick = d["variant"], str(d["shadow_ranked"][0])
        found = clicks.get((d["tag"], d["placement"]), ([], []))
        clicked = _clicked_within(found, *window)
        row = (d["tag"], float(pick == served), float(served in clicked),
               float(pick in clicked), float(d["propensity"]))
        rows[ALL].append(row)
        rows[d["placement"]].append(row)
    return ShadowReport(experiment.id, experiment.treatment_model, since, until,
                        {name: _figures(found) for name, found in rows.items()})


def _figures(rows: list[tuple[str, float, float, float, float]]) -> ShadowFigures:
    users = [r[0] for r in rows]
    agree, served_clicked, pick_clicked, propensity = (
        np.array([r[i] for r in rows]) for i in range(1, 5))
    ones = np.ones(len(rows))
    # The shadow's policy is deterministic: probability 1 on its pick, 0 elsewhere.
    off_policy = estimate("shadow", users, propensity, served_clicked, agree, ones * 0.0,
                          ones * 0.0)
    return ShadowFigures(len(rows), len(set(users)), ratio_interval(users, agree, ones),
                         ratio_interval(users, served_clicked, ones), off_policy.ips,
                         off_policy.snips, int(agree.sum()),
                         ratio_interval(users, pick_clicked, ones))


Clicks = dict[tuple[str, str], tuple[list[float], list[str]]]


def _clicks_by_tag(events: list[Event], tags: UserTags) -> Clicks:
    """(user tag, placement) → sorted times and variants of clicks and conversions."""
    out: Clicks = {}
    for (who, placement), (times, items) in engaged_after(events).items():
        tag = tags(who)
        kept = [(t, v) for t, (v, label) in zip(times, items, strict=True) if label > 0]
        if kept:
            out[(tag, placement)] = ([t for t, _ in kept], [v for _, v in kept])
    return out


def _session_starts(events: list[Event], tags: UserTags
                    ) -> dict[tuple[str, int], tuple[float, float]]:
    """(user tag, second) of every session start → (its time, the end of its window)."""
    following = next_session_starts(events)
    out: dict[tuple[str, int], tuple[float, float]] = {}
    for event in events:
        who = event.user_id or event.anonymous_id
        if event.session_start and who:
            at = event.timestamp.timestamp()
            out[(tags(who), int(at))] = (
                at, min(following[id(event)], at + SESSION_WINDOW_S))
    return out


def _clicked_within(found: tuple[list[float], list[str]], start: float, end: float
                    ) -> set[str]:
    times, variants = found
    return set(variants[bisect.bisect_right(times, start):bisect.bisect_left(times, end)])


def read_shadow_report(log: EventLog, experiment: Experiment, secret: bytes,
                       until: float | None = None, rules: EventRules = DEFAULT_RULES
                       ) -> ShadowReport:
    """The report from the origin's decision log and event log: the experiment's decisions
    from its start to `until` (now), and the events up to `SESSION_WINDOW_S` after."""
    end = dt.datetime.now(dt.UTC).timestamp() if until is None else until
    start = experiment.started_at or end - 7 * 86_400
    first = dt.datetime.fromtimestamp(start, dt.UTC).date()
    last = dt.datetime.fromtimestamp(end + SESSION_WINDOW_S, dt.UTC).date()
    forgotten = log.read_tombstones()
    decisions = DecisionLog(log.store).read_days(first, last, forgotten)
    events, _ = parse_log(log.read_days(first, last), rules, forgotten, secret)
    return shadow_report(experiment, decisions, events, secret, start, end)
