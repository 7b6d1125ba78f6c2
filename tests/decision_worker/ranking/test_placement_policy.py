"""Placement policies as the worker applies them: slots, exclusions, frequency caps, the
default's place; and the per-user counts they read."""

from __future__ import annotations

import datetime as dt

import numpy as np

from decision_worker.ingest.events import Event, validate_message
from decision_worker.ranking import seen_archive
from decision_worker.ranking.candidates import Catalog
from decision_worker.ranking.decide import decide
from decision_worker.ranking.features import user_batch
from decision_worker.ranking.popularity import Popularity
from decision_worker.ranking.profile import Profile
from decision_worker.ranking.ranker import BaselineRanker
from decision_worker.ranking.seen_counts import MAX_SEEN, pack, unpack
from decision_worker.ranking.trending import event_day

AT = dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)
URL = "https://cdn.test/content/row/variant-{}.0123456789abcdef.json"
VARIANTS = [f"v{i}" for i in range(12)]


def catalog(policy: dict[str, object] | None) -> Catalog:
    entry: dict[str, object] = {"default": "v0", "variants": {
        v: {"url": URL.format(v), "category": "c"} for v in VARIANTS}}
    if policy is not None:
        entry["policy"] = policy
    return Catalog.from_document({"format": 1, "rev": 1, "placements": {"row": entry}})


def engaged(profile: Profile, variant: str, kind: str, times: int = 1) -> None:
    event_name = {"view": "Variant Viewed", "click": "Variant Clicked",
                  "conversion": "Variant Converted"}[kind]
    for n in range(times):
        event = validate_message(0, {
            "type": "track", "event": event_name, "userId": "u",
            "messageId": f"{variant}-{kind}-{n}-{len(profile.applied)}",
            "timestamp": AT.isoformat(), "properties": {"placement": "row",
                                                        "variant": variant}}, AT)
        assert isinstance(event, Event)
        assert profile.apply(event, event.message_id, {}, 3600.0) == "applied"


def ranked(policy: dict[str, object] | None, profile: Profile, ranked_size: int = 3,
           popularity: Popularity | None = None) -> tuple[str, ...]:
    cat = catalog(policy)
    users = user_batch([profile], [AT.timestamp()], cat)
    return decide(users, cat, popularity or Popularity(), BaselineRanker(), ranked_size,
                  0.0, ["tag"])[0]["row"].record.ranked


def test_exclusions_and_frequency_cap_follow_the_policy() -> None:
    profile = Profile()
    engaged(profile, "v1", "click")
    engaged(profile, "v2", "view", times=2)
    engaged(profile, "v3", "view")
    engaged(profile, "v4", "conversion")
    row = {"slots": 8, "exclude": ["click", "conversion"], "max_views": 2,
           "include_default": False}
    shown = ranked(row, profile)
    assert len(shown) == 8
    assert {"v1", "v2", "v4"}.isdisjoint(shown)  # clicked, viewed twice, converted
    assert "v3" in shown  # viewed once: under the cap
    # "consumed once is enough": a cap of one view
    assert "v3" not in ranked({**row, "max_views": 1}, profile)
    # no policy in the manifest: EDGEPICK_RANKED_SIZE slots, only conversions excluded
    legacy = ranked(None, profile, ranked_size=3)
    assert len(legacy) == 3 and "v4" not in legacy


def test_the_default_takes_a_slot_only_when_the_policy_says_so() -> None:
    # everyone clicks the other variants, nobody the default
    counts = {f"{kind}|row/{v}": count for v in VARIANTS
              for kind, count in (("view", 100), ("click", 0 if v == "v0" else 30))}
    popularity = Popularity({k: float(c) for k, c in counts.items()})
    popularity.trends.set_day(event_day(AT.timestamp()) - 1, counts)  # trending yesterday
    policy = {"slots": 2, "exclude": [], "max_views": 0, "include_default": False}
    assert "v0" not in ranked(policy, Profile(), popularity=popularity)
    with_default = ranked({**policy, "include_default": True}, Profile(),
                          popularity=popularity)
    assert len(with_default) == 2 and with_default[1] == "v0"
    # nothing eligible but the default: the default alone
    profile = Profile()
    for v in VARIANTS[1:]:
        engaged(profile, v, "conversion")
    assert ranked({**policy, "exclude": ["conversion"]}, profile, popularity=popularity) == (
        "v0",)


