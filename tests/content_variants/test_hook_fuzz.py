"""POST /v1/hooks/cms against generated requests of every scheme (tests/fuzzing.py), on a
real server, a real Redis, the folder origin and a served origin for the pre-warm: valid
bodies mutated field by field, arbitrary JSON, non-JSON and oversized bodies, each signed
validly, over another body, with another secret, a stale, future or garbage timestamp, a
missing or duplicated header, or sent twice. Whatever arrives: no 5xx but a declared 503;
every refusal is JSON naming the problem; the origin and the manifest change only for a
validly signed request, only as its answer says, and only into objects and entries the edge
accepts; no placement lock outlives its request; and a valid signed request right after is
served.

Cost: publishing a variant starts a render child (~0.2 s), so valid publishes are a small
share of the examples (most bodies carry a mutation that validation refuses before any
rendering); every example starts from the same manifest, restored with a few Redis writes
rather than republished, so hypothesis can replay any example; the probe after each example
is an unpublish, which renders nothing.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis import Redis

from content_variants.hook_api import create_hook_app
from content_variants.keys import HOOK_SEEN_PREFIX, PUBLISH_LOCK_PREFIX
from content_variants.object_keys import DIGEST_HEX_CHARS, MANIFEST_COPY_KEY, VARIANT_KEY
from edge_functions.identifiers import is_valid_id
from edge_functions.keys import MANIFEST_KEY, MANIFEST_REV_KEY
from edge_functions.manifest import parse_document
from tests.conftest import Settings, free_port
from tests.content_variants.test_hook_api import (
    CONTENTFUL_SECRET,
    EDGEPICK_SECRET,
    PATH,
    SANITY_SECRET,
    STRAPI_SECRET,
)
from tests.content_variants.variant_strategies import (
    FIELD_VALUES,
    PLACEMENT_VALUES,
    PUBLISHED,
    VARIANTS,
)
from tests.decision_worker.segment_strategies import TIME_VALUES
from tests.fuzzing import (
    FUZZ,
    Blob,
    hostile_json_texts,
    json_encoded,
    json_values,
    spliced,
)

MAX_BODY = 16_384
TOLERANCE_S = 300
SECRETS = {"edgepick": EDGEPICK_SECRET, "contentful": CONTENTFUL_SECRET,
           "sanity": SANITY_SECRET, "strapi": STRAPI_SECRET}
SCHEMES = tuple(SECRETS)  # in the order the server looks for their headers
AUTH_ERRORS = {"missing_header", "bad_signature", "bad_timestamp", "stale_timestamp",
               "scheme_not_configured", "replayed"}
# Entries published through each CMS while setting up, so CMS unpublishes find something.
CMS_SOURCES = {"contentful": "5KsDBWseXY6QegucYAoacS", "sanity": "0f6a1c2e-spring",
               "strapi": "k2p9spring"}


# -- the server and what it keeps ----------------------------------------------------------


@dataclass
class State:
    """What one example may change: the manifest (Redis and its copy on the origin) and
    the origin's objects."""

    doc: bytes | str | None
    rev: bytes | str | None
    copy: bytes | None
    objects: frozenset[str]


