"""One batch of stream entries: identities → profiles → triggers → decisions → one write.

Round trips per batch: one pipelined read of every profile involved (a second, small one
when anonymous ids point at profiles not read yet), one pipelined write (a compare-and-set
script per user that stores the profile *and* that user's decisions and why-record in its
slot), and one pipeline for what follows a successful write (decisions under anonymous ids,
the re-decision schedule, popularity counts). The decisions' log lines go to the decision
logger (online/decision_logger.py), which appends them to the origin every second.
Acknowledging the entries is left to the caller, after all of that.

Redelivery is idempotent: a profile remembers the stream entries it has applied, so an
entry processed again counts nothing twice and yields the same decision (features are taken
as of event time, not wall-clock time). Two workers touching one user conflict in the
compare-and-set; the loser re-reads and redoes its batch.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from redis.asyncio import Redis

from decision_worker.ingest.event_time import parse_time
from decision_worker.ingest.events import (
    DEFAULT_RULES,
    Event,
)
from decision_worker.keys import (
    ARM_COUNTERS_TTL_S,
    ARM_OWNERS,
    REDECIDE_DUE,
    STATS_KEY,
    SUPPRESSED,
    TREND_DAYS_KEY,
    profile_key,
    trend_day_key,
    why_key,
)
from decision_worker.online.batch_result import BatchResult
from decision_worker.online.batch_users import BatchUser, Tags, group_by_user, wanted_tags
from decision_worker.online.decision_logger import DecisionLogger, decision_lines
from decision_worker.online.experiment_arms import (
    Deciding,
    LiveExperiments,
    decide_batch,
    engaged_arms,
)
from decision_worker.online.stream_entries import Redecide
from decision_worker.ranking.arrays import FloatArray
from decision_worker.ranking.candidates import Catalog
from decision_worker.ranking.decide import Decided
from decision_worker.ranking.popularity import Popularity, engagement_counts, stat_field
from decision_worker.ranking.profile import Profile, segments_of
from decision_worker.ranking.ranker import Ranker
from decision_worker.ranking.trending import DAY_S, HORIZON_DAYS, event_day
from decision_worker.ranking.why_record import encode_whys
from decision_worker.settings import WorkerSettings
from edge_functions.bucketing import holdout_bucket
from edge_functions.decision_record import encode
from edge_functions.keys import decision_key

# KEYS: profile, then decision keys and the why-record. ARGV: sha1 of the profile read ('' =
# none), new profile, profile TTL, decision TTL, then one record per key ('' deletes it).
_COMMIT = """
local current = redis.call('GET', KEYS[1])
local sha = current and redis.sha1hex(current) or ''
if sha ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
for i = 2, #KEYS do
  if ARGV[i + 3] == '' then redis.call('DEL', KEYS[i])
  else redis.call('SET', KEYS[i], ARGV[i + 3], 'EX', ARGV[4]) end
