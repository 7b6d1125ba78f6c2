"""Privacy as a user of edgepick sees it: forgetting a person deletes every key about them
and their linked ids and keeps their events out for good; an opted-out person gets no
profile and no decision; personal traits never reach the log, the stream or a profile."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import httpx
import pytest
from redis import Redis

from decision_worker.api import create_api
from decision_worker.ingest.event_log import EventLog
from decision_worker.ingest.events import event_rules
from decision_worker.keys import (
    DEAD_LETTER_STREAM,
    EVENTS_STREAM,
    REDECIDE_DUE,
    profile_key,
    why_key,
)
from decision_worker.learning.replay import parse_log
from edge_functions.errors import ConfigError
from edge_functions.keys import decision_key, user_tag
from object_store.folder import FolderStore
from tests.conftest import SECRET, Settings

from ..conftest import NOW, track
from .test_worker import clicks_on, not_held, session

TOKEN = "admin-token-0123456789"


@pytest.fixture
def api(worker_settings: Settings, serve_app: Callable[..., str]) -> Iterator[httpx.Client]:
    settings = dataclasses.replace(worker_settings, admin_token=TOKEN)
    with httpx.Client(base_url=serve_app(create_api(settings)), timeout=10) as client:
        yield client


def keys_of(redis: Redis, secret: bytes, user: str) -> dict[str, bytes | None]:
    tag = user_tag(secret, user)
    return {"profile": redis.get(profile_key(tag)),
            "hero": redis.get(decision_key(tag, "hero")),
            "cta": redis.get(decision_key(tag, "cta")),
            "why": redis.get(why_key(tag))}


def logged_ids(settings: Settings) -> list[str]:
    assert settings.origin_dir is not None
    return [json.loads(line)["messageId"]
            for path in (settings.origin_dir / "events").glob("event_day=*/*.jsonl")
            for line in path.read_bytes().splitlines()]


def test_forget_deletes_the_user_and_linked_ids_and_suppresses_them(
        api, ingest, drain, decision, redis: Redis, worker_settings) -> None:
    user, anonymous, bystander = not_held("gone"), not_held("gone-anon"), not_held("stays")
    ingest(clicks_on(None, "winter-camping", 2, "anon", anonymous)
           + [{"type": "identify", "userId": user, "anonymousId": anonymous,
               "messageId": "link", "timestamp": NOW.isoformat()},
              session(user, "s1"), session(bystander, "s2")])
    drain()
    secret = worker_settings.key_secret_bytes
    assert decision(user, "hero") is not None and decision(anonymous, "hero") is not None
    assert all(keys_of(redis, secret, who)["why"] is not None  # beside the decisions
               for who in (user, anonymous))

    answer = api.post("/v1/privacy/forget", json={"userIds": [user]},
                      headers={"authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["forgotten"] == 1 and answer.json()["ids"] == 2
    for who in (user, anonymous):
        kept = keys_of(redis, secret, who)
        assert kept["hero"] is None and kept["cta"] is None
        assert kept["why"] is None
        marker = json.loads(kept["profile"] or b"{}")
        assert marker["fg"] is True and marker["c"] == {} and marker["va"] == {}
        assert redis.zscore(REDECIDE_DUE, user_tag(secret, who)) is None
    assert decision(bystander, "hero") is not None  # nobody else is touched

    # Their future events are dropped at the API, and nothing recreates their data.
    later = api.post("/v1/events", json={"batch": [
        session(user, "s3", at=NOW + dt.timedelta(seconds=5)),
        session(None, "s4", anonymous, at=NOW + dt.timedelta(seconds=5))]})
    assert later.json()["accepted"] == 0 and later.json()["suppressed"] == 2
    assert "s3" not in logged_ids(worker_settings)
    drain()
    assert decision(user, "hero") is None and decision(anonymous, "hero") is None

    # Training replays the log without them (tombstones).
    assert worker_settings.origin_dir is not None
    log = EventLog(FolderStore(worker_settings.origin_dir))
    messages = log.read_day(NOW.date())  # the events are at NOW (event-day partitions)
    events, _ = parse_log(messages, event_rules(worker_settings), log.read_tombstones(), secret)
    assert {e.user_id or e.anonymous_id for e in events} == {bystander}


def test_forget_refuses_without_the_token_and_names_bad_input(api) -> None:
    body = {"userIds": ["someone"]}
    assert api.post("/v1/privacy/forget", json=body).status_code == 401
    wrong = api.post("/v1/privacy/forget", json=body, headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "does not match" in wrong.json()["detail"]
    auth = {"authorization": f"Bearer {TOKEN}"}
    empty = api.post("/v1/privacy/forget", json={"userIds": []}, headers=auth)
    assert empty.status_code == 400 and empty.json()["field"] == "userIds"
    bad = api.post("/v1/privacy/forget", json={"userIds": ["x" * 300]}, headers=auth)
    assert bad.status_code == 400 and "longer than 256 bytes" in bad.json()["detail"]


def test_forget_is_disabled_without_an_admin_token(worker_settings, serve_app) -> None:
    base = serve_app(create_api(worker_settings))
    answer = httpx.post(f"{base}/v1/privacy/forget", json={"userIds": ["a"]},
                        headers={"authorization": "Bearer whatever-it-is-here"})
    assert answer.status_code == 403 and "EDGEPICK_ADMIN_TOKEN" in answer.json()["detail"]


def test_edgepick_forget_on_the_command_line(ingest, drain, decision, redis,
                                             worker_settings) -> None:
    user = not_held("cli-gone")
    ingest([session(user, "cli-s")])
    drain()
    env = {**os.environ, "EDGEPICK_REDIS_URL": str(worker_settings.redis_url),
           "EDGEPICK_ORIGIN": worker_settings.origin, "EDGEPICK_KEY_SECRET": SECRET,
           "EDGEPICK_DATA_DIR": str(worker_settings.data_dir)}
    done = subprocess.run([sys.executable, "-m", "edgepick", "forget", user],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "forgot 1 user(s)" in done.stdout
    assert decision(user, "hero") is None
    bad = subprocess.run([sys.executable, "-m", "edgepick", "forget", "bad\x01id"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == ["edgepick: error: user id contains control "
                                               "characters"]


@pytest.mark.parametrize("opt_out,opt_in", [
    (lambda u, at: track(u, "Personalization Opted Out", "out", at),
     lambda u, at: track(u, "Personalization Opted In", "in", at)),
    (lambda u, at: {"type": "identify", "userId": u, "messageId": "out",
                    "timestamp": at.isoformat(), "traits": {"edgepick_opt_out": True}},
     lambda u, at: {"type": "identify", "userId": u, "messageId": "in",
                    "timestamp": at.isoformat(), "traits": {"edgepick_opt_out": False}}),
    (lambda u, at: {**track(u, "Consent Updated", "out", at), "context": {
        "consent": {"categoryPreferences": {"personalization": False}}}},
     lambda u, at: {**track(u, "Consent Updated", "in", at), "context": {
         "consent": {"categoryPreferences": {"personalization": True}}}}),
])
def test_an_opted_out_user_has_no_profile_and_no_decision(ingest, drain, decision, redis,
                                                          worker_settings, opt_out,
                                                          opt_in) -> None:
    user = not_held("private")
    secret = worker_settings.key_secret_bytes
    ingest(clicks_on(user, "trail-running", 3, "before") + [session(user, "s-before")])
    drain()
    assert decision(user, "hero") is not None
    ingest([opt_out(user, NOW + dt.timedelta(seconds=10))])
    drain()
    assert decision(user, "hero") is None and decision(user, "cta") is None
    assert redis.get(why_key(user_tag(secret, user))) is None
    profile = json.loads(redis.get(profile_key(user_tag(secret, user))))
    assert profile["oo"] is True and profile["c"] == {} and profile["t"][1:] == [0.0] * 6
    ingest(clicks_on(user, "winter-camping", 2, "during")
           + [session(user, "s-during", at=NOW + dt.timedelta(seconds=20))])
    worker = drain()
    assert decision(user, "hero") is None
    assert worker.totals.opted_out == 5 and worker.totals.applied == 0
    # An older opt-in arriving late changes nothing; a newer one personalizes again.
    ingest([opt_in(user, NOW + dt.timedelta(seconds=5))])
    drain()
    assert json.loads(redis.get(profile_key(user_tag(secret, user))))["oo"] is True
    later = NOW + dt.timedelta(seconds=30)
    ingest([{**opt_in(user, later), "messageId": "in-2"}, session(user, "s-after", at=later)])
    drain()
    assert decision(user, "hero") is not None


def test_personal_traits_never_reach_the_log_the_stream_or_a_profile(
        ingest, drain, redis, worker_settings) -> None:
    user = not_held("pii")
    pii = {"email": "ada@example.com", "phone": "+44 20 7946 0000", "name": "Ada Lovelace",
           "address": {"street": "12 St James's Square"}}
    ingest([{"type": "identify", "userId": user, "messageId": "who",
             "timestamp": NOW.isoformat(), "traits": {**pii, "plan": "pro"},
             "context": {"ip": "203.0.113.9", "traits": {"email": "ada@example.com"}}},
            {"type": "identify", "userId": user, "messageId": "bad",
             "timestamp": "not a time", "traits": pii}])
    drain()
    assert worker_settings.origin_dir is not None
    stored = [line for path in (worker_settings.origin_dir / "events").rglob("*.jsonl")
              for line in path.read_bytes().splitlines()]
    stored += [f[b"m"] for _, f in redis.xrange(EVENTS_STREAM)]
    stored += [f[b"raw"] for _, f in redis.xrange(DEAD_LETTER_STREAM)]
    stored.append(redis.get(profile_key(user_tag(worker_settings.key_secret_bytes, user))))
    assert len(stored) == 4
    for blob in stored:
        for value in ("ada@example.com", "7946", "Lovelace", "St James", "203.0.113.9"):
            assert value.encode() not in blob
    profile = json.loads(stored[-1])
    assert profile["tr"] == {"plan": "pro"}


def test_the_trait_allow_list_refuses_personal_data(worker_settings) -> None:
    with pytest.raises(ConfigError, match="email"):
        event_rules(dataclasses.replace(worker_settings, traits="plan,email"))
