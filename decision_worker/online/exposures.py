"""Counting the edge's exposures: the worker's side of `EXPOSURES_STREAM`.

Each stream entry is one batch the edge sent (edge_functions/exposures.py: one line per
served decision of an experiment's arm). Workers read it in the consumer group
`EXPOSURES_GROUP` between their event batches, and for each entry:
1. check every line (ids as edge_functions.identifiers says); a malformed line, an unknown
   or inactive experiment, an arm that is not the experiment's, a placement it does not
   cover, a forgotten user: counted by outcome and skipped, never an error;
2. count the rest in the arm counters (ranking/arm_counters.py) in the experiment's current
   step, for the experiment and per placement, with one script call marked with the entry's
   id, so an entry delivered twice is counted once;
3. log each user's first exposure in the step as a Segment `Experiment Viewed` message
   (event_log.append_exposures), with a messageId derived from (user, experiment, step),
   so a repeat is a duplicate readers drop;
4. acknowledge and delete the entry (and the marker of step 2).
A worker that dies before 4 leaves the entry pending; another claims it after
`CLAIM_IDLE_S` and the marker of step 2 returns the same first exposures, so step 3 is
repeated, never lost. An event-log failure leaves the entry pending too.

Every exposure counts in x (click-through's denominator is every decision served), while
`Experiment Viewed` is sent once per user and step: the analysis of a destination needs the
user's first exposure to the variation (as GrowthBook's SDKs fire it once per user and
experiment), not every page view.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from decision_worker.errors import EventLogError
from decision_worker.ingest.event_log import EventLog
from decision_worker.keys import EXPOSURES_GROUP, SUPPRESSED, exposures_applied_key
from decision_worker.online.metrics import exposure_outcomes
from decision_worker.ranking.arm_counters import (
    CounterChange,
    ExperimentSteps,
    apply_changes,
    arms_of,
)
from decision_worker.ranking.experiment import PERSONALIZATION, TREATMENT, Experiment
from edge_functions.errors import InvalidIdentifier
from edge_functions.exposures import FIELD, Exposure, parse_line
from edge_functions.keys import EXPOSURES_STREAM, user_tag

log = logging.getLogger("edgepick.worker")
READ_ENTRIES = 50  # entries per read; each holds up to a few hundred exposures
CLAIM_IDLE_S = 30.0
OUTCOMES = ("counted", "malformed", "unknown_experiment", "inactive_experiment", "wrong_arm",
            "not_covered", "forgotten", "failed")
Group = tuple[str, int, str, str]  # experiment, step, arm, tag


@dataclass
class _First:
    """The earliest exposure of one user in one arm and step, within an entry, and the
    user's exposures there per placement."""

    exposure: Exposure
    placements: dict[str, int]

    def changes(self, group: Group) -> list[CounterChange]:
        """One change per placement, the earliest exposure's first (its change is the one
        the script flags as the user's first exposure in the step, if it is)."""
        first = self.exposure.placement
        return [CounterChange(*group, placement, exposures=n) for placement, n in sorted(
            self.placements.items(), key=lambda item: (item[0] != first, item[0]))]


