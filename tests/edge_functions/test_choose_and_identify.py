"""The hot path's two decisions, without a server: who is asking, and which URL they get."""

from __future__ import annotations

from typing import Any

import pytest

from edge_functions.decision_record import DecisionRecord, encode
from edge_functions.errors import InvalidIdentifier
from edge_functions.manifest import parse_document
from edge_functions.serving import choose, identify

URL = "https://cdn.test/content/hero/variant-{}.0123456789abcdef.json"
PLACEMENT = parse_document({"format": 1, "rev": 1, "placements": {"hero": {
    "default": "evergreen", "variants": {v: {"url": URL.format(v)} for v in
                                         ("evergreen", "trail", "camping")}}}}
                           ).placements["hero"]


def record(*ranked: str, arm: str = "treatment") -> bytes:
    return encode(DecisionRecord(ranked, "m-1", arm, 1))


@pytest.mark.parametrize(("raw", "fault", "variant", "source"), [
    (record("trail", "camping"), None, "trail", "decision"),
    (record("gone", "camping"), None, "camping", "decision"),  # first still published
    (record("gone", "also-gone"), None, "evergreen", "not-eligible"),
    (record("trail", arm="holdout"), None, "evergreen", "holdout"),
    (None, None, "evergreen", "no-decision"),
    (b"2|trail|m|a|1", None, "evergreen", "corrupt-record"),
    (b"garbage", None, "evergreen", "corrupt-record"),
    (record("trail"), "store-timeout", "evergreen", "store-timeout"),
])
def test_choose(raw: bytes | None, fault: str | None, variant: str, source: str) -> None:
    location, why, experiment, _ = choose(PLACEMENT, raw, fault)
    assert (location.decode(), why) == (URL.format(variant), source)
    assert experiment == ""  # format 1, or a default: no exposure


@pytest.mark.parametrize(("raw", "source", "exposed"), [
    (b"2|trail|m-1|treatment|1|rollout-7", "decision", ("rollout-7", "treatment")),
    (b"2|gone,camping|m-1|control|1|rollout-7", "decision", ("rollout-7", "control")),
    (b"2|gone|m-1|control|1|rollout-7", "not-eligible", ("", "")),  # the default exposes no arm
    (b"2|trail|m-1|holdout|1|personalization", "holdout", ("personalization", "holdout")),
    (b"2|trail|m-1|control|1|", "corrupt-record", ("", "")),
])
def test_choose_names_the_experiment_only_when_its_decision_is_served(
        raw: bytes, source: str, exposed: tuple[str, str]) -> None:
    _, why, experiment, arm = choose(PLACEMENT, raw, None)
    assert why == source
    assert (experiment, arm) == exposed
    assert choose(PLACEMENT, raw, "store-timeout")[2:] == ("", "")


def scope(headers: list[tuple[bytes, bytes]], query: bytes = b"") -> dict[str, Any]:
    return {"headers": headers, "query_string": query}


@pytest.mark.parametrize(("headers", "query", "expected"), [
    ([(b"cookie", b"a=1; ep_uid=alice")], b"uid=bob", ("alice", False)),
    ([(b"x-user-id", b"carol")], b"uid=bob", ("carol", False)),
    ([], b"x=1&uid=bob", ("bob", False)),
    ([], b"", (None, False)),
    ([(b"cookie", b"ep_uid=alice; ep_optout=1")], b"", ("alice", True)),
    ([(b"sec-gpc", b"1"), (b"x-user-id", b"dave")], b"", ("dave", True)),
    ([(b"cookie", "ep_uid=josé".encode())], b"", ("josé", False)),  # UTF-8, as the worker
])
def test_identify(headers: list[tuple[bytes, bytes]], query: bytes,
                  expected: tuple[str | None, bool]) -> None:
    assert identify(scope(headers, query)) == expected


@pytest.mark.parametrize(("headers", "query"), [
    ([(b"x-user-id", b"\xff\xfe")], b""),
    ([(b"x-user-id", b"a\tb")], b""),
    ([], b"uid=" + b"x" * 300),
    ([(b"cookie", b"ep_uid=\xff")], b""),
])
def test_a_malformed_user_id_is_refused(headers: list[tuple[bytes, bytes]],
                                        query: bytes) -> None:
    with pytest.raises(InvalidIdentifier):
        identify(scope(headers, query))
