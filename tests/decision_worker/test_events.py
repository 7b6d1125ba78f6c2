"""The Segment event contract: good messages become events, bad ones are named rejections."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from decision_worker.events import (
    MAX_BATCH_MESSAGES,
    RequestRejected,
    parse_request,
    validate_message,
)

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