class ExposureCounter:
    def __init__(self, redis: Redis, event_log: EventLog, secret: bytes, consumer: str,
                 outcomes: Counter | None = None) -> None:
        self._redis = redis
        self._log = event_log
        self._secret = secret
        self.consumer = consumer
        self.steps = ExperimentSteps()
        self.outcomes = outcomes or exposure_outcomes(CollectorRegistry())
        self._group_ready = False

    async def run_once(self) -> int:
        """Claim entries left by a dead consumer, then read new ones; count them all.
        Returns how many entries were handled (0: nothing to do)."""
        if not self._group_ready:
            await self._ensure_group()
        try:
            reply: Any = await self._redis.xautoclaim(EXPOSURES_STREAM, EXPOSURES_GROUP,
                                                      self.consumer, int(CLAIM_IDLE_S * 1000),
                                                      count=READ_ENTRIES)
        except ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            self._group_ready = False  # the stream went (Redis restarted empty): next round
            return 0
        entries = [(i, f) for i, f in reply[1] if f]
        if not entries:
            fresh: Any = await self._redis.xreadgroup(EXPOSURES_GROUP, self.consumer,
                                                      {EXPOSURES_STREAM: ">"},
                                                      count=READ_ENTRIES)
            entries = [(i, f) for _, batch in fresh or [] for i, f in batch if f]
        for entry_id, fields in entries:
            name = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            try:
                if not await self.count_entry(name, fields):
                    break  # the event log failed: the rest stays pending for the next round
            except RedisError:
                raise  # pending: counted when Redis is back (the marker makes it once)
            except Exception:  # noqa: BLE001 - one bad entry must not block the stream
                log.exception("exposures entry %s could not be counted; dropped", name)
                self.outcomes.labels("failed").inc()
                await self._redis.xack(EXPOSURES_STREAM, EXPOSURES_GROUP, name)
        return len(entries)

    async def _ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(EXPOSURES_STREAM, EXPOSURES_GROUP, id="0",
                                            mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        self._group_ready = True

    async def count_entry(self, entry_id: str, fields: dict[bytes, bytes]) -> bool:
        """Count one entry and acknowledge it; False (left pending) if the event log failed."""
        groups = await self._valid_groups(_lines(fields.get(FIELD)))
        changes = [c for group, first in groups.items() for c in first.changes(group)]
        firsts = await apply_changes(self._redis, changes, exposures_applied_key(entry_id))
        if len(firsts) != len(changes):  # redelivered after the experiment changed step
            firsts = [False] * len(changes)
        experiments = self.steps.experiments
        viewed = [experiment_viewed(experiments[c.experiment], c, groups[
            (c.experiment, c.step, c.arm, c.tag)].exposure)
                  for c, first in zip(changes, firsts, strict=True) if first]
        if viewed:
            try:
                await asyncio.to_thread(self._log.append_exposures, viewed)
            except EventLogError as e:
                log.warning("Experiment Viewed not logged (entry %s stays pending): %s",
                            entry_id, e)
                return False
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xack(EXPOSURES_STREAM, EXPOSURES_GROUP, entry_id)
            pipe.xdel(EXPOSURES_STREAM, entry_id)
            pipe.delete(exposures_applied_key(entry_id))  # never delivered again: not needed
            await pipe.execute()
        self.outcomes.labels("counted").inc(sum(c.exposures for c in changes))
        return True

    async def _valid_groups(self, lines: list[str]) -> dict[Group, _First]:
        experiments = await self.steps.current(self._redis)
        kept: list[tuple[Exposure, Experiment, str]] = []
        for line in lines:
            outcome, exposure, experiment = _check(line, experiments)
            if exposure is None or experiment is None:
                self.outcomes.labels(outcome).inc()
                continue
            kept.append((exposure, experiment, user_tag(self._secret, exposure.user_id)))
        forgotten: list[Any] = await self._redis.hmget(SUPPRESSED, [t for *_, t in kept]) \
            if kept else []
        groups: dict[Group, _First] = {}
        for (exposure, experiment, tag), gone in zip(kept, forgotten, strict=True):
            if gone is not None:
                self.outcomes.labels("forgotten").inc()
                continue
            key = (experiment.id, experiment.step_index, exposure.arm, tag)
            first = groups.setdefault(key, _First(exposure, {}))
            first.placements[exposure.placement] = first.placements.get(exposure.placement,
                                                                        0) + 1
            if exposure.at_ms < first.exposure.at_ms:
                first.exposure = exposure
        return groups


def _lines(packed: bytes | None) -> list[str]:
    """The entry's lines; one that is not UTF-8 becomes "" (malformed, counted)."""
    if not packed:
        return [""]  # an entry without exposures: one malformed line, counted
    out = []
    for raw in packed.split(b"\n"):
        try:
            out.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            out.append("")
    return out


def _check(line: str, experiments: dict[str, Experiment]
           ) -> tuple[str, Exposure | None, Experiment | None]:
    try:
        exposure = parse_line(line)
    except (ValueError, InvalidIdentifier):
        return "malformed", None, None
    experiment = experiments.get(exposure.experiment)
    if experiment is None:
        return "unknown_experiment", None, None
    if not experiment.active:
        return "inactive_experiment", None, None
    if exposure.arm not in arms_of(experiment):
        return "wrong_arm", None, None
    if not experiment.covers(exposure.placement):
        return "not_covered", None, None
    return "counted", exposure, experiment


def experiment_viewed(experiment: Experiment, change: CounterChange,
                      exposure: Exposure) -> tuple[dt.datetime, dict[str, Any]]:
    """The Segment A/B-spec track message of a user's first exposure in a step."""
    at = dt.datetime.fromtimestamp(exposure.at_ms / 1000, dt.UTC)
    if experiment.id == PERSONALIZATION:
        variation = "personalized" if change.arm == TREATMENT else "default content"
    else:
        variation = experiment.treatment_model if change.arm == TREATMENT else \
            (experiment.control_model or "baseline")
    digest = hashlib.sha256(f"{change.tag}|{experiment.id}|{change.step}".encode()).hexdigest()
    return at, {
        "type": "track", "event": "Experiment Viewed", "userId": exposure.user_id,
        "messageId": f"xv-{digest[:32]}",
        "timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "properties": {"experiment_id": experiment.id,
                       "experiment_name": experiment.name or experiment.id,
                       "variation_id": change.arm,
                       "variation_name": f"{change.arm} ({variation})",
                       "placement": exposure.placement, "step": change.step,
                       "treatment_share": None if experiment.id == PERSONALIZATION
                       else experiment.share},
        "context": {"library": {"name": "edgepick-edge"}},
    }
