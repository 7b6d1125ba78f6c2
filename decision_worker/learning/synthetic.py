"""A synthetic population with hidden preferences and a known click model.

The demo replays its sessions through the real API and worker; training uses it
as ground truth. Each user secretly prefers one category in every placement; the chance of
a click is

    P(click | user, variant, position) = BASE_CTR × taste(user, category) × BIAS[position]
                                         × FATIGUE ** (times the user saw this variant)

with taste `FAVOURITE` for the preferred category, `DEFAULT_TASTE` for the default's and 1
otherwise, a position bias that halves attention lower down, and fatigue: every earlier
impression of the same variant makes the next click less likely. The transparent baseline
models taste but not fatigue, so a learned ranker has something to find beyond it.

Each user also has identify traits, a `plan` (and `tier`, its number) and an `age_band`
(sent as an `identify` when `history(identify=True)`). With `plan_decides=s`, a share s of
users prefer, in every placement, the category their plan stands for instead of one of
their own: a population where a trait tells which variant a user clicks before their
clicks do.
Everything is drawn from seeded generators (traits from one of their own, so adding them
changed no earlier population), so a population is reproducible.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from decision_worker.ingest.event_log import EventLog
from decision_worker.ingest.history_import import HistoryImport, ImportSummary
from decision_worker.ranking.candidates import Catalog

BASE_CTR = 0.03
FAVOURITE = 6.0
DEFAULT_TASTE = 1.5
POSITION_BIAS = (1.0, 0.55, 0.35)
CONVERSION_RATE = 0.2  # of clicks
FATIGUE = 0.7
DEVICES = (("desktop", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"),
           ("mobile", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Mobile/15E148"),
           ("tablet", "Mozilla/5.0 (iPad; CPU OS 17_0) Tablet"))
LOCALES = (("en-US", 0.6), ("en-GB", 0.2), ("es-ES", 0.2))
PLANS = ("free", "plus", "pro")
AGE_BANDS = ("18-24", "25-34", "35-49", "50+")


@dataclass(frozen=True)
class SyntheticUser:
    user_id: str
    favourite: dict[str, str]  # placement → preferred category
    user_agent: str
    locale: str
    plan: str = PLANS[0]
    age_band: str = AGE_BANDS[0]


class Population:
    def __init__(self, catalog: Catalog, size: int, seed: int = 7,
                 favourite: float = FAVOURITE, default_taste: float = DEFAULT_TASTE,
                 fatigue: float = FATIGUE, base_ctr: float = BASE_CTR,
                 plan_decides: float = 0.0) -> None:
        """`favourite=1, default_taste=1, fatigue=1`: a population with no preference;
        `base_ctr=0`: one that never clicks; `plan_decides`: the share of users whose
        plan decides their favourite category."""
        self.catalog = catalog
        self.rng = np.random.default_rng(seed)
        self.trait_rng = np.random.default_rng([seed, 1])
        self.favourite_taste, self.default_taste, self.fatigue = favourite, default_taste, fatigue
        self.base_ctr = base_ctr
        self.plan_decides = plan_decides
        self.users = [self._with_traits(self._user(i)) for i in range(size)]

    def _user(self, i: int) -> SyntheticUser:
        favourite = {}
        for placement, candidates in self.catalog.placements.items():
            choices = sorted({self.catalog.categories[c] for v, c in enumerate(
                candidates.category_index) if v != candidates.default_index})
            if choices:
                favourite[placement] = choices[int(self.rng.integers(len(choices)))]
        _, agent = DEVICES[int(self.rng.integers(len(DEVICES)))]
        locale = LOCALES[int(self.rng.choice(len(LOCALES), p=[p for _, p in LOCALES]))][0]
        return SyntheticUser(f"synthetic-{i:05d}", favourite, agent, locale)

    def _with_traits(self, user: SyntheticUser) -> SyntheticUser:
        plan = PLANS[int(self.trait_rng.integers(len(PLANS)))]
        age_band = AGE_BANDS[int(self.trait_rng.integers(len(AGE_BANDS)))]
        favourite = user.favourite
        if self.trait_rng.random() < self.plan_decides:
            favourite = {p: self.plan_category(p, plan) for p in favourite}
        return dataclasses.replace(user, favourite=favourite, plan=plan, age_band=age_band)

    def plan_category(self, placement: str, plan: str) -> str:
        """The category users of `plan` prefer in `placement` (when their plan decides)."""
        candidates = self.catalog.placements[placement]
        choices = sorted({self.catalog.categories[c] for v, c in enumerate(
            candidates.category_index) if v != candidates.default_index})
        return str(choices[PLANS.index(plan) % len(choices)])

    def click_probability(self, user: SyntheticUser, placement: str, variant: str,
                          position: int = 0, seen: int = 0) -> float:
        candidates = self.catalog.placements[placement]
        v = candidates.variants.index(variant)
        category = self.catalog.categories[int(candidates.category_index[v])]
        if category == user.favourite.get(placement):
            taste = self.favourite_taste
        elif v == candidates.default_index:
            taste = self.default_taste
        else:
            taste = 1.0
        return (self.base_ctr * taste * POSITION_BIAS[min(position, len(POSITION_BIAS) - 1)]
                * self.fatigue ** seen)

    def history(self, impressions: int, end: dt.datetime,
                span: dt.timedelta = dt.timedelta(days=2), run: str = "",
                always_first: dict[str, str] | None = None, slate_size: int = 3,
                sessions: bool = False, identify: bool = False) -> Iterator[dict[str, Any]]:
        """Past impressions and the clicks and conversions the model gives them, user by
        user, in time order: the log an exploring site would have collected. Each
        impression is a slate: up to `len(POSITION_BIAS)` distinct variants of one placement
        in random order, one `Variant Viewed` each with its position. `run` makes the
        messageIds of one replay distinct from another's. `always_first` (placement →
        variant) is a biased logging policy: that variant always takes the top slot.
        `slate_size=1` is a one-slot placement (a hero banner); `sessions` starts a session
        a second before every impression, as a site that decides at session start logs;
        `identify` sends each user's traits first."""
        placements = sorted(self.catalog.placements)
        for user in self.users:
            seen: dict[tuple[str, str], int] = {}
            if identify:
                yield self.identify(user, end - span, run)
            offsets = np.sort(self.rng.uniform(0, span.total_seconds(), impressions))
            for n, offset in enumerate(offsets):
                at = end - span + dt.timedelta(seconds=float(offset))
                placement = placements[int(self.rng.integers(len(placements)))]
                variants = self.catalog.placements[placement].variants
                size = min(slate_size, len(POSITION_BIAS), len(variants))
                if sessions:
                    yield self._track(user, "Session Started", f"{run}{user.user_id}-{n}s",
                                      at - dt.timedelta(seconds=1), {})
                slate = [variants[int(i)] for i in self.rng.permutation(len(variants))[:size]]
                pinned = (always_first or {}).get(placement)
                if pinned is not None:
                    slate = [pinned] + [v for v in slate if v != pinned][:size - 1]
                for position, variant in enumerate(slate):
                    properties = {"placement": placement, "variant": variant,
                                  "position": position}
                    base = f"{run}{user.user_id}-{n}-{position}"
                    yield self._track(user, "Variant Viewed", f"{base}v", at, properties)
                    shown_before = seen.get((placement, variant), 0)
                    seen[(placement, variant)] = shown_before + 1
                    if self.rng.random() < self.click_probability(user, placement, variant,
                                                                  position, shown_before):
                        later = at + dt.timedelta(seconds=5 + position)
                        yield self._track(user, "Variant Clicked", f"{base}c", later,
                                          properties)
                        if self.rng.random() < CONVERSION_RATE:
                            yield self._track(user, "Variant Converted", f"{base}x",
                                              later + dt.timedelta(seconds=30), properties)

    def identify(self, user: SyntheticUser, at: dt.datetime, run: str = "") -> dict[str, Any]:
        """The user's `identify`, with their traits."""
        return {"type": "identify", "userId": user.user_id, "messageId": f"{run}{user.user_id}-i",
                "timestamp": at.isoformat().replace("+00:00", "Z"),
                "traits": {"plan": user.plan, "tier": PLANS.index(user.plan) + 1,
                           "age_band": user.age_band}}

    def outcomes(self, served: dict[tuple[str, str], str], at: dt.datetime,
                 run: str = "") -> Iterator[dict[str, Any]]:
        """What users did with the variant put first for them at `at` ((user id,
        placement) → variant): its `Variant Viewed` two seconds later, and a `Variant
        Clicked` with the hidden preferences' probability five seconds after that."""
        users = {u.user_id: u for u in self.users}
        for (user_id, placement), variant in served.items():
            user = users[user_id]
            properties = {"placement": placement, "variant": variant, "position": 0}
            base = f"{run}{user_id}-{placement}-served"
            shown = at + dt.timedelta(seconds=2)
            yield self._track(user, "Variant Viewed", f"{base}v", shown, properties)
            if self.rng.random() < self.click_probability(user, placement, variant):
                yield self._track(user, "Variant Clicked", f"{base}c",
                                  shown + dt.timedelta(seconds=5), properties)

    def session_starts(self, at: dt.datetime, run: str = "") -> Iterator[dict[str, Any]]:
        for user in self.users:
            yield self._track(user, "Session Started", f"{run}{user.user_id}-s", at, {})

    def _track(self, user: SyntheticUser, name: str, message_id: str, at: dt.datetime,
               properties: dict[str, Any]) -> dict[str, Any]:
        return {"type": "track", "event": name, "userId": user.user_id, "messageId": message_id,
                "timestamp": at.isoformat().replace("+00:00", "Z"), "properties": properties,
                "context": {"userAgent": user.user_agent, "locale": user.locale}}


def as_logged(messages: Iterator[dict[str, Any]], delay_s: float = 0.5) -> Iterator[dict[str, Any]]:
    """Messages as the event log holds them: `receivedAt` a little after the event time."""
    for message in messages:
        at = dt.datetime.fromisoformat(message["timestamp"].replace("Z", "+00:00"))
        received = (at + dt.timedelta(seconds=delay_s)).isoformat().replace("+00:00", "Z")
        yield {**message, "receivedAt": received}


def log_messages(log: EventLog, messages: Iterable[dict[str, Any]]) -> ImportSummary:
    """Write messages into the event log as `edgepick import` does (validated, each in its
    event day, once per messageId)."""
    run = HistoryImport(log)
    for line, message in enumerate(messages, start=1):
        run.add("synthetic", line, message)
    return run.close()
