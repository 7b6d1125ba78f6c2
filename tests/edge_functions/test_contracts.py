"""Pure contracts: identifiers, pseudonymized hash-tagged keys, the decision record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge_functions.decision_record import DecisionRecord, decode, decode_for_serving, encode
from edge_functions.errors import CorruptRecord, InvalidIdentifier
from edge_functions.identifiers import check_id, check_user_id
from edge_functions.keys import decision_key, user_tag

SECRET = b"0123456789abcdef0123"


@pytest.mark.parametrize("value", ["hero", "a", "0", "email-header", "x_1", "a" * 64])
def test_valid_ids_pass(value: str) -> None:
    assert check_id("placement", value) == value


@pytest.mark.parametrize("value", ["", "Hero", "-a", "_a", "a" * 65, "a b", "a/b", "a|b",
                                   "a,b", "é", "a\n", None, 3])
def test_invalid_ids_are_refused_by_name(value: object) -> None:
    with pytest.raises(InvalidIdentifier, match="placement id"):
        check_id("placement", value)


def test_user_ids_are_bounded_by_bytes_not_characters() -> None:
    assert check_user_id("é" * 128) == "é" * 128  # 256 bytes
    with pytest.raises(InvalidIdentifier, match="256 bytes"):
        check_user_id("é" * 128 + "x")
    with pytest.raises(InvalidIdentifier, match="control"):
        check_user_id("a\x00b")


def test_decision_keys_hide_the_user_and_share_one_hash_slot() -> None:
    tag = user_tag(SECRET, "alice@example.com")
    hero, cta = decision_key(tag, "hero"), decision_key(tag, "cta")
    assert "alice" not in hero
    assert hero.startswith("ep:d:{") and hero.endswith("}:hero")
    # Redis Cluster hashes only what is between the first { and the next }.
    assert hero[hero.index("{"):hero.index("}") + 1] == cta[cta.index("{"):cta.index("}") + 1]
    assert user_tag(SECRET, "alice@example.com") == tag
    assert user_tag(b"another-secret-0123", "alice@example.com") != tag
    assert user_tag(SECRET, "alice@example.co") != tag


def test_record_round_trips_and_stays_small() -> None:
    record = DecisionRecord(("spring", "summer", "autumn"), "lgbm-20261123", "treatment",
                            1_795_000_000)
    raw = encode(record)
    assert decode(raw) == record
    assert decode_for_serving(raw) == (["spring", "summer", "autumn"], "treatment", "")
    assert len(raw) < 64


def test_a_record_inside_an_experiment_names_it_and_round_trips() -> None:
    record = DecisionRecord(("spring",), "lgbm-20261205", "control", 1_795_000_000,
                            "rollout-7")
    raw = encode(record)
    assert raw.startswith(b"2|") and raw.endswith(b"|rollout-7")
    assert decode(raw) == record
    assert decode_for_serving(raw) == (["spring"], "control", "rollout-7")


@pytest.mark.parametrize("raw", [b"", b"2|a|m|arm|1", b"1|a|m|arm", b"1||m|arm|1",
                                 b"1|A|m|arm|1", b"1|a|m|arm|x", b"\xff\xfe",
                                 b"1|a|m|arm|1|exp", b"2|a|m|arm|1|", b"2|a|m|arm|1|Exp",
                                 b"3|a|m|arm|1|exp"])
def test_corrupt_records_are_refused(raw: bytes) -> None:
    with pytest.raises(CorruptRecord):
        decode(raw)


def test_record_refuses_ids_that_could_break_the_encoding() -> None:
    with pytest.raises(InvalidIdentifier):
        DecisionRecord(("a|b",), "m", "arm", 0)
    with pytest.raises(CorruptRecord):
        DecisionRecord((), "m", "arm", 0)


VECTORS = json.loads((Path(__file__).parent / "contract_vectors.json").read_text("utf-8"))


@pytest.mark.parametrize("case", VECTORS["decision_records"])
def test_decision_records_match_the_pinned_vectors(case: dict[str, Any]) -> None:
    record = DecisionRecord(tuple(case["ranked"]), case["model"], case["arm"],
                            case["decided_at"], case.get("experiment", ""))
    assert encode(record).decode("ascii") == case["encoded"]
    assert decode(case["encoded"].encode()) == record
    assert decode_for_serving(case["encoded"].encode()) == (
        case["ranked"], case["arm"], case.get("experiment", ""))


@pytest.mark.parametrize("case", VECTORS["keys"]["cases"])
def test_keys_match_the_pinned_vectors(case: dict[str, str]) -> None:
    tag = user_tag(VECTORS["keys"]["secret"].encode(), case["user"])
    assert tag == case["tag"]
    assert decision_key(tag, case["placement"]) == case["decision_key"]
