"""Variants as a CMS or a content folder may hold them: a valid one for each placement of
the example catalog (its template renders it), and hostile values for every field: wrong
types, ids that are not ids (or are another variant's), titles with control and bidi
characters, impossible schedules, any JSON at all in `fields`, unknown fields."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from tests.decision_worker.segment_strategies import ID_VALUES, TIME_VALUES
from tests.fuzzing import hostile_text, json_values

VARIANTS = {
    "hero": {"id": "spring-sale", "title": "Spring sale", "category": "promo",
             "tags": ["seasonal"], "fields": {"headline": "Spring", "image": "/img/s.jpg",
                                               "link": "/s"}},
    "cta": {"id": "cta-new", "title": "Join now", "category": "promo",
            "fields": {"label": "Join", "link": "/join"}},
    "email-header": {"id": "mail-new", "title": "Mail", "category": "news", "tags": [],
                     "fields": {"banner": "/b.png"}},
}
# Placements as a request may name them; variant ids the example catalog publishes.
PLACEMENT_VALUES: tuple[Any, ...] = ("hero", "cta", "email-header", "hero", "nowhere", "Hero",
                                     "", "../cta", "hero/x", 5, None, ["hero"])
PUBLISHED = ("trail-running", "evergreen", "climbing-es", "winter-camping", "join",
             "free-shipping", "weekly", "from-contentful")
# Hostile values by field (`colour`: a field variants do not have).
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "id": st.sampled_from(ID_VALUES + PUBLISHED + ("spring-sale", "x/../../evil", "Evil"))
    | hostile_text(),
    "title": st.sampled_from(["", "x" * 501, "a\u202eb", "a\x00b", "\u200b", "tab\there", 5,
                              None, ["t"]]) | hostile_text(),
    "category": st.sampled_from(ID_VALUES + ("promo", "Promo", "a b")),
    "tags": st.sampled_from([[], ["Seasonal"], ["ok", "ok"], "seasonal", [5], ["x" * 65],
                             None, ["a"] * 1000, [["a"]]]),
    "locale": st.sampled_from([None, "en-US", "es-ES", "e", "en_US", "x" * 20, 5, "zh-Hant-TW"]),
    "starts_at": st.sampled_from(TIME_VALUES),
    "ends_at": st.sampled_from(TIME_VALUES),
    "default": st.sampled_from([True, False, "yes", 1, 0, None, "true"]),
    "fields": json_values(),
    "colour": st.just("an unknown field"),
}
