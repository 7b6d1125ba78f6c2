"""One person, one arm: over random sequences of anonymous sessions, logins, clicks,
scheduled refreshes and ramp steps, no person is served two arms of one experiment once
their ids are linked (tests/fuzzing.py: a whole worker per example, so a share of FUZZ).

A *person* is a known user (a userId) together with every anonymous id linked to that user:
an anonymous id is linked by the first `identify` (userId + anonymousId), `alias`
(userId + previousId) or any other message carrying both ids that names it; a later link of
the same anonymous id to another account does not move it (it stays with the first). What
the person is *served* is what the edge would read: the decision record under the keyed
hash of each of their ids (edge_functions.keys.decision_key / user_tag), read after every
step. Counted for a person: every record under the userId, and every record under one of
their anonymous ids read after the step that linked it. Among those, the records of the
experiment carry one arm at most. And when the account had no arm yet, the arm the
anonymous id was served before the link is the one the person keeps.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from decision_worker.keys import EPOCH
from decision_worker.online.redecide_schedule import enqueue_due
from decision_worker.online.worker import Worker
from decision_worker.ranking.experiment import PERSONALIZATION
from edge_functions.bucketing import in_holdout
from edge_functions.decision_record import DecisionRecord, decode
from edge_functions.keys import decision_key, user_tag
from tests.fuzzing import fuzz_share

from ..conftest import NOW, track, write_catalog
from .experiment_support import experiment, register, store

STEPS = 4  # 1, 5, 20, 50 %


def _pick(secret: bytes, prefix: str, wanted: list[tuple[float, float, bool]]) -> list[str]:
    """One id per (bucket low, bucket high, in the holdout) wanted, for the experiment."""
    from decision_worker.ranking.experiment import bucket_of

    e, out = experiment(), []
    for low, high, held in wanted:
        out.append(next(u for u in (f"{prefix}-{len(out)}-{i}" for i in range(100_000))
                        if low <= bucket_of(e, user_tag(secret, u)) < high
                        and in_holdout(u, 0.1) == held))
    return out


def _ops(anonymous: list[str], known: list[str]) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    a, k = st.sampled_from(anonymous), st.sampled_from(known)
    link = st.tuples(st.sampled_from(["identify", "alias", "both"]), k, a)
    return st.lists(st.one_of(
        st.tuples(st.sampled_from(["session", "click"]), a),
        st.tuples(st.sampled_from(["session", "click"]), k), link, link,
        st.tuples(st.just("refresh")), st.tuples(st.just("step"))), min_size=2, max_size=16)


def _messages(op: tuple[Any, ...], n: int, anonymous: list[str]) -> list[dict[str, Any]]:
    at = NOW + dt.timedelta(seconds=n)
    stamp, mid = at.isoformat(), f"m{n}"
    kind = op[0]
    if kind in ("session", "click"):
        who = op[1]
        user, anon = (None, who) if who in anonymous else (who, None)
        if kind == "session":
            return [track(user, "Session Started", mid, at, anon)]
        return [track(user, "Variant Clicked", mid, at, anon, placement="hero",
                      variant="trail-running")]
    _, user, anon = op
    if kind == "identify":
        return [{"type": "identify", "userId": user, "anonymousId": anon, "messageId": mid,
                 "timestamp": stamp}]
    if kind == "alias":
        return [{"type": "alias", "userId": user, "previousId": anon, "messageId": mid,
                 "timestamp": stamp}]
    return [track(user, "Session Started", mid, at, anon)]  # a session with both ids


def test_no_person_is_served_two_arms_of_one_experiment(
        redis: Redis, worker_settings: Any, ingest: Callable[..., Any]) -> None:
    register(worker_settings.origin_dir)
    secret = worker_settings.key_secret_bytes
    # buckets chosen so that most ids have an arm from the first step (treatment from 1 %,
    # control) and the later steps move some (treatment from 20 %, 50 %), and a known user
    # in the holdout (whose own bucket says treatment)
    anonymous = _pick(secret, "anon", [(0, .01, False), (.5, 1, False), (.05, .2, False)])
    known = _pick(secret, "user", [(.5, 1, False), (0, .01, False), (.2, .5, False),
                                   (0, .2, True)])
    ids = anonymous + known

    @fuzz_share(0.02)
    @given(ops=_ops(anonymous, known))
    def scenario(ops: list[tuple[Any, ...]]) -> None:
        redis.flushall()
        redis.set(EPOCH, "fuzz")  # emptied on purpose: no recovery from the event log
        write_catalog(redis)
        store(redis, experiment(step_index=0))
        served = asyncio.run(_run(worker_settings, redis, ingest, ops, anonymous, ids))
        _check(ops, served, anonymous, known)

    scenario()


async def _run(settings: Any, redis: Redis, ingest: Callable[..., Any],
               ops: list[tuple[Any, ...]], anonymous: list[str], ids: list[str]
               ) -> list[dict[str, DecisionRecord | None]]:
    """Each op applied and drained; what each id is served after it (hero)."""
    client = AsyncRedis.from_url(settings.redis_url)
    worker = Worker(client, settings, consumer="fuzz")
    worker.inputs.experiments.check_s = 0.0
    step, served = 0, []
    secret = settings.key_secret_bytes
    try:
        for n, op in enumerate(ops):
            if op[0] == "step":
                step = min(step + 1, STEPS - 1)
                store(redis, experiment(step_index=step))
            elif op[0] == "refresh":
                await enqueue_due(client, settings, now=time.time() + 2 * 86_400, force=True)
            else:
                await asyncio.to_thread(ingest, _messages(op, n, anonymous))
            await worker.run(burst=True)
            raws = [redis.get(decision_key(user_tag(secret, u), "hero")) for u in ids]
            served.append({u: None if r is None else decode(r) for u, r in zip(ids, raws,
                                                                               strict=True)})
    finally:
        await client.aclose()
    return served


ROLLOUT = experiment().id


def _check(ops: list[tuple[Any, ...]], served: list[dict[str, DecisionRecord | None]],
           anonymous: list[str], known: list[str]) -> None:
    linked: dict[str, tuple[str, int]] = {}  # anonymous id → (its person, step linked at)
    kept: dict[str, str] = {}  # person → the arm their anonymous id brought to a bare account
    for n, op in enumerate(ops):
        if op[0] in ("identify", "alias", "both") and op[2] not in linked:
            user, anon = op[1], op[2]
            linked[anon] = (user, n)
            before = served[n - 1] if n else {}
            mine = [s[user] for s in served[:n]]
            had = any(r is not None and r.experiment == ROLLOUT for r in mine)
            theirs = before.get(anon)
            if not had and theirs is not None and theirs.experiment == ROLLOUT:
                kept.setdefault(user, theirs.arm)
    for user in known:
        arms = {}
        for n, now in enumerate(served):
            for who in [user, *(a for a, (u, at) in linked.items() if u == user and n >= at)]:
                record = now[who]
                if record is not None and record.experiment == ROLLOUT:
                    arms.setdefault(record.arm, (n, who, ops[n]))
                if record is not None and who == user and in_holdout(user, 0.1):
                    # the holdout is outside every rollout: only its own comparison
                    assert (record.arm, record.experiment) == ("holdout", PERSONALIZATION)
        assert len(arms) <= 1, f"{user} served {arms}"
        if in_holdout(user, 0.1):
            assert not arms, f"{user} is in the holdout but was served {arms}"
        if user in kept and arms:
            assert set(arms) == {kept[user]}, f"{user} kept {arms}, not {kept[user]}"
