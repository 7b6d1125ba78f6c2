"""Generated Segment traffic: valid messages of every type, then mutated field by field.

A message starts valid (a `track`, `identify`, `page` or `alias` with ids from a small pool,
so profiles meet again and anonymous ids get linked; engagement with the test catalog's
variants; session context; consent and opt-out signals) and then has up to four fields set
to something hostile: wrong types, empty or 300-byte or control-character ids, numeric and
unicode ids, timestamps that overflow or lie years ahead, invalid variant ids, extra fields.
Some messages are sized to straddle the 32 KB limit; batches carry a batch-level context
and repeat messageIds within and across requests.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import orjson
from hypothesis import strategies as st

from decision_worker.ingest.events import MAX_MESSAGE_BYTES
from tests.decision_worker.conftest import CATALOG
from tests.fuzzing import hostile_text, json_values, padding

USERS = ("user-1", "user-2", "user-3", "42", "Ünïcödé-üser", "ユーザー", "a b", "anon-1")
ANONYMOUS = ("anon-1", "anon-2", "anon-3", "d41d8cd9-8f00-b204-e980-0998ecf8427e")
DUPLICATE_IDS = tuple(f"dup-{i}" for i in range(6))
EVENTS = ("Session Started", "Application Opened", "Variant Viewed", "Variant Clicked",
          "Variant Converted", "Promotion Viewed", "Promotion Clicked",
          "Personalization Opted Out", "Personalization Opted In", "Product Viewed",
          "Order Completed")
PLACEMENT_VARIANTS = [(p, v) for p, (_, variants) in CATALOG.items() for v in variants]
TRAITS = ("plan", "tier", "country", "locale", "language", "age_band", "segment", "email",
          "phone", "name", "edgepick_opt_out", "favourite_colour")
LOCALES = ("en-US", "es-ES", "es_MX", "EN", "pt-br", "zh-Hant-TW", "e", "toolonglocale-x",
           "", "12-34")
REFERRERS = ("https://www.google.com/search?q=x", "https://t.co/abc", "https://example.org/",
             "http://[::1", "http://[::1]:99999/", "not a url", "", "//host-only")
USER_AGENTS = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile",
               "Mozilla/5.0 (iPad; CPU OS 17_0)", "Mozilla/5.0 (X11; Linux x86_64)", "")

# Hostile values, by the kind of field they are aimed at.
ID_VALUES: tuple[Any, ...] = (
    "", " ", "x" * 257, "x" * 300, "é" * 128, "é" * 129, "\U0001f600" * 64,
    "\U0001f600" * 65, "a\x00b", "a\nb", "\t", "\u202eevil", "\u200b", "ユーザー", "\ud800",
    "a\udfffb", 42, -7, 0, 1.5, -0.0, 1e300, 2**63 - 1, True, False, None, [], {}, ["u"],
    {"id": "u"})
TIME_VALUES: tuple[Any, ...] = (
    "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z", "1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z",
    "2026-11-23", "2026-11-23T10:00:00", "20261123T100000Z", "2026-11-23T10:00:00.123456789Z",
    "2026-11-23 10:00:00+05:30", "2026-13-01T00:00:00Z", "2026-11-23T24:00:00Z",
    "2026-11-23T10:00:00+24:00", "2026-11-23T10:00:00+05:30:15", "2026-W48-1T10:00:00Z",
    "yesterday", "", "2026-11-23T10:00:00Z" + " " * 30, 0, 1_795_000_000, 1.7e9, True, [],
    {"$date": "2026-11-23"})
VARIANT_VALUES: tuple[Any, ...] = (
    "Hero", "hero!", "x" * 65, "x" * 64, "", "-lead", "évergreen", "unknown-variant",
    "hero/evergreen", "evergreen\n", 5, None, True, ["evergreen"])
POSITION_VALUES: tuple[Any, ...] = (-1, 0, 1.5, True, "1", "top slot", 2**63 - 1, None, [])


def _iso(moment: dt.datetime, offset_min: int, style: int) -> str:
    local = moment.astimezone(dt.timezone(dt.timedelta(minutes=offset_min)))
    text = local.isoformat(timespec=("seconds", "milliseconds", "microseconds")[style % 3])
    return text.replace("+00:00", "Z") if style >= 3 else text


# Valid times at the edges: the first and last a datetime holds, the epoch, 2038.
EDGE_TIMES = ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59+14:00",
              "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999999Z", "2038-01-19T03:14:08Z")


@st.composite
def times(draw: st.DrawFn, now: dt.datetime) -> str:
    """An ISO-8601 time near `now` (or years away, or at an edge), with an offset and
    precision."""
    if draw(st.integers(0, 5)) == 0:
        return draw(st.sampled_from(EDGE_TIMES))
    seconds = draw(st.one_of(st.integers(-3 * 86_400, 600),
                             st.integers(-60 * 365 * 86_400, 30 * 365 * 86_400)))
    offset = draw(st.sampled_from([0, 0, 60, -300, 330, 345, -720, 840]))
    return _iso(now + dt.timedelta(seconds=seconds), offset, draw(st.integers(0, 5)))


@st.composite
def contexts(draw: st.DrawFn) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if draw(st.booleans()):
        context["device"] = {"type": draw(st.sampled_from(
            ["ios", "android", "tablet", "iPad", "desktop", "Web", "tv", ""]))}
    if draw(st.booleans()):
        context["userAgent"] = draw(st.sampled_from(USER_AGENTS))
    if draw(st.booleans()):
        context["locale"] = draw(st.sampled_from(LOCALES))
    if draw(st.booleans()):
        context["campaign"] = {"medium": draw(st.sampled_from(["email", "social", "cpc", 7])),
                               "source": draw(st.sampled_from(["newsletter", "", None]))}
    if draw(st.booleans()):
        context["page"] = {"referrer": draw(st.sampled_from(REFERRERS))}
    if draw(st.integers(0, 4)) == 0:
        context["sessionStart"] = True
        context["sessionId"] = draw(st.integers(0, 2**40))
    if draw(st.integers(0, 5)) == 0:
        context["consent"] = {"categoryPreferences": {"personalization": draw(st.booleans())}}
    if draw(st.integers(0, 5)) == 0:
        context["ip"] = "203.0.113.7"
    if draw(st.integers(0, 5)) == 0:
        context["traits"] = {"email": "a@example.com", "plan": "pro"}
    return context


@st.composite
def message_ids(draw: st.DrawFn) -> dict[str, Any]:
    """A fresh messageId, one reused on purpose, or none (the API derives one)."""
    how = draw(st.sampled_from(["fresh", "fresh", "duplicate", "none"]))
    if how == "fresh":
        return {"messageId": str(draw(st.uuids()))}
    if how == "duplicate":
        return {"messageId": draw(st.sampled_from(DUPLICATE_IDS))}
    return {}


@st.composite
def clocks(draw: st.DrawFn, now: dt.datetime) -> dict[str, Any]:
    """The time fields a sender sets: timestamp, originalTimestamp (with sentAt), or none."""
    clock = draw(st.sampled_from(["timestamp", "original+sent", "original", "none"]))
    if clock == "timestamp":
        return {"timestamp": draw(times(now))}
    if clock == "none":
        return {}
    fields = {"originalTimestamp": draw(times(now))}
    if clock == "original+sent":
        fields["sentAt"] = draw(times(now))
    return fields


@st.composite
def valid_messages(draw: st.DrawFn, now: dt.datetime) -> dict[str, Any]:
    """A message the contract accepts (up to its timestamps, which may lie far away)."""
    kind = draw(st.sampled_from(["track", "track", "track", "identify", "page", "alias"]))
    message: dict[str, Any] = {"type": kind}
    who = draw(st.sampled_from(["user", "anonymous", "both"]))
    if who != "anonymous" or kind == "alias":
        message["userId"] = draw(st.sampled_from(USERS))
    if who != "user":
        message["anonymousId"] = draw(st.sampled_from(ANONYMOUS))
    message.update(draw(message_ids()))
    message.update(draw(clocks(now)))
    if kind == "track":
        name = draw(st.sampled_from(EVENTS))
        message["event"] = name
        properties: dict[str, Any] = {}
        if name.startswith(("Variant", "Promotion")):
            placement, variant = draw(st.sampled_from(PLACEMENT_VARIANTS))
            properties["promotion_id" if name.startswith("Promotion") else "variant"] = variant
            properties["creative" if draw(st.booleans()) else "placement"] = placement
            if draw(st.booleans()):
                properties["position"] = draw(st.integers(0, 5)) if name.startswith(
                    "Variant") else draw(st.sampled_from([0, 2, "hero_top"]))
        message["properties"] = properties
    elif kind == "identify":
        message["traits"] = draw(st.dictionaries(
            st.sampled_from(TRAITS), st.one_of(st.sampled_from(["pro", "es-ES", "DE"]),
                                               st.integers(-5, 5), st.booleans(), st.none()),
            max_size=4))
    elif kind == "page":
        message["name"] = draw(st.sampled_from(["Home", "Pricing", "", None]))
        message["properties"] = {"url": "https://example.org/"}
    else:
        message["previousId"] = draw(st.sampled_from(ANONYMOUS))
    if draw(st.booleans()):
        message["context"] = draw(contexts())
    return message


_ID_FIELDS = ("userId", "anonymousId", "previousId", "messageId")
_TIME_FIELDS = ("timestamp", "originalTimestamp", "sentAt")
_VARIANT_FIELDS = ("properties.placement", "properties.variant", "properties.promotion_id",
                   "properties.creative")
_OTHER_FIELDS = ("type", "event", "name", "properties", "traits", "context",
                 "context.sessionStart", "context.device", "context.locale", "context.page",
                 "context.campaign", "context.consent", "context.traits", "traits.locale",
                 "traits.edgepick_opt_out", "traits.plan", "receivedAt")


@functools.cache
def _value_for(path: str) -> st.SearchStrategy[Any]:
    name = path.rsplit(".", 1)[-1]
    if name in _ID_FIELDS:
        return st.sampled_from(ID_VALUES) | hostile_text(12)
    if name in _TIME_FIELDS:
        return st.sampled_from(TIME_VALUES) | hostile_text(40)
    if path in _VARIANT_FIELDS:
        return st.sampled_from(VARIANT_VALUES)
    if name == "position":
        return st.sampled_from(POSITION_VALUES)
    if name == "type":
        return st.sampled_from(["screen", "group", "Track", "", None, 1]) | hostile_text(6)
    return json_values(6)


_PATHS = st.sampled_from(_ID_FIELDS + _TIME_FIELDS + _VARIANT_FIELDS + _OTHER_FIELDS
                         + ("properties.position",))


@st.composite
def mutated(draw: st.DrawFn, message: dict[str, Any]) -> dict[str, Any]:
    """`message` with up to four fields replaced by hostile values, deleted or added."""
    out = orjson.loads(orjson.dumps(message))  # a deep copy
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["set", "set", "set", "delete", "extra"]))
        if op == "extra":
            out[draw(hostile_text(10))] = draw(json_values(6))
            continue
        path = draw(_PATHS)
        parent, key = out, path
        if "." in path:
            head, key = path.split(".", 1)
            if not isinstance(out.get(head), dict):
                out[head] = {}
            parent = out[head]
        if op == "delete":
            parent.pop(key, None)
        else:
            parent[key] = draw(_value_for(path))
    return out


@st.composite
def sized(draw: st.DrawFn, message: dict[str, Any]) -> dict[str, Any]:
    """`message` padded so that its size straddles MAX_MESSAGE_BYTES (as the API measures
    it: compact JSON, sorted keys)."""
    message = orjson.loads(orjson.dumps(message))
    properties = message.get("properties")
    if not isinstance(properties, dict):
        return message
    properties["pad"] = ""
    size = len(orjson.dumps(message, option=orjson.OPT_SORT_KEYS))
    target = draw(st.integers(MAX_MESSAGE_BYTES - 160, MAX_MESSAGE_BYTES + 8))
    properties["pad"] = padding(max(0, target - size))
    return message


@functools.cache
def messages(now: dt.datetime) -> st.SearchStrategy[Any]:
    valid = valid_messages(now)
    return st.one_of(
        valid,
        valid.flatmap(mutated),
        valid.flatmap(mutated),
        valid.flatmap(sized),
        json_values(6),  # not a message at all
    )


@functools.cache
def request_documents(now: dt.datetime, max_messages: int = 6) -> st.SearchStrategy[Any]:
    """One request document: a single message, or `{"batch": [...]}` with repeats and
    sometimes a batch-level context (small, padded large, or not an object)."""
    return _request_documents(messages(now), max_messages)


_BATCH_CONTEXTS = contexts() | json_values(4)


@st.composite
def _request_documents(draw: st.DrawFn, messages: st.SearchStrategy[Any],
                       max_messages: int) -> Any:
    batch = draw(st.lists(messages, max_size=max_messages))
    if batch and draw(st.integers(0, 3)) == 0:
        batch.append(draw(st.sampled_from(batch)))  # the same message twice in one batch
    shape = draw(st.sampled_from(["single", "batch", "batch", "batch+context"]))
    if shape == "single":
        return batch[0] if batch else draw(messages)
    doc: dict[str, Any] = {"batch": batch}
    if shape == "batch+context":
        context = draw(_BATCH_CONTEXTS)
        if isinstance(context, dict) and draw(st.booleans()):
            context["pad"] = padding(draw(st.sampled_from([1_000, 20_000, MAX_MESSAGE_BYTES])))
        doc["context"] = context
    return doc


def request_messages(doc: Any) -> list[Any]:
    """The messages of a request document, as the API reads them."""
    if isinstance(doc, dict) and "batch" in doc:
        return doc["batch"] if isinstance(doc["batch"], list) else []
    return [doc]
