"""Eligibility: schedules at the worker's clock, locales by language, exclusions, default."""

from __future__ import annotations

import numpy as np

from decision_worker.ranking.candidates import Catalog

T0 = 1_800_000_000.0
URL = "https://cdn.test/content/hero/variant-{}.0123456789abcdef.json"


def catalog() -> Catalog:
    def variant(name: str, **meta: object) -> dict[str, object]:
        return {"url": URL.format(name), "category": "c", **meta}

    return Catalog.from_document({"format": 1, "rev": 1, "placements": {"hero": {
        "default": "evergreen", "variants": {
            "evergreen": variant("evergreen"),
            "spring": variant("spring", starts_at="2027-01-15T08:00:00Z",
                              ends_at="2027-02-01T00:00:00Z"),
            "spanish": variant("spanish", locale="es-MX"),
            "plain": variant("plain")}}}})


def test_eligibility_by_schedule_locale_and_conversions() -> None:
    hero = catalog().placements["hero"]
    index = {v: i for i, v in enumerate(hero.variants)}
    inside = 1_800_000_000.0 + 0  # 2027-01-15T08:00:00Z
    mask = hero.eligible(np.array([inside - 1, inside, inside]), [None, "es", "en"],
                         [(keys, np.zeros(0, np.uint64)) for keys in ([], [], ["hero/plain"])])
    assert not mask[0, index["spring"]] and mask[1, index["spring"]]  # at the clock
    assert mask[1, index["spanish"]] and not mask[0, index["spanish"]]  # es-MX for es only
    assert not mask[2, index["plain"]] and mask[1, index["plain"]]  # converted: not again
    assert mask[:, index["evergreen"]].all()  # the default: nobody excluded it


def test_the_default_obeys_the_policy_and_is_the_last_resort() -> None:
    hero = catalog().placements["hero"]
    index = {v: i for i, v in enumerate(hero.variants)}
    none = np.zeros(0, np.uint64)
    # a user who consumed the default is not offered it again while anything else is left
    mask = hero.eligible(np.array([T0, T0]), ["en", "en"],
                         [(["hero/evergreen"], none), ([], none)])
    assert not mask[0, index["evergreen"]] and mask[0, index["plain"]]
    assert mask[1, index["evergreen"]]
    # nothing else left (spring is scheduled later, spanish is for es): the default alone
    everything = ["hero/evergreen", "hero/plain"]
    mask = hero.eligible(np.array([T0 - 1]), ["en"], [(everything, none)])
    assert mask[0].tolist() == [v == "evergreen" for v in hero.variants]


def test_the_defaults_own_schedule_and_locale_do_not_bind_it() -> None:
    # the edge falls back to the default for everyone, so the ranker may offer it to anyone
    doc = {"format": 1, "rev": 1, "placements": {"hero": {"default": "launch", "variants": {
        "launch": {"url": URL.format("launch"), "category": "c", "locale": "en-US",
                   "starts_at": "2027-01-15T08:00:00Z"},
        "plain": {"url": URL.format("plain"), "category": "c"}}}}}
    hero = Catalog.from_document(doc).placements["hero"]
    none = np.zeros(0, np.uint64)
    mask = hero.eligible(np.array([T0 - 86_400.0]), ["es"], [([], none)])
    assert mask[0].all()