end
return 1
"""
MAX_CONFLICT_RETRIES = 5
# tag → ({placement: decision record}, the user's why-record); b"" deletes
Records = dict[str, tuple[dict[str, bytes], bytes]]


class ConflictError(Exception):
    """Another worker kept changing the same profiles; the batch is left for redelivery."""


class BatchProcessor:
    def __init__(self, redis: Redis, settings: WorkerSettings, ranker: Ranker) -> None:
        self._redis = redis
        self._settings = settings
        self._secret = settings.key_secret_bytes
        self.ranker = ranker  # swapped by the worker when production changes
        self._commit = redis.register_script(_COMMIT)
        self.catalog = Catalog.from_bytes(None)
        self.popularity = Popularity()
        self.rules = DEFAULT_RULES  # how stream entries are validated (the API's own rules)
        # Sees (user tag, placement, as_of, feature rows) of every decision: skew tests.
        self.observe: Callable[[str, str, float, FloatArray], None] | None = None
        self.decision_log = DecisionLogger(None)  # the worker gives it its log
        self.experiments = LiveExperiments()  # swapped by the worker (experiment_inputs.py)
        # Scores a placement while the next one's rows are built (decide.py): lleaves and
        # numpy release the GIL, so a second core takes the model's share of the work.
        self._scorer = ThreadPoolExecutor(1, thread_name_prefix="edgepick-score")

    async def process(self, items: list[tuple[str, Event | Redecide]],
                      now: float | None = None) -> BatchResult:
        for attempt in range(MAX_CONFLICT_RETRIES):
            result = await self._attempt(items, time.time() if now is None else now)
            if result is not None:
                result.conflicts = attempt
                return result
        raise ConflictError(f"{len(items)} entries met concurrent profile updates "
                            f"{MAX_CONFLICT_RETRIES} times")

    async def _attempt(self, items: list[tuple[str, Event | Redecide]],
                       now: float) -> BatchResult | None:
        users, anonymous = await self._load(items)
        result = BatchResult()
        stats: Counter[tuple[int, str]] = Counter()  # (event day, stat field) → count
        received: dict[str, list[float]] = defaultdict(list)
        for tag in sorted(users):
            self._apply(tag, users[tag], result, stats, received[tag])
        decided = [tag for tag in sorted(users) if self._triggered(users[tag], now)]
        records: Records = {}
        logged: list[dict[str, Any]] = []
        if decided and self.catalog.placements:
            for tag, per_placement in zip(decided, self._decide(users, decided, now),
                                          strict=True):
                decided_at = next(iter(per_placement.values())).record.decided_at
                records[tag] = ({p: encode(d.record) for p, d in per_placement.items()},
                                encode_whys(decided_at, {p: d.why for p, d in
                                                         per_placement.items()}))
                logged += decision_lines(tag, per_placement)
                result.holdout += any(d.record.arm == "holdout"
                                      for d in per_placement.values())
                users[tag].profile.decided(list(per_placement))
        for tag, user in users.items():
            if user.profile.opted_out and user.changed:  # withdraw what was decided before
                placements = set(user.profile.placements) | set(self.catalog.placements)
                records[tag] = ({p: b"" for p in sorted(placements)}, b"")
        if not await self._write(users, anonymous, records):
            return None
        await self._after_write(users, records, stats, now)
        written_at = time.time()
        await self.decision_log.write(logged)
        for tag, written in records.items():
            if users[tag].profile.opted_out:
                continue
            result.users_decided += 1
            result.decisions += len(written[0]) * (1 + len(users[tag].extra_tags))
            result.latencies.extend(written_at - t for t in received[tag])
        return result

    def _decide(self, users: dict[str, BatchUser], decided: list[str],
                now: float) -> list[dict[str, Decided]]:
        """Decide every placement for the `decided` users, as of their latest event (or
        their scheduled re-decision)."""
        s = self._settings
        as_of = [max(users[t].profile.updated_at, users[t].redecide_due or 0.0)
                 for t in decided]
        observe = None
        if self.observe is not None:
            sink = self.observe

            def observe(u: int, placement: str, rows: FloatArray) -> None:
                sink(decided[u], placement, as_of[u], rows)

        return decide_batch(self.experiments, Deciding(
            self.catalog, self.popularity, self.ranker, s.ranked_size, s.holdout_share,
            s.rank_limit, self._scorer, observe), [users[t].profile for t in decided], as_of,
            decided, now)

    def _apply(self, tag: str, user: BatchUser, result: BatchResult,
               stats: Counter[tuple[int, str]], received: list[float]) -> None:
        """Apply a user's events to their profile; count engagement with published
        variants (the popularity hash stays bounded by the catalog)."""
        if user.suppressed:
            result.suppressed += len(user.events)
            user.events.clear()
            return
        profile = user.profile
        if user.user_id is not None:
            profile.holdout_hash = holdout_bucket(user.user_id)
        elif profile.holdout_hash is None and user.anonymous_id is not None:
            profile.holdout_hash = holdout_bucket(user.anonymous_id)
        for entry_id, event in user.events:
            outcome = profile.apply(event, entry_id, self.catalog.category_of,
                                    self._settings.lateness_s)
            if outcome == "duplicate":
                result.duplicates += 1
            elif outcome == "late":
                result.late += 1
            elif outcome in ("opted_out", "forgotten"):
                result.opted_out += outcome == "opted_out"
                result.suppressed += outcome == "forgotten"
                user.changed = user.changed or event.privacy is not None
            else:
                result.applied += 1
                user.changed = True
                engagement = event.engagement
                result.arm_engagement += engaged_arms(self.experiments, profile, tag,
                                                      engagement, self._settings.holdout_share)
                if engagement is not None:
                    key = f"{engagement.placement}/{engagement.variant}"
                    day = event_day(event.timestamp.timestamp())
                    for kind, _, segment in engagement_counts(
                            engagement.kind, key, segments_of(profile),
                            self.catalog.category_of):
                        stats[(day, stat_field(kind, key, segment))] += 1
            received_at = event.raw.get("receivedAt")
            if isinstance(received_at, str):
                received.append(_epoch(received_at))

    def _triggered(self, user: BatchUser, now: float) -> bool:
        profile = user.profile
        if user.suppressed or profile.opted_out or profile.forgotten:
            return False
        if user.redecide_due is not None and not user.events:
            return profile.updated_at >= now - self._settings.active_window_s
        if user.linked:
            return True
        redecide = self._settings.redecide_kinds
        return any(e.session_start or (e.engagement is not None and e.engagement.kind in redecide)
                   for _, e in user.events)

    async def _load(self, items: list[tuple[str, Event | Redecide]]
                    ) -> tuple[dict[str, BatchUser], dict[str, BatchUser]]:
        """Read every profile involved (one round trip; a second, small one for the known
        users that anonymous ids were merged into); group the entries by user."""
        tags = Tags(self._secret)
        loaded, suppressed = await self._read(wanted_tags(items, tags))
        targets = {p.merged_into for p, _ in loaded.values() if p.merged_into} - set(loaded)
        more, more_suppressed = await self._read(targets)
        loaded.update(more)
        return group_by_user(items, loaded, suppressed | more_suppressed, tags)

    async def _read(self, tags: set[str]
                    ) -> tuple[dict[str, tuple[Profile, bytes | None]], set[str]]:
        """The profiles of `tags`, and which of them are suppressed (forgotten): one
        round trip."""
        if not tags:
            return {}, set()
        ordered = sorted(tags)
        async with self._redis.pipeline(transaction=False) as pipe:
            for t in ordered:
                pipe.get(profile_key(t))
            pipe.hmget(SUPPRESSED, ordered)
            *raws, flags = await pipe.execute()
        suppressed = {t for t, flag in zip(ordered, flags, strict=True) if flag is not None}
        return ({t: (Profile.loads(raw), raw) for t, raw in zip(ordered, raws, strict=True)},
                suppressed)

    async def _write(self, users: dict[str, BatchUser], anonymous: dict[str, BatchUser],
                     records: Records) -> bool:
        s = self._settings
        calls = []
        async with self._redis.pipeline(transaction=False) as pipe:
            for tag, user in [*users.items(), *anonymous.items()]:
                per_placement, why = records.get(tag, ({}, None))
                if user.suppressed or (not user.changed and not per_placement):
                    continue
                user.profile.version += 1
                keys = [profile_key(tag), *(decision_key(tag, p) for p in per_placement)]
                args: list[Any] = [_sha1(user.raw), user.profile.dumps(), s.profile_ttl_s,
                                   s.decision_ttl_s, *per_placement.values()]
                if why is not None:
                    keys.append(why_key(tag))
                    args.append(why)
                await self._commit(keys=keys, args=args, client=pipe)
                calls.append(tag)
            if not calls:
                return True
            flags = await pipe.execute()
        return all(int(f) == 1 for f in flags)

    async def _after_write(self, users: dict[str, BatchUser], records: Records,
                           stats: Counter[tuple[int, str]], now: float) -> None:
        s = self._settings
        due: dict[str, float] = {}  # one ZADD and one ZREM for the batch, not one per user
        quiet: list[str] = []
        async with self._redis.pipeline(transaction=False) as pipe:
            for tag, (per_placement, why) in records.items():
                for extra in users[tag].extra_tags:
                    for placement, record in per_placement.items():
                        if record:
                            pipe.set(decision_key(extra, placement), record,
                                     ex=s.decision_ttl_s)
                        else:
                            pipe.delete(decision_key(extra, placement))
                    if why:
                        pipe.set(why_key(extra), why, ex=s.decision_ttl_s)
                    else:
                        pipe.delete(why_key(extra))
                # The anonymous ids merged into the user are refreshed with them (their
                # refresh entries re-decide the user: batch_users.py)
                for t in (tag, *users[tag].extra_tags):
                    if users[tag].profile.opted_out:
                        quiet.append(t)
                    else:
                        due[t] = now + s.decision_ttl_s - s.redecide_margin_s
            for tag, user in users.items():
                if user.redecide_due is not None and tag not in records and not user.events:
                    quiet += [tag, *user.extra_tags]  # gone quiet (or gone): stop re-deciding
            if due:
                pipe.zadd(REDECIDE_DUE, due)
            if quiet:
                pipe.zrem(REDECIDE_DUE, *quiet)
            _link_owners(pipe, {extra: tag for tag in records
                                for extra in users[tag].extra_tags})
            _count(pipe, stats, now)
            await pipe.execute()


def _link_owners(pipe: Any, owners: dict[str, str]) -> None:
    """Merged anonymous tags → their person's, for the arm counters (keys.ARM_OWNERS)."""
    if owners:
        pipe.hset(ARM_OWNERS, mapping=owners)
        pipe.expire(ARM_OWNERS, ARM_COUNTERS_TTL_S)


def _count(pipe: Any, stats: Counter[tuple[int, str]], now: float) -> None:
    """Popularity counts, lifetime and per event day."""
    days: Counter[int] = Counter()
    for (day, field_name), count in stats.items():
        days[day] += count
        pipe.hincrby(STATS_KEY, field_name, count)
        pipe.hincrby(trend_day_key(day), field_name, count)
    for day, count in days.items():
        pipe.hincrby(TREND_DAYS_KEY, str(day), count)
        # Kept while it can weigh anything (and a while, for a replayed history).
        pipe.expireat(trend_day_key(day),
                      int(max((day + 1 + HORIZON_DAYS) * DAY_S, now + 2 * DAY_S)))


def _sha1(raw: bytes | None) -> str:
    return "" if raw is None else hashlib.sha1(raw).hexdigest()


def _epoch(iso: str) -> float:
    parsed = parse_time(iso)
    return time.time() if parsed is None else parsed.timestamp()