@dataclass
class Hook:
    client: httpx.Client
    redis: Redis
    origin: Path
    cdn_base: str
    content_dir: str
    start: tuple[bytes | str, bytes | str, bytes] = (b"", b"", b"")  # manifest, rev, copy

    def post(self, body: bytes, headers: list[tuple[str, str | bytes]],
             chunked: bool = False) -> httpx.Response:
        content: Any = iter([body[:MAX_BODY // 2], body[MAX_BODY // 2:]]) if chunked else body
        raw = [(name.encode(), value if isinstance(value, bytes) else value.encode())
               for name, value in headers]  # (duplicates kept, in order)
        return self.client.post(PATH, content=content, headers=raw)

    def state(self) -> State:
        objects = frozenset(str(p.relative_to(self.origin)) for p in self.origin.rglob("*")
                            if p.is_file() and p.parts[-2:] != ("manifest", "current.json"))
        copy = self.origin / MANIFEST_COPY_KEY
        return State(self.redis.get(MANIFEST_KEY), self.redis.get(MANIFEST_REV_KEY),
                     copy.read_bytes() if copy.exists() else None, objects)

    def keep_start(self) -> None:
        state = self.state()
        assert state.doc is not None and state.rev is not None and state.copy is not None
        self.start = (state.doc, state.rev, state.copy)

    def reset(self) -> None:
        """Back to the manifest every example starts from; replay markers forgotten. Locks
        are not touched: none may be left (checked after every example)."""
        doc, rev, copy = self.start
        self.redis.mset({MANIFEST_KEY: doc, MANIFEST_REV_KEY: rev})
        markers = list(self.redis.scan_iter(match=HOOK_SEEN_PREFIX + "*", count=1000))
        if markers:
            self.redis.delete(*markers)
        (self.origin / MANIFEST_COPY_KEY).write_bytes(copy)


@pytest.fixture
def hook(settings: Settings, serve: Callable[..., str], serve_app: Callable[..., str],
         redis: Redis, content: Path, publish_content: Callable[..., Any]) -> Iterator[Hook]:
    """One hook server for every example: the example catalog published, plus one variant
    from each CMS (so their unpublishes find an entry), the origin served for pre-warm."""
    port = free_port()
    settings = dataclasses.replace(
        settings, cdn_base=f"http://127.0.0.1:{port}", content_dir=content,
        hook_secret=EDGEPICK_SECRET, contentful_secret=CONTENTFUL_SECRET,
        sanity_secret=SANITY_SECRET, strapi_secret=STRAPI_SECRET,
        hook_max_body_bytes=MAX_BODY, hook_tolerance_s=TOLERANCE_S)
    serve(settings, port)
    assert publish_content(settings, content).ok
    assert settings.origin_dir is not None
    with httpx.Client(base_url=serve_app(create_hook_app(settings)), timeout=60) as client:
        hook = Hook(client, redis, settings.origin_dir, settings.cdn_base, str(content))
        for scheme, entry_id in CMS_SOURCES.items():
            variant = {**VARIANTS["hero"], "id": f"from-{scheme}"}
            body = cms_document(scheme, "hero", variant, entry_id, "publish")
            answer = hook.post(body, sign(scheme, body, "publish"))
            assert answer.status_code == 200 and answer.json()["uploaded"], answer.text
        hook.keep_start()
        yield hook


# -- generated requests --------------------------------------------------------------------

@st.composite
def variants(draw: st.DrawFn, placement: Any) -> tuple[dict[str, Any], bool]:
    """(variant, clean): a valid variant of `placement` (or of another: then its template
    fails it), most of the time with one to three fields hostile or missing; clean when it
    is neither, so it must publish."""
    template = placement if placement in list(VARIANTS) and draw(st.integers(0, 9)) else \
        draw(st.sampled_from(list(VARIANTS)))
    variant = dict(VARIANTS[template])
    mutations = draw(st.sampled_from([0, 1, 1, 1, 2, 2, 3]))
    for _ in range(mutations):
        name = draw(st.sampled_from(list(FIELD_VALUES)))
        if draw(st.integers(0, 5)):
            variant[name] = draw(FIELD_VALUES[name])
        else:
            variant.pop(name, None)
    return variant, template == placement and not mutations


@st.composite
def edgepick_documents(draw: st.DrawFn) -> tuple[Any, tuple[str, ...]]:
    """(edgepick's body, what must publish): publishes and unpublishes, items and shape
    mutated; a clean variant alone in its placement must publish."""
    publish = []
    clean = []
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2, 3]))):
        placement = draw(st.sampled_from(PLACEMENT_VALUES))
        variant, is_clean = draw(variants(placement))
        publish.append({"placement": placement, "variant": variant})
        if is_clean:
            clean.append(f"{placement}/{variant['id']}")
    placements = [item["placement"] for item in publish]
    clean = [name for name in clean if placements.count(name.split("/")[0]) == 1]
    unpublish = []
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        unpublish.append({"placement": draw(st.sampled_from(PLACEMENT_VALUES)),
                          "variant": draw(st.sampled_from(PUBLISHED + ("nope", "Evil", 5))),
                          "replace_default": draw(st.sampled_from(
                              (None, None, "trail-running", "evergreen", "nope", 5, "")))})
    doc: dict[str, Any] = {"publish": publish, "unpublish": unpublish}
    shape = draw(st.sampled_from(["as is"] * 6 + ["no unpublish", "extra key", "not lists",
                                                  "item extra key", "item missing key",
                                                  "variant not object", "many items"]))
    if shape == "no unpublish":
        del doc["unpublish"]
    elif shape == "extra key":
        doc["delete"] = []
    elif shape == "not lists":
        doc["publish"] = {"placement": "hero"}
    elif shape == "item extra key" and publish:
        publish[0]["extra"] = 1
    elif shape == "item missing key" and publish:
        del publish[0]["variant"]
    elif shape == "variant not object" and publish:
        publish[0]["variant"] = draw(json_values())
    elif shape == "many items":
        doc["unpublish"] = [{"placement": "hero", "variant": "nope"}] * 101
    return doc, tuple(clean) if shape in ("as is", "no unpublish") else ()


