"""The Segment event contract: good messages become events, bad ones are named rejections."""

from __future__ import annotations

import datetime as dt
import json

import orjson
import pytest

from decision_worker.ingest.event_log import encode_json
from decision_worker.ingest.events import (
    MAX_BATCH_MESSAGES,
    MAX_MESSAGE_BYTES,
    Event,
    Rejection,
    RequestRejected,
    parse_request,
    validate_message,
)
from decision_worker.ingest.ingestion import log_record
from decision_worker.online.stream_entries import decode_entry

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def track(name: str = "Session Started", **extra: object) -> dict[str, object]:
    return {"type": "track", "event": name, "userId": "u1", "messageId": "m1",
            "timestamp": "2026-11-23T10:00:00Z", **extra}


def test_a_batch_keeps_good_messages_and_names_each_bad_one() -> None:
    batch = [
        track(),
        {"type": "track", "userId": "u1"},                                   # no event
        {"type": "track", "event": "X"},                                     # no id
        {"type": "screen", "userId": "u1"},                                  # unknown type
        track(timestamp="yesterday"),                                        # bad time
        track(properties=[1, 2]),                                            # wrong type
        {"type": "identify", "anonymousId": "a1", "traits": {"plan": "pro"}},
        track("Variant Clicked", properties={"placement": "hero", "variant": "BAD"}),
        "not an object",
        track(userId="x" * 300),
    ]
    events, rejections = parse_request(json.dumps({"batch": batch}).encode(), NOW)
    assert [e.type for e in events] == ["track", "identify"]
    assert [(r.index, r.field) for r in rejections] == [
        (1, "event"), (2, "userId"), (3, "type"), (4, "timestamp"), (5, "properties"),
        (7, "properties.variant"), (8, "(message)"), (9, "userId")]
    assert str(rejections[0]) == "message 1: field 'event' is required for a track message"


def test_session_starts_are_recognized_three_ways() -> None:
    assert validate_message(0, track("Session Started"), NOW).session_start
    assert validate_message(0, track("Application Opened"), NOW).session_start
    page = {"type": "page", "anonymousId": "a", "context": {"sessionStart": True,
                                                           "sessionId": 17}}
    assert validate_message(0, page, NOW).session_start
    assert not validate_message(0, track("Product Viewed"), NOW).session_start


def test_engagement_events_carry_placement_variant_and_position() -> None:
    clicked = validate_message(0, track("Variant Clicked", properties={
        "placement": "hero", "variant": "spring", "position": 0}), NOW)
    assert clicked.engagement is not None
    assert (clicked.engagement.kind, clicked.engagement.placement, clicked.engagement.variant,
            clicked.engagement.position) == ("click", "hero", "spring", 0)
    promo = validate_message(0, track("Promotion Viewed", properties={
        "promotion_id": "spring", "creative": "hero", "position": "home_banner_top"}), NOW)
    assert promo.engagement is not None
    assert (promo.engagement.kind, promo.engagement.placement, promo.engagement.position) == \
        ("view", "hero", None)
    bad = validate_message(3, track("Variant Converted", properties={
        "placement": "hero", "variant": "spring", "position": -1}), NOW)
    assert str(bad) == "message 3: field 'properties.position' must be a non-negative integer"


def test_event_time_comes_from_the_message_and_is_utc() -> None:
    event = validate_message(0, track(timestamp="2026-11-23T11:00:00+01:00"), NOW)
    assert event.timestamp == dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
    untimed = dict(track())
    del untimed["timestamp"]
    assert validate_message(0, untimed, NOW).timestamp == NOW


def test_missing_message_id_is_derived_from_content_so_retries_dedupe() -> None:
    message = dict(track())
    del message["messageId"]
    first = validate_message(0, message, NOW)
    again = validate_message(5, dict(message), NOW)
    other = validate_message(0, {**message, "event": "Other"}, NOW)
    assert first.message_id == again.message_id != other.message_id


def test_alias_needs_both_ids() -> None:
    alias = {"type": "alias", "userId": "u1", "previousId": "anon-1"}
    assert validate_message(0, alias, NOW).previous_id == "anon-1"
    assert validate_message(0, {**alias, "previousId": ""}, NOW).field == "previousId"
    assert validate_message(0, {"type": "alias", "anonymousId": "a", "previousId": "b"},
                            NOW).field == "userId"


