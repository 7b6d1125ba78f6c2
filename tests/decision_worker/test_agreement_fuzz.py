"""Anything the events API accepts, the worker applies (fuzzed; tests/fuzzing.py).

In process: every message `parse_request` accepts comes back out of its stream entry and
its event-log line as the same Event, is applied to a profile that survives its own
encoding, and yields features and decisions. End to end (fewer, costlier examples): what
the real API accepts, a real worker drains without dead letters or entries left pending.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis import Redis

from decision_worker.api import create_api
from decision_worker.errors import RequestRejected
from decision_worker.ingest.event_log import decode_lines, encode_json
from decision_worker.ingest.events import parse_request
from decision_worker.ingest.ingestion import log_record
from decision_worker.keys import CONSUMER_GROUP, DEAD_LETTER_STREAM, EVENTS_STREAM
from decision_worker.learning.replay import parse_log
from decision_worker.online.stream_entries import decode_entry
from decision_worker.online.worker import Worker
from decision_worker.ranking.candidates import Catalog
from decision_worker.ranking.decide import decide
from decision_worker.ranking.features import user_batch
from decision_worker.ranking.popularity import Popularity
from decision_worker.ranking.profile import Profile
from decision_worker.ranking.ranker import BaselineRanker
from decision_worker.ranking.why_record import decode_whys, encode_whys
from edge_functions.bucketing import HOLDOUT_SEED, gbhash
from edge_functions.decision_record import encode
from edge_functions.keys import user_tag
from tests.conftest import Settings
from tests.decision_worker.conftest import CATALOG, NOW
from tests.decision_worker.segment_strategies import request_documents
from tests.fuzzing import FUZZ, fuzz_share

LATENESS_S = 3 * 86_400
SECRET = b"fuzz-secret"


def _catalog() -> Catalog:
    placements: dict[str, Any] = {}
    for placement, (default, variants) in CATALOG.items():
        placements[placement] = {"default": default, "variants": {
            v: {"url": f"https://cdn.test/content/{placement}/variant-{v}.0123abcd.json",
                "digest": "0123abcd", "title": v, "tags": [], "locale": None,
                "starts_at": None, "ends_at": None, **meta}
            for v, meta in variants.items()}}
    return Catalog.from_document({"format": 1, "rev": 1, "placements": placements})


TEST_CATALOG = _catalog()
received_times = st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2100, 1, 1),
                              timezones=st.just(dt.UTC))


def _round_trip(profile: Profile) -> Profile:
    again = Profile.loads(profile.dumps())
    assert again == profile
    return again


@FUZZ
@given(doc=request_documents(NOW), received=received_times | st.just(NOW))
def test_what_the_api_accepts_the_worker_decodes_and_applies(doc: Any,
                                                              received: dt.datetime) -> None:
    try:
        events, _ = parse_request(json.dumps(doc).encode(), received)
    except RequestRejected:
        return
    profile = Profile()
    for i, event in enumerate(events):
        record = log_record(event, received)
        payload = encode_json(record)
        assert decode_entry({b"m": payload}) == event  # the stream entry the worker reads
        lines: list[dict[str, Any]] = []
        assert decode_lines(payload + b"\n", set(), lines) == 0
        assert parse_log(lines) == ([event], 0)  # the log line training replays

        for user_id in (event.user_id, event.anonymous_id, event.previous_id):
            if user_id is not None:
                user_tag(SECRET, user_id)
                profile.holdout_hash = gbhash(HOLDOUT_SEED, user_id)
        profile.apply(event, f"{1_700_000_000_000 + i}-0", TEST_CATALOG.category_of,
                      LATENESS_S)
        profile = _round_trip(profile)
    merged = Profile()
    merged.merge(profile, "anonymous-tag")
    _round_trip(merged)

    now = received.timestamp()
    users = user_batch([profile, merged], [max(profile.updated_at, now)] * 2, TEST_CATALOG,
                       clock=[now, now])
    assert np.isfinite(users.user).all() and np.isfinite(users.categories).all()
    for per_placement in decide(users, TEST_CATALOG, Popularity(), BaselineRanker(), 3, 0.1,
                                ["user", "merged"]):
        assert set(per_placement) == set(TEST_CATALOG.placements)
        for decided in per_placement.values():
            encode(decided.record)
        whys = {p: d.why for p, d in per_placement.items()}
        assert decode_whys(encode_whys(int(now), whys))[1].keys() == whys.keys()


def test_messages_the_api_accepts_are_drained_by_a_worker_without_dead_letters(
        worker_settings: Settings, redis: Redis, serve_app: Callable[..., str],
        drain: Callable[..., Worker], caplog: pytest.LogCaptureFixture) -> None:
    # Profiles carry over from one example to the next (users meet again, anonymous ids get
    # linked, opt-outs hold), as they would in production.
    applied = decisions = 0
    with httpx.Client(base_url=serve_app(create_api(worker_settings)), timeout=10) as api:

        @fuzz_share(0.1)
        @given(doc=request_documents(NOW))
        def send_then_drain(doc: Any) -> None:
            nonlocal applied, decisions
            answer = api.post("/v1/events", content=json.dumps(doc).encode())
            assert answer.status_code in (200, 400, 413, 415), answer.text
            dead_letters = redis.xlen(DEAD_LETTER_STREAM)
            caplog.clear()
            worker = drain(worker_settings)
            assert redis.xlen(DEAD_LETTER_STREAM) == dead_letters, redis.xrevrange(
                DEAD_LETTER_STREAM, count=1)
            assert redis.xpending(EVENTS_STREAM, CONSUMER_GROUP)["pending"] == 0
            (group,) = redis.xinfo_groups(EVENTS_STREAM)  # everything read
            assert group["last-delivered-id"] == \
                redis.xinfo_stream(EVENTS_STREAM)["last-generated-id"]
            assert not worker.metrics.registry.get_sample_value(
                "edgepick_worker_failures_total")
            trouble = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
                       and r.name.startswith(("edgepick.worker", "edgepick.profile"))]
            assert not trouble
            applied += worker.totals.applied
            decisions += worker.totals.decisions

        send_then_drain()
    assert applied and decisions  # the worker did apply events and decide, not only skip