def cms_fields(variant: dict[str, Any], placement: Any) -> dict[str, Any]:
    """A CMS entry's fields for `variant`, with the default mapping's names."""
    names = {"id": "slug", "starts_at": "startsAt", "ends_at": "endsAt", "default": "isDefault"}
    fields = {names.get(k, k): v for k, v in variant.items() if k != "fields"}
    extra = variant.get("fields", {})
    fields.update(extra if isinstance(extra, dict) else {"fields": extra})
    return {"placement": placement, **fields}


def cms_document(scheme: str, placement: Any, variant: dict[str, Any], entry_id: Any,
                 action: str, kind: str = "variant") -> bytes:
    fields = cms_fields(variant, placement)
    if scheme == "contentful":
        doc: Any = {"sys": {"id": entry_id, "type": "DeletedEntry" if action == "delete"
                            else "Entry", "contentType": {"sys": {"id": kind}}},
                    "fields": {name: {"en-US": value} for name, value in fields.items()}}
    elif scheme == "sanity":
        doc = {"_id": entry_id, "_type": kind, **fields,
               "slug": {"_type": "slug", "current": fields.get("slug")}}
    elif scheme == "strapi":
        doc = {"event": f"entry.{action}", "createdAt": _iso(time.time()), "model": kind,
               "entry": {"id": 7, "documentId": entry_id, **fields,
                         "publishedAt": "2026-01-02T00:00:00Z"}}
    else:
        doc = {"publish": [{"placement": placement, "variant": variant}]}
    return json.dumps(doc).encode()


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


PUBLISHING = {"contentful": ("publish",), "strapi": ("publish", "create", "update"),
              "sanity": ("publish", "create", "update", "save", "archive")}


@st.composite
def cms_bodies(draw: st.DrawFn, scheme: str) -> tuple[bytes, str, tuple[str, ...]]:
    """(body, action, what must publish) of a CMS entry: a variant mapped with the default
    field names, then mutated (entry id, type, the locale layer, sys, drafts, timestamps)."""
    placement = draw(st.sampled_from(PLACEMENT_VALUES))
    variant, clean = draw(variants(placement))
    entry_id = draw(st.sampled_from([*CMS_SOURCES.values(), "new-entry-1", "", 5, None,
                                     "drafts.x", "x" * 201, "a\x00b"]))
    action = draw(st.sampled_from(["publish", "publish", "publish", "unpublish", "delete",
                                   "archive", "save", "create", "update", "other"]))
    kind = draw(st.sampled_from(["variant", "variant", "variant", "page"]))
    doc = json.loads(cms_document(scheme, placement, variant, entry_id, action, kind))
    mutation = draw(st.sampled_from(["none"] * 6 + ["no sys", "not localized", "draft",
                                                    "no entry", "createdAt"]))
    if scheme == "contentful" and mutation == "no sys":
        del doc["sys"]
    elif scheme == "contentful" and mutation == "not localized":
        doc["fields"] = cms_fields(variant, placement)
    elif scheme == "strapi" and mutation == "draft":
        doc["entry"]["publishedAt"] = None
    elif scheme == "strapi" and mutation == "no entry":
        doc["entry"] = draw(json_values())
    elif scheme == "strapi" and mutation == "createdAt":
        doc["createdAt"] = draw(st.sampled_from(TIME_VALUES))
    clean = clean and mutation == "none" and kind == "variant" and action in PUBLISHING[scheme] \
        and entry_id in (*CMS_SOURCES.values(), "new-entry-1")
    return draw(json_encoded(doc)), action, (f"{placement}/{variant['id']}",) if clean else ()


