"""POST /v1/events against generated hostile requests (tests/fuzzing.py), on a real server
and a real Redis: whatever arrives, the answer is 200 or a 4xx naming the problem, what is
answered as accepted is in the stream and in the event log exactly once, nothing refused
reaches either, and the next valid request is served."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis import Redis

from decision_worker.api import create_api
from decision_worker.ingest.events import MAX_BATCH_MESSAGES, MAX_REQUEST_BYTES, Event
from decision_worker.keys import DEAD_LETTER_STREAM, EVENTS_STREAM
from decision_worker.learning.replay import parse_log
from decision_worker.online.stream_entries import decode_entry
from tests.conftest import Settings
from tests.decision_worker.conftest import NOW
from tests.decision_worker.segment_strategies import request_documents, request_messages
from tests.fuzzing import (
    FUZZ,
    Blob,
    encoded_body,
    hostile_json_texts,
    json_encoded,
    json_values,
    oversized_bodies,
    spliced,
)

STATUSES = {200, 400, 413, 415}


@dataclass
class Ledger:
    """What the stream, the event log and the dead letters hold. Every example starts from
    nothing (`reset`), so hypothesis can replay an example and see what it saw the first
    time; each check reads only what the last request added."""

    redis: Redis
    events_dir: Path
    last_entry: str = "0-0"
    offsets: dict[Path, int] = field(default_factory=dict)
    dead_letters: int = 0
    streamed: set[str] = field(default_factory=set)
    probes: Iterator[int] = field(default_factory=itertools.count)

    def reset(self) -> None:
        self.redis.flushall()
        for path in self.events_dir.rglob("*.jsonl"):
            path.unlink()  # the log opens its file for each append
        self.last_entry, self.dead_letters = "0-0", 0
        self.offsets.clear()
        self.streamed.clear()

    def new_entries(self) -> list[dict[bytes, bytes]]:
        entries: Any = self.redis.xrange(EVENTS_STREAM, f"({self.last_entry}")
        if entries:
            self.last_entry = entries[-1][0].decode()
        return [fields for _, fields in entries]

    def new_log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for path in sorted(self.events_dir.rglob("*.jsonl")):
            with path.open("rb") as f:
                f.seek(self.offsets.get(path, 0))
                data = f.read()
            self.offsets[path] = self.offsets.get(path, 0) + len(data)
            lines += [json.loads(line) for line in data.splitlines()]
        return lines

    def new_dead_letters(self) -> int:
        total = self.redis.xlen(DEAD_LETTER_STREAM)
        added, self.dead_letters = total - self.dead_letters, total
        return added

    def check_totals(self) -> None:
        """Every messageId answered as accepted is once in the stream and once in the log."""
        entries: Any = self.redis.xrange(EVENTS_STREAM)
        stream = Counter(json.loads(f[b"m"])["messageId"] for _, f in entries)
        self.offsets.clear()
        log = Counter(line["messageId"] for line in self.new_log_lines())
        assert set(stream) == set(log) == self.streamed
        assert max([*stream.values(), *log.values()], default=1) == 1


@pytest.fixture
def fuzzed_api(settings: Settings, redis: Redis,
               serve_app: Callable[..., str]) -> Iterator[tuple[httpx.Client, Ledger]]:
    """One API server for every example of a test, and a ledger of what it wrote."""
    assert settings.origin_dir is not None
    with httpx.Client(base_url=serve_app(create_api(settings)), timeout=30) as client:
        yield client, Ledger(redis, settings.origin_dir / "events")


def check_answer(answer: httpx.Response, messages: list[Any] | None,
                 ledger: Ledger) -> dict[str, Any]:
    """The answer is one we promise, its body names any problem, and the stream, log and
    dead letters changed by exactly what it says. `messages`: what was sent, when known
    (they are what the API read whenever it answers message by message)."""
    entries = ledger.new_entries()  # everything read before anything is asserted
    new_ids = [json.loads(f[b"m"])["messageId"] for f in entries]
    logged = ledger.new_log_lines()
    dead_letters = ledger.new_dead_letters()
    seen_before = set(ledger.streamed)
    ledger.streamed.update(new_ids)

    assert answer.status_code in STATUSES, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert sorted(line["messageId"] for line in logged) == sorted(new_ids)
    assert len(set(new_ids)) == len(new_ids) and not set(new_ids) & seen_before
    for fields in entries:  # nothing in the stream the worker would refuse
        assert isinstance(decode_entry(fields), Event), fields
    assert parse_log(logged)[1] == 0  # nor in the log that training replays

    if "rejected" not in body:  # the request as a whole was refused: nothing written
        assert answer.status_code != 200
        assert body["error"] and body["detail"] and body["field"], body
        assert not new_ids and dead_letters == 0
        return body

    rejected = body["rejected"]
    assert answer.status_code == (400 if rejected else 200)
    assert len(new_ids) == body["accepted"] and dead_letters == len(rejected)
    indexes = [r["index"] for r in rejected]
    assert indexes == sorted(set(indexes))
    for r in rejected:
        assert isinstance(r["field"], str) and r["field"] and r["reason"], r
    if messages is not None:
        assert all(0 <= i < len(messages) for i in indexes)
        assert body["accepted"] + body["duplicates"] + body["suppressed"] + len(rejected) \
            == len(messages)
        kept = [m for i, m in enumerate(messages) if i not in set(indexes)]
        sent_ids = {m["messageId"] for m in kept if isinstance(m.get("messageId"), str)}
        # Every valid message is in the stream (now, or from the same request sent before);
        # nothing is streamed that is not one of them (or an id generated for one).
        assert sent_ids <= ledger.streamed
        assert {i for i in new_ids if not i.startswith("h-")} <= sent_ids
    return body


def post(api: httpx.Client, body: bytes, headers: dict[str, str],
         chunked: bool = False) -> httpx.Response:
    content: Any = iter([body[i:i + 65_536] for i in range(0, len(body), 65_536)]) \
        if chunked else body
    return api.post("/v1/events", content=content,
                    headers={"content-type": "application/json", **headers})


def check_still_serving(api: httpx.Client, ledger: Ledger) -> None:
    probe = {"type": "track", "event": "Session Started", "userId": "probe",
             "messageId": f"probe-{next(ledger.probes)}"}
    answer = api.post("/v1/events", json=probe)
    assert answer.status_code == 200 and answer.json()["accepted"] == 1, answer.text
    check_answer(answer, [probe], ledger)
    ledger.check_totals()


# Batches at the limit: 2,500 messages (all refused, or all taken), and one more.
FULL_BATCHES = st.sampled_from([
    Blob(json.dumps({"batch": [{}] * MAX_BATCH_MESSAGES}).encode()),
    Blob(json.dumps({"batch": [{"type": "page", "anonymousId": f"a{i}"}
                               for i in range(MAX_BATCH_MESSAGES)]}).encode()),
    Blob(json.dumps({"batch": [{}] * (MAX_BATCH_MESSAGES + 1)}).encode())])


def raw_bodies() -> st.SearchStrategy[tuple[bytes, dict[str, str]]]:
    texts = st.one_of(
        st.binary(max_size=512),
        json_values().flatmap(json_encoded),
        hostile_json_texts(MAX_REQUEST_BYTES),
        request_documents(NOW).flatmap(json_encoded).flatmap(spliced),
        FULL_BATCHES,
    )
    return texts.flatmap(encoded_body) | oversized_bodies(MAX_REQUEST_BYTES)


def test_any_body_is_answered_200_or_a_4xx_naming_the_problem(fuzzed_api) -> None:
    api, ledger = fuzzed_api

    @FUZZ
    @given(sent=raw_bodies(), chunked=st.booleans())
    def send(sent: tuple[Blob, dict[str, str]], chunked: bool) -> None:
        ledger.reset()
        check_answer(post(api, *sent, chunked=chunked), None, ledger)
        check_still_serving(api, ledger)

    send()


def test_segment_messages_mutated_field_by_field_are_taken_or_refused_one_by_one(
        fuzzed_api) -> None:
    api, ledger = fuzzed_api

    @FUZZ
    @given(doc=request_documents(NOW), data=st.data())
    def send(doc: Any, data: st.DataObject) -> None:
        ledger.reset()
        body, headers = data.draw(json_encoded(doc).flatmap(encoded_body))
        messages = request_messages(doc)
        first = check_answer(post(api, body, headers), messages, ledger)
        again = check_answer(post(api, body, headers), messages, ledger)  # a sender's retry
        if "rejected" in first:
            assert again == {**first, "accepted": 0,
                             "duplicates": first["accepted"] + first["duplicates"]}
        check_still_serving(api, ledger)

    send()