def test_a_consumed_default_is_excluded_like_any_variant() -> None:
    # everyone clicks the default most: it ranks first for whoever has not clicked it yet
    counts = {f"{kind}|row/{v}": count for v in VARIANTS
              for kind, count in (("view", 100), ("click", 60 if v == "v0" else 30))}
    popularity = Popularity({k: float(c) for k, c in counts.items()})
    popularity.trends.set_day(event_day(AT.timestamp()) - 1, counts)
    row = {"slots": 3, "exclude": ["click"], "max_views": 0, "include_default": False}
    assert ranked(row, Profile(), popularity=popularity)[0] == "v0"
    clicked = Profile()
    engaged(clicked, "v0", "click")
    shown = ranked(row, clicked, popularity=popularity)
    assert len(shown) == 3 and "v0" not in shown
    # forced into the list by the policy, it still comes last
    assert ranked({**row, "include_default": True}, clicked, popularity=popularity)[2] == "v0"


def test_seen_counts_are_bounded_merged_and_read_from_old_profiles() -> None:
    profile = Profile()
    for i in range(MAX_SEEN + 10):
        engaged(profile, f"x{i}", "view")
    assert len(profile.seen) == MAX_SEEN
    anonymous = Profile()
    engaged(anonymous, "x500", "click")
    engaged(anonymous, "x500", "view")
    assert "row/x0" not in profile.seen and "row/x10" in profile.seen  # oldest went first
    before = unpack(profile.seen["row/x500"])
    assert profile.merge(anonymous, "anon-tag")
    assert unpack(profile.seen["row/x500"]) == (before[0] + 1, before[1] + 1, 0)
    assert list(profile.seen)[-1] == "row/x500"  # now the most recent
    restored = Profile.loads(profile.dumps())
    assert restored.seen == profile.seen and list(restored.seen) == list(profile.seen)
    # a profile stored before `seen` existed kept its conversions in "cv"
    old = Profile.loads(b'{"v":3,"u":100.0,"f":1.0,"s":1,"ls":1.0,"t":[0,0,0,0,0,0,0],'
                        b'"c":{},"va":{},"cv":["row/v4"],"tr":{},"tra":0,"cx":{},"cxa":0,'
                        b'"ap":[],"ln":[],"mi":null,"h":null}')
    assert old.seen == {"row/v4": pack(0, 0, 1)}
    # counts saturate instead of spilling into the next field
    assert unpack(pack(2**21, 0, 0)) == (2**20 - 1, 0, 0)


def test_variants_pushed_out_of_seen_are_still_never_offered_again() -> None:
    """A heavy user's early engagements leave `seen` for the archive and stay excluded."""
    profile = Profile()
    for v in VARIANTS[1:6]:
        engaged(profile, v, "view")
    engaged(profile, "v6", "click")
    engaged(profile, "v7", "view", times=2)
    for i in range(MAX_SEEN):
        engaged(profile, f"x{i}", "view")
    assert not any(k.startswith("row/v") for k in profile.seen)
    assert seen_archive.size(profile.seen_archive) == 7
    consumed = {"slots": 8, "exclude": ["view", "click"], "include_default": False}
    assert set(ranked(consumed, profile, 8)) == set(VARIANTS) - {f"v{i}" for i in range(1, 8)}
    assert offered({"exclude": ["click"]}, profile) == set(VARIANTS) - {"v6"}
    assert offered({"exclude": [], "max_views": 2}, profile) == set(VARIANTS) - {"v7"}
    assert Profile.loads(profile.dumps()).seen_archive == profile.seen_archive
    engaged(profile, "v7", "view")  # back in `seen` with its counts; the oldest x goes out
    assert unpack(profile.seen["row/v7"]) == (3, 0, 0) and "row/x0" not in profile.seen
    assert seen_archive.size(profile.seen_archive) == 7
    anonymous = Profile()  # an anonymous history's archive joins the known user's
    for i in range(MAX_SEEN + 3):
        engaged(anonymous, f"y{i}", "view")
    assert profile.merge(anonymous, "anon-tag")
    assert seen_archive.size(profile.seen_archive) == 7 + 3 + MAX_SEEN
    assert "row/y0" not in profile.seen and offered(consumed, profile) == set(VARIANTS) - {
        f"v{i}" for i in range(1, 8)}


def offered(policy: dict[str, object], profile: Profile) -> set[str]:
    """The variants of "row" the policy leaves eligible for `profile`."""
    row = catalog(policy).placements["row"]
    mask = row.eligible(np.array([AT.timestamp()]), [None], row.excluded([profile]))[0]
    return {v for v, ok in zip(row.variants, mask, strict=True) if ok}