@st.composite
def bodies(draw: st.DrawFn, scheme: str) -> tuple[Blob, str, tuple[str, ...]]:
    """(body, action, what must publish): the scheme's document, or bytes cut from it,
    arbitrary JSON, almost-JSON, any bytes, or a body at and over the size limit."""
    if scheme == "edgepick":
        doc, clean = draw(edgepick_documents())
        document, action = draw(json_encoded(doc)), "publish"
    else:
        document, action, clean = draw(cms_bodies(scheme))
    kind = draw(st.sampled_from(["document"] * 8 + ["spliced", "json", "almost", "bytes",
                                                    "limit"]))
    if kind == "spliced":
        document = draw(spliced(document))
    elif kind == "json":
        document = draw(json_values().flatmap(json_encoded))
    elif kind == "almost":
        document = draw(hostile_json_texts(MAX_BODY))
    elif kind == "bytes":
        document = draw(st.binary(max_size=256))
    elif kind == "limit":  # the document padded with spaces to just under, at, or over it
        document = document + b" " * max(0, MAX_BODY + draw(st.sampled_from([-1, 0, 1, 5000]))
                                         - len(document))
    return Blob(document), action, clean if kind == "document" else ()


TOPICS = {"publish": "ContentManagement.Entry.publish",
          "unpublish": "ContentManagement.Entry.unpublish",
          "delete": "ContentManagement.Entry.delete", "archive": "ContentManagement.Entry.archive",
          "save": "ContentManagement.Entry.save", "create": "ContentManagement.Asset.publish",
          "update": "ContentManagement.Entry.auto_save", "other": "x"}
SANITY_OPERATIONS = {"delete": "delete", "unpublish": "delete", "create": "create",
                     "update": "update", "publish": "update", "other": "Delete"}
GARBAGE_TIMESTAMPS = ("", "abc", "-1", "1e9", "12 3", "0x10", "+1700000000",
                      "\u0661\u0662\u0663", "9" * 17, "1700000000.5", "ms")
MODES = ("valid",) * 8 + ("twice", "other-body", "other-secret", "mutated-signature", "stale",
                          "future", "garbage-timestamp", "missing-header", "duplicate-header",
                          "earlier-scheme", "no-scheme")
SIGNATURE_HEADERS = {"X-Edgepick-Signature", "x-contentful-signature", "sanity-webhook-signature",
                     "Authorization"}


