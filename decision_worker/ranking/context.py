"""A session's context, as the profile keeps it: device class, local hour, traffic source
and language, read from the first event of a session (Segment's `context`). Whatever the
sender put there, an unreadable value counts as unknown, never as an error."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from decision_worker.ingest.events import Event

DEVICES = ("unknown", "desktop", "mobile", "tablet")
SOURCES = ("direct", "search", "social", "email", "campaign", "referral")
# Languages trending is segmented by (ISO 639-1; the most used on the web). Bounded, so
# the counts stay bounded by the catalog; a user in another language reads the overall trend.
TREND_LANGUAGES = ("en", "es", "pt", "fr", "de", "it", "nl", "pl", "ru", "uk", "tr", "ar",
                   "hi", "id", "vi", "th", "ja", "ko", "zh", "sv")
SEARCH_HOSTS = ("google.", "bing.", "duckduckgo.", "yahoo.", "ecosia.", "baidu.")
SOCIAL_HOSTS = ("facebook.", "instagram.", "t.co", "twitter.", "x.com", "linkedin.",
                "tiktok.", "reddit.", "pinterest.")


def session_context(event: Event) -> dict[str, Any]:
    """Device class, local hour, traffic source and locale of a session's first event."""
    context = event.context
    return {"device": _device(context), "hour": _local_hour(event),
            "source": _source(context), "locale": language_of_locale(context.get("locale"))}


def _device(context: dict[str, Any]) -> str:
    device = context.get("device")
    kind = device.get("type") if isinstance(device, dict) else None
    if isinstance(kind, str):
        kind = kind.lower()
        if kind in ("ios", "android", "mobile", "phone"):
            return "mobile"
        if kind in ("tablet", "ipad"):
            return "tablet"
        if kind in ("desktop", "web", "computer"):
            return "desktop"
    agent = context.get("userAgent")
    if isinstance(agent, str) and agent:
        if "iPad" in agent or "Tablet" in agent:
            return "tablet"
        if "Mobile" in agent or "Android" in agent or "iPhone" in agent:
            return "mobile"
        return "desktop"
    return "unknown"


def _local_hour(event: Event) -> int:
    offset = event.raw.get("timestamp") or event.raw.get("originalTimestamp")
    # The sender's own clock string carries its UTC offset when it has one; else UTC.
    if isinstance(offset, str) and len(offset) >= 19 and offset[-6] in "+-" and offset[-3] == ":":
        try:
            hours, minutes = int(offset[-5:-3]), int(offset[-2:])
            shift = (hours * 60 + minutes) * (1 if offset[-6] == "+" else -1)
            return int((event.timestamp.hour * 60 + event.timestamp.minute + shift) // 60) % 24
        except ValueError:
            pass
    return event.timestamp.hour


def _source(context: dict[str, Any]) -> str:
    campaign = context.get("campaign")
    if isinstance(campaign, dict):
        medium = str(campaign.get("medium", "")).lower()
        if medium == "email":
            return "email"
        if medium in ("social", "social-media"):
            return "social"
        if campaign.get("source") or campaign.get("name"):
            return "campaign"
    page = context.get("page")
    referrer = page.get("referrer") if isinstance(page, dict) else None
    if isinstance(referrer, str) and referrer:
        try:
            host = (urlsplit(referrer).hostname or "").lower()
        except ValueError:  # "http://[::1": an unparseable referrer says nothing
            return "direct"
        if any(s in host for s in SEARCH_HOSTS):
            return "search"
        if any(s in host for s in SOCIAL_HOSTS):
            return "social"
        return "referral" if host else "direct"
    return "direct"


def language_of_locale(locale: Any) -> str | None:
    """`es-ES`, `es_MX`, `ES` → `es`: the one rule users and variants are matched by."""
    if not isinstance(locale, str) or not 2 <= len(locale) <= 35:
        return None
    language = locale.replace("_", "-").split("-")[0].lower()
    return language if language.isalpha() and 2 <= len(language) <= 3 else None
