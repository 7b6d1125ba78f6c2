"""What edgepick keeps of a message about a person, and the person's privacy signals.

Two pure rules, applied wherever a message enters (the events API, `edgepick import`) and
again wherever one is read back (the worker, the offline replay), so every part agrees:

- `scrub`: identify traits (and `context.traits`) are kept only when named in the allow-list
  (`EDGEPICK_TRAITS`), so e-mail addresses, phone numbers, names and addresses never reach
  the event log, the stream or a profile; `context.ip` is dropped.
- `privacy_signal`: a message that says the person opts out of (or back into)
  personalization. Documented in docs/privacy.md: a `track` named `Personalization Opted
  Out` / `Personalization Opted In`, an identify trait `edgepick_opt_out` (true/false), or
  Segment Consent Management's `context.consent.categoryPreferences.personalization`.
"""

from __future__ import annotations

from typing import Any

OPT_OUT, OPT_IN = "opt_out", "opt_in"
OPT_OUT_EVENT, OPT_IN_EVENT = "Personalization Opted Out", "Personalization Opted In"
OPT_OUT_TRAIT = "edgepick_opt_out"
CONSENT_CATEGORY = "personalization"
DEFAULT_TRAITS = ("plan", "tier", "country", "locale", "language", "age_band", "segment")
# Direct identifiers: refused in the allow-list, whatever it says (docs/privacy.md).
PII_TRAITS = frozenset({"email", "phone", "name", "firstname", "lastname", "first_name",
                        "last_name", "address", "street", "postalcode", "postal_code", "zip",
                        "birthday", "username", "ssn", "ip"})
DROPPED_CONTEXT = ("ip",)


def is_pii_trait(name: str) -> bool:
    return name.strip().lower() in PII_TRAITS


def scrub(message: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    """A copy of `message` without traits outside `allowed` and without `context.ip`.
    Returns `message` itself when there was nothing to drop (the common case)."""
    traits = message.get("traits")
    context = message.get("context")
    context_traits = context.get("traits") if isinstance(context, dict) else None
    dirty = (isinstance(traits, dict) and any(k not in allowed for k in traits)) or (
        isinstance(context, dict) and (any(k in context for k in DROPPED_CONTEXT) or (
            isinstance(context_traits, dict) and any(k not in allowed for k in context_traits))))
    if not dirty:
        return message
    out = dict(message)
    if isinstance(traits, dict):
        out["traits"] = _kept(traits, allowed)
    if isinstance(context, dict):
        cleaned = {k: v for k, v in context.items() if k not in DROPPED_CONTEXT}
        if isinstance(context_traits, dict):
            cleaned["traits"] = _kept(context_traits, allowed)
        out["context"] = cleaned
    return out


def _kept(traits: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in traits.items() if k in allowed or k == OPT_OUT_TRAIT}


def privacy_signal(kind: str, name: str | None, traits: dict[str, Any],
                   context: dict[str, Any]) -> str | None:
    """OPT_OUT, OPT_IN, or None when the message says nothing about consent."""
    if kind == "track" and name == OPT_OUT_EVENT:
        return OPT_OUT
    if kind == "track" and name == OPT_IN_EVENT:
        return OPT_IN
    flag = traits.get(OPT_OUT_TRAIT) if kind == "identify" else None
    if flag is True:
        return OPT_OUT
    if flag is False:
        return OPT_IN
    consent = context.get("consent")
    preferences = consent.get("categoryPreferences") if isinstance(consent, dict) else None
    allowed = preferences.get(CONSENT_CATEGORY) if isinstance(preferences, dict) else None
    if allowed is False:
        return OPT_OUT
    if allowed is True:
        return OPT_IN
    return None