def test_size_limits_follow_segment() -> None:
    big = track(properties={"blob": "x" * (33 * 1024)})
    assert validate_message(0, big, NOW).field == "(message)"
    with pytest.raises(RequestRejected) as too_many:
        parse_request(json.dumps({"batch": [track()] * (MAX_BATCH_MESSAGES + 1)}).encode(), NOW)
    assert too_many.value.status == 413
    with pytest.raises(RequestRejected) as too_big:
        parse_request(b"{" + b" " * (501 * 1024) + b"}", NOW)
    assert too_big.value.status == 413


@pytest.mark.parametrize("body,field", [(b"{nope", "(body)"), (b"[1]", "(body)"),
                                        (b'{"batch": {}}', "batch"), (b"\xff", "(body)")])
def test_unusable_bodies_are_refused_whole(body: bytes, field: str) -> None:
    with pytest.raises(RequestRejected) as info:
        parse_request(body, NOW)
    assert info.value.status == 400 and info.value.field == field


def test_batch_context_applies_to_messages_without_their_own() -> None:
    body = {"batch": [{"type": "page", "userId": "u"}], "context": {"sessionStart": True}}
    events, _ = parse_request(json.dumps(body).encode(), NOW)
    assert events[0].session_start


def test_numeric_user_ids_are_strings() -> None:
    assert validate_message(0, {"type": "identify", "userId": 42}, NOW).user_id == "42"


def _stored_and_read_back(event: Event, received: dt.datetime = NOW) -> Event | Rejection:
    """The event as the worker reads it: the stream entry ingest writes, decoded."""
    return decode_entry({b"m": encode_json(log_record(event, received))})


@pytest.mark.parametrize("slack", [-200, -120, -80, -40, -1, 0, 1])
def test_the_worker_takes_every_message_the_api_takes_at_the_size_limit(slack: int) -> None:
    for message in (track(), {k: v for k, v in track().items() if k != "messageId"}):
        message["properties"] = {"pad": ""}
        size = len(orjson.dumps(message, option=orjson.OPT_SORT_KEYS))
        message["properties"]["pad"] = "x" * (MAX_MESSAGE_BYTES + slack - size)
        event = validate_message(0, message, NOW)
        if isinstance(event, Event):  # found by the fuzz tests: 32,700 bytes passed the API
            assert _stored_and_read_back(event) == event  # and were dead-lettered after
        else:
            assert (event.field, event.reason) == ("(message)", "is larger than 32768 bytes")


def test_the_batch_context_counts_toward_each_message_it_is_folded_into() -> None:
    context = {"page": {"url": "https://example.org/" + "x" * (MAX_MESSAGE_BYTES - 100)}}
    small = [track(messageId=f"m{i}") for i in range(3)] + [track(context={})]
    events, rejections = parse_request(json.dumps({"batch": small, "context": context})
                                       .encode(), NOW)
    assert [e.message_id for e in events] == ["m1"]  # the one with a context of its own
    assert [(r.index, r.field) for r in rejections] == [(0, "(message)"), (1, "(message)"),
                                                       (2, "(message)")]
    assert "the batch's context" in rejections[0].reason


def test_a_batch_context_that_cannot_be_stored_is_refused_for_the_messages_it_joins() -> None:
    body = json.dumps({"batch": [track(), track(messageId="m2", context={"ok": 1})],
                       "context": {"page": {"title": "\udc00"}}}).encode()
    events, rejections = parse_request(body, NOW)
    assert [e.message_id for e in events] == ["m2"]
    assert [(r.index, r.field) for r in rejections] == [(0, "context.page.title")]
    assert "lone surrogate" in rejections[0].reason


def test_sent_at_centuries_from_original_timestamp_is_a_rejection_not_a_crash() -> None:
    for original, sent in (("9999-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
                           ("0001-01-01T00:00:00Z", "9999-01-01T00:00:00Z")):
        message = {k: v for k, v in track().items() if k != "timestamp"}
        rejection = validate_message(0, {**message, "originalTimestamp": original,
                                          "sentAt": sent}, NOW)
        assert isinstance(rejection, Rejection) and rejection.field == "sentAt"