def sign(scheme: str, body: bytes, action: str, secret: str | None = None,
         when: float | None = None, stamp: str | None = None) -> list[tuple[str, str | bytes]]:
    """Headers signing `body` as the scheme's documented algorithm does. `when`: the time
    signed (now by default); `stamp`: a timestamp sent as it is instead."""
    secret = secret or SECRETS[scheme]
    when = time.time() if when is None else when
    key = secret.encode()
    if scheme == "edgepick":
        ts = stamp if stamp is not None else str(int(when))
        mac = hmac.new(key, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        return [("X-Edgepick-Timestamp", ts.encode()), ("X-Edgepick-Signature", f"sha256={mac}")]
    if scheme == "contentful":
        ms = stamp if stamp is not None else str(int(when * 1000))
        signed = {"content-type": "application/vnd.contentful.management.v1+json",
                  "x-contentful-topic": TOPICS[action], "x-contentful-timestamp": ms}
        names = sorted([*signed, "x-contentful-signed-headers"])
        signed["x-contentful-signed-headers"] = ",".join(names)
        canonical = "\n".join(["POST", PATH, ";".join(f"{n}:{signed[n]}" for n in names), ""])
        mac = hmac.new(key, canonical.encode() + body, hashlib.sha256).hexdigest()
        return [(name, value.encode()) for name, value in signed.items()] + \
            [("x-contentful-signature", mac)]
    if scheme == "sanity":
        ms = stamp if stamp is not None else str(int(when * 1000))
        digest = hmac.new(key, ms.encode() + b"." + body, hashlib.sha256).digest()
        v1 = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        return [("sanity-webhook-signature", f"t={ms},v1={v1}".encode()),
                ("sanity-operation", SANITY_OPERATIONS.get(action, "update"))]
    return [("X-Strapi-Event", f"entry.{action}"), ("Authorization", f"Bearer {secret}")]


@dataclass
class Sent:
    scheme: str
    body: Blob
    headers: list[tuple[str, str | bytes]]
    signed: str  # "valid", "invalid", or "either" (duplicated signature headers)
    clean: tuple[str, ...]  # "placement/variant" of valid items: they must publish
    twice: bool = False
    chunked: bool = False


def mutated_signature(draw: st.DrawFn, headers: list[Any]) -> list[Any]:
    """The signature header with one character changed, added or removed."""
    i, (name, value) = next((i, h) for i, h in enumerate(headers) if h[0] in SIGNATURE_HEADERS)
    text = value.decode() if isinstance(value, bytes) else value
    at = draw(st.integers(0, len(text) - 1))
    text = draw(st.sampled_from([other for other in (
        text[:at] + ("1" if text[at] != "1" else "2") + text[at + 1:],
        text[:at] + text[at + 1:], text + "0", text.replace("=", "=0", 1),
        "sha1=" + text[7:], "") if other != text]))
    headers[i] = (name, text)
    return headers


def duplicated_header(draw: st.DrawFn, scheme: str, headers: list[Any]) -> list[Any]:
    """A second, garbage copy of the scheme's signature header, before or after it."""
    name, _ = headers[-1] if scheme != "edgepick" else headers[1]
    if scheme == "sanity":
        name = "sanity-webhook-signature"
    garbage = (name, draw(st.sampled_from(["", "sha256=" + "0" * 64, "t=1,v1=x",
                                            "Bearer nope", "0" * 64])))
    headers.insert(draw(st.integers(0, len(headers))), garbage)
    return headers


@st.composite
def hook_requests(draw: st.DrawFn) -> Sent:
    scheme = draw(st.sampled_from(SCHEMES))
    body, action, clean = draw(bodies(scheme))
    mode = draw(st.sampled_from(MODES))
    signed = "invalid"
    if mode in ("valid", "twice"):
        headers, signed = sign(scheme, body, action), "valid"
    elif mode == "other-body":  # signed over the body before a mutation
        headers = sign(scheme, body + b" ", action)
        signed = "valid" if scheme == "strapi" else "invalid"  # Strapi signs no body
    elif mode == "other-secret":
        headers = sign(scheme, body, action, secret="another-secret-0123456789")
    elif mode == "mutated-signature":
        headers = mutated_signature(draw, sign(scheme, body, action))
    elif mode in ("stale", "future"):
        skew = draw(st.sampled_from([TOLERANCE_S + 2, 3600, 10**9]))
        headers = sign(scheme, body, action, when=time.time() + (skew if mode == "future"
                                                                 else -skew))
        signed = "valid" if scheme == "strapi" else "invalid"  # Strapi's time is in the body
    elif mode == "garbage-timestamp":
        headers = sign(scheme, body, action, stamp=draw(st.sampled_from(GARBAGE_TIMESTAMPS)))
        signed = "valid" if scheme == "strapi" else "invalid"
    elif mode == "missing-header":
        headers = sign(scheme, body, action)
        dropped = draw(st.sampled_from([name for name, _ in headers]))
        headers = [(n, v) for n, v in headers if n != dropped]
        signed = "valid" if dropped == "sanity-operation" else "invalid"  # (update)
    elif mode == "duplicate-header":
        headers, signed = duplicated_header(draw, scheme, sign(scheme, body, action)), "either"
    elif mode == "earlier-scheme":  # a valid signature, behind another scheme's header
        headers = sign(scheme, body, action)
        earlier = SCHEMES[:SCHEMES.index(scheme)]
        if earlier:
            other = draw(st.sampled_from(earlier))
            header = {"edgepick": "X-Edgepick-Signature", "contentful": "x-contentful-signature",
                      "sanity": "sanity-webhook-signature"}[other]
            headers.append((header, "sha256=" + "0" * 64))
        else:
            signed = "valid"
    else:  # no signature header of any scheme
        headers = [("Authorization", f"Bearer {STRAPI_SECRET}"), ("X-Signature", "x")]
    if scheme != "contentful":  # (Contentful signs its own)
        headers.append(("Content-Type", "application/json"))
    return Sent(scheme, body, headers, signed, clean, twice=mode == "twice",
                chunked=draw(st.sampled_from([False] * 5 + [True])))


# -- what every answer must be -------------------------------------------------------------


def check_answer(hook: Hook, sent: Sent, answer: httpx.Response, first: bool) -> None:
    """The status fits what was sent, and the body says what happened."""
    status, body = answer.status_code, answer.json()
    assert status < 500 or (status == 503 and body["error"] in ("busy", "redis_unavailable")
                            and answer.headers["retry-after"]), answer.text
    if len(sent.body) > MAX_BODY:
        assert (status, body["error"]) == (413, "body_too_large"), answer.text
        return
    if sent.signed == "invalid" or not first:
        assert status == 401 and body["error"] in AUTH_ERRORS, answer.text
        if not first:
            assert body["error"] == "replayed", answer.text
    elif sent.signed == "valid" and status == 401:
        # Strapi's freshness is the body's createdAt: a body without a fresh one is refused.
        assert sent.scheme == "strapi" and body["error"] in ("bad_timestamp",
                                                             "stale_timestamp"), answer.text
    if first and sent.signed == "valid" and sent.clean:
        assert status in (200, 207), answer.text
        taken = body["uploaded"] + body["updated"] + body["unchanged"]
        assert set(sent.clean) <= set(taken), (sent.clean, answer.text)
    if status in (200, 207, 422) and "error" not in body:
        check_report(hook, body, status)
    else:
        assert 400 <= status < 500 or status == 503, answer.text
        assert set(body) == {"error", "detail"}, answer.text
        assert isinstance(body["error"], str) and body["error"], answer.text
        assert isinstance(body["detail"], str) and body["detail"], answer.text


def check_report(hook: Hook, body: dict[str, Any], status: int) -> None:
    if "ignored" in body:
        assert status == 200 and set(body) == {"scheme", "ignored"} and body["ignored"]
        return
    changed = body["uploaded"] + body["updated"] + body["unpublished"]
    assert status == (200 if not body["failed"] else 207 if changed or body["unchanged"]
                      else 422), body
    for line in body["failed"]:
        assert isinstance(line, str) and ": " in line, body  # "<where>: <reason>"
        assert hook.content_dir not in line, body  # no server paths in answers
        # The example templates are quick: no variant's data may look like a runaway one.
        assert not any(limit in line for limit in ("took longer", "hit its limits",
                                                   "out of memory", "of CPU")), body


def check_changes(hook: Hook, sent: Sent, answers: list[httpx.Response], before: State,
                  after: State) -> None:
    """Nothing changes unless a validly signed request's items went through; what changes
    is what the answer says, and the edge would take it."""
    went_through = [a.json() for a in answers
                    if a.status_code in (200, 207) and "uploaded" in a.json()]
    if not went_through:
        assert after == before, [a.text for a in answers]
        return
    assert sent.signed in ("valid", "either")
    assert after.doc is not None and after.copy is not None
    doc = json.loads(after.doc)
    parse_document(doc)  # the edge's own parser
    assert json.loads(after.copy) == doc and int(after.rev or 0) == doc["rev"]
    old = json.loads(before.doc or b'{"placements": {}}')["placements"]
    new = doc["placements"]
    said = {name for report in went_through
            for name in report["uploaded"] + report["updated"] + report["unpublished"]}
    named = said | {name for report in went_through for name in report["unchanged"]}
    for placement in set(old) | set(new):
        if old.get(placement, {}).get("default") != new.get(placement, {}).get("default"):
            assert any(name.startswith(placement + "/") for name in named), (placement, named)
        was = old.get(placement, {}).get("variants", {})
        now = new.get(placement, {}).get("variants", {})
        for variant in set(was) | set(now):
            if was.get(variant) != now.get(variant):
                assert f"{placement}/{variant}" in said, (placement, variant, said)
            if variant in now:
                check_entry(hook, placement, variant, now[variant])
    referenced = {entry["url"].removeprefix(hook.cdn_base + "/")
                  for placement in new.values() for entry in placement["variants"].values()}
    for key in after.objects - before.objects:  # every new object is eligible and whole
        match = VARIANT_KEY.fullmatch(key)
        assert match is not None and key in referenced, key
        data = (hook.origin / key).read_bytes()
        assert hashlib.sha256(data).hexdigest()[:DIGEST_HEX_CHARS] == match["digest"], key
        assert isinstance(strict_json(data), dict), key


def strict_json(data: bytes) -> Any:
    """`data` read as RFC 8259 JSON, as a browser reads it: UTF-8, no NaN or Infinity."""
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(data.decode("utf-8"), parse_constant=refuse)


def check_entry(hook: Hook, placement: str, variant: str, entry: dict[str, Any]) -> None:
    """A manifest entry holds what a variant file may: ids, a printable title, a schedule."""
    assert is_valid_id(placement) and is_valid_id(variant)
    match = VARIANT_KEY.fullmatch(entry["url"].removeprefix(hook.cdn_base + "/"))
    assert match is not None and (match["placement"], match["variant"]) == (placement, variant)
    assert match["digest"] == entry["digest"]
    assert isinstance(entry["title"], str) and entry["title"].isprintable()
    assert 1 <= len(entry["title"]) <= 500
    assert is_valid_id(entry["category"]) and all(is_valid_id(t) for t in entry["tags"])
    for name in ("starts_at", "ends_at"):
        if entry[name] is not None:
            assert dt.datetime.fromisoformat(entry[name]).tzinfo is not None, entry


def probe(hook: Hook) -> None:
    """A valid signed request, right after: unpublish a variant (it renders nothing)."""
    body = json.dumps({"unpublish": [{"placement": "hero", "variant": "winter-camping"}]}
                      ).encode()
    answer = hook.post(body, sign("edgepick", body, "unpublish"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["unpublished"] == ["hero/winter-camping"], answer.text


def test_any_hook_request_changes_nothing_unless_validly_signed_and_valid(hook: Hook) -> None:
    @FUZZ
    @given(sent=hook_requests())
    def send(sent: Sent) -> None:
        hook.reset()
        before = hook.state()
        answers = [hook.post(sent.body, sent.headers, sent.chunked)]
        if sent.twice:
            answers.append(hook.post(sent.body, sent.headers, sent.chunked))
        first_refused = answers[0].status_code in (401, 409, 413, 503)
        for i, answer in enumerate(answers):
            check_answer(hook, sent, answer, first=i == 0 or first_refused)
        check_changes(hook, sent, answers, before, hook.state())
        assert not list(hook.redis.scan_iter(match=PUBLISH_LOCK_PREFIX + "*"))
        hook.reset()
        probe(hook)

    send()
    # After everything, a valid publish through every scheme still publishes.
    hook.reset()
    for scheme in SCHEMES:
        variant = {**VARIANTS["cta"], "id": f"after-{scheme}"}
        body = cms_document(scheme, "cta", variant, f"after-{scheme}", "publish")
        answer = hook.post(body, sign(scheme, body, "publish"))
        assert answer.status_code == 200, answer.text
        assert answer.json()["uploaded"] == [f"cta/after-{scheme}"], answer.text
