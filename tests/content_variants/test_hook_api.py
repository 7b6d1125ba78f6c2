"""POST /v1/hooks/cms against real Redis, the folder origin and a served origin for the
pre-warm. Signatures are built here from each scheme's documented algorithm, not by
edgepick's own verifier."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis

from content_variants.hook_api import create_hook_app
from edge_functions.keys import MANIFEST_KEY
from edge_functions.manifest import parse_bytes
from tests.conftest import free_port, wait_until

EDGEPICK_SECRET = "edgepick-hook-secret-0123456789"
CONTENTFUL_SECRET = "c" * 40 + "0123456789abcdefghijklmn"  # Contentful's are 64 characters
SANITY_SECRET = "sanity-secret-0123456789"
STRAPI_SECRET = "strapi-token-0123456789"
PATH = "/v1/hooks/cms"
SPRING = {"id": "spring-sale", "title": "Spring sale", "category": "promo",
          "tags": ["seasonal"], "fields": {"headline": "Spring", "image": "/img/spring.jpg",
                                            "link": "/spring"}}


@dataclass
class Hook:
    base: str
    settings: Any
    redis: Redis

    def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(self.base + PATH, content=body, headers=headers, timeout=60)

    def manifest(self) -> dict[str, Any]:
        raw = self.redis.get(MANIFEST_KEY)
        return json.loads(raw) if raw else {"rev": 0, "placements": {}}

    def objects(self) -> set[str]:
        root = self.settings.origin_dir / "content"
        return {str(p.relative_to(root)) for p in root.rglob("*.json")}


@pytest.fixture
def hook(settings, serve, serve_app, redis: Redis, content: Path, publish_content) -> Hook:
    port = free_port()
    settings = dataclasses.replace(
        settings, cdn_base=f"http://127.0.0.1:{port}", content_dir=content,
        hook_secret=EDGEPICK_SECRET, contentful_secret=CONTENTFUL_SECRET,
        sanity_secret=SANITY_SECRET, strapi_secret=STRAPI_SECRET, hook_max_body_bytes=20_000)
    serve(settings, port)  # serves the origin: pre-warm GETs go through it
    report = publish_content(settings, content)  # the example catalog, so hero has a default
    assert report.ok, report.failed
    return Hook(serve_app(create_hook_app(settings)), settings, redis)


# --- signing, from the documented algorithms ---------------------------------------------

def edgepick_headers(body: bytes, secret: str = EDGEPICK_SECRET,
                     timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Edgepick-Timestamp": ts, "X-Edgepick-Signature": f"sha256={mac}",
            "Content-Type": "application/json"}


def contentful_headers(body: bytes, topic: str, secret: str = CONTENTFUL_SECRET,
                       millis: int | None = None, path: str = PATH) -> dict[str, str]:
    ms = str(int(time.time() * 1000) if millis is None else millis)
    signed = {"content-type": "application/vnd.contentful.management.v1+json",
              "x-contentful-topic": topic, "x-contentful-timestamp": ms}
    names = sorted([*signed, "x-contentful-signed-headers"])
    signed["x-contentful-signed-headers"] = ",".join(names)
    canonical = "\n".join(["POST", path, ";".join(f"{n}:{signed[n]}" for n in names),
                           body.decode()])
    signature = hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    return {**signed, "x-contentful-signature": signature}


def sanity_headers(body: bytes, operation: str = "create", secret: str = SANITY_SECRET,
                   millis: int | None = None) -> dict[str, str]:
    ms = str(int(time.time() * 1000) if millis is None else millis)
    digest = hmac.new(secret.encode(), f"{ms}.".encode() + body, hashlib.sha256).digest()
    v1 = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    return {"sanity-webhook-signature": f"t={ms},v1={v1}", "sanity-operation": operation,
            "content-type": "application/json"}


def strapi(event: str, entry: dict[str, Any], created: float | None = None,
           secret: str = STRAPI_SECRET) -> tuple[bytes, dict[str, str]]:
    when = time.time() if created is None else created
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + ".123Z"
    body = json.dumps({"event": event, "createdAt": stamp, "model": "variant",
                       "uid": "api::variant.variant", "entry": entry}).encode()
    return body, {"X-Strapi-Event": event, "Authorization": f"Bearer {secret}",
                  "Content-Type": "application/json"}


def edgepick_body(publish: list[dict[str, Any]] | None = None,
                  unpublish: list[dict[str, Any]] | None = None) -> bytes:
    body: dict[str, Any] = {}
    if publish is not None:
        body["publish"] = publish
    if unpublish is not None:
        body["unpublish"] = unpublish
    return json.dumps(body).encode()


# --- edgepick's own scheme ------------------------------------------------------------------

def test_signed_request_publishes_then_unpublishes(hook: Hook) -> None:
    body = edgepick_body([{"placement": "hero", "variant": SPRING}])
    answer = hook.post(body, edgepick_headers(body))
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["uploaded"] == ["hero/spring-sale"] and result["failed"] == []
    assert result["manifest"] == {"rev": 2, "changed": True, "written": True, "source": "redis"}
    url = parse_bytes(hook.redis.get(MANIFEST_KEY)).placements["hero"].urls["spring-sale"]
    assert httpx.get(url).json()["headline"] == "Spring"

    body = edgepick_body(unpublish=[{"placement": "hero", "variant": "spring-sale",
                                     "replace_default": None}])
    answer = hook.post(body, edgepick_headers(body))
    assert answer.status_code == 200, answer.text
    assert answer.json()["unpublished"] == ["hero/spring-sale"]
    assert "spring-sale" not in hook.manifest()["placements"]["hero"]["variants"]
    kept = json.loads((hook.settings.origin_dir / "manifest" / "current.json").read_bytes())
    assert kept["rev"] == 3  # the durable copy follows the hook's changes too


def refused(hook: Hook, answer: httpx.Response, status: int, error: str,
            detail: str, rev: int = 1) -> None:
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == error
    assert detail in answer.json()["detail"]
    assert hook.manifest()["rev"] == rev  # nothing published
    assert not any("spring-sale" in key for key in hook.objects())


def test_changed_signature_is_refused(hook: Hook) -> None:
    body = edgepick_body([{"placement": "hero", "variant": SPRING}])
    headers = edgepick_headers(body)
    tampered = body.replace(b"Spring sale", b"Spring SALE")
    refused(hook, hook.post(tampered, headers), 401, "bad_signature", "X-Edgepick-Signature")


def test_wrong_secret_is_refused(hook: Hook) -> None:
    body = edgepick_body([{"placement": "hero", "variant": SPRING}])
    refused(hook, hook.post(body, edgepick_headers(body, secret="another-secret-0123456789")),
            401, "bad_signature", "does not match")


# The tolerance is 300 s. A future stamp gets closer while the request travels (on a loaded
# machine +301 arrived as +300 and was accepted), so it is tested 30 s beyond it.
@pytest.mark.parametrize("offset", [-301, 330])
def test_stale_or_future_timestamp_is_refused(hook: Hook, offset: int) -> None:
    body = edgepick_body([{"placement": "hero", "variant": SPRING}])
    headers = edgepick_headers(body, timestamp=int(time.time()) + offset)
    refused(hook, hook.post(body, headers), 401, "stale_timestamp", "X-Edgepick-Timestamp")


@pytest.mark.parametrize("dropped,error,named", [
    ("X-Edgepick-Timestamp", "missing_header", "X-Edgepick-Timestamp is missing"),
    ("X-Edgepick-Signature", "missing_header", "no signature header"),
])
def test_missing_header_is_refused(hook: Hook, dropped: str, error: str, named: str) -> None:
    body = edgepick_body([{"placement": "hero", "variant": SPRING}])
    headers = edgepick_headers(body)
    del headers[dropped]
    refused(hook, hook.post(body, headers), 401, error, named)


def test_replay_is_refused(hook: Hook) -> None:
    body = edgepick_body([{"placement": "hero", "variant": SPRING}])
    headers = edgepick_headers(body)
    assert hook.post(body, headers).status_code == 200
    answer = hook.post(body, headers)
    assert answer.status_code == 401 and answer.json()["error"] == "replayed"
    assert hook.manifest()["rev"] == 2


def test_oversized_body_is_refused(hook: Hook) -> None:
    big = {**SPRING, "fields": {**SPRING["fields"], "padding": "x" * 30_000}}
    body = edgepick_body([{"placement": "hero", "variant": big}])
    refused(hook, hook.post(body, edgepick_headers(body)), 413, "body_too_large", "20000 bytes")

    def chunks():  # no Content-Length: counted while it streams
        yield body[:10_000]
        yield body[10_000:]

    answer = httpx.post(hook.base + PATH, content=chunks(), headers=edgepick_headers(body))
    refused(hook, answer, 413, "body_too_large", "20000 bytes")


def test_bad_variant_is_named_and_its_neighbours_publish(hook: Hook) -> None:
    body = edgepick_body([
        {"placement": "hero", "variant": SPRING},
        {"placement": "hero", "variant": {**SPRING, "id": "Evil-Variant"}},
        {"placement": "hero", "variant": {**SPRING, "id": "x/../../events/evil"}},
        {"placement": "Hero!", "variant": {**SPRING, "id": "other"}},
        {"placement": "cta", "variant": {"id": "no-label", "title": "T", "category": "c"}},
        {"placement": "nowhere", "variant": {**SPRING, "id": "lost", "default": True}},
    ])
    answer = hook.post(body, edgepick_headers(body))
    assert answer.status_code == 207, answer.text
    result = answer.json()
    assert result["uploaded"] == ["hero/spring-sale"]
    failed = "\n".join(result["failed"])
    assert len(result["failed"]) == 5, failed
    assert "publish[1] (hero/Evil-Variant): field 'id' variant id 'Evil-Variant' is invalid" \
        in failed
    assert "publish[2] (hero/x/../../events/evil): field 'id'" in failed
    assert "publish[3]: placement id 'Hero!' is invalid" in failed
    assert "cta/_template.json.j2:2: rendering publish[4] failed" in failed
    assert "publish[5]: nowhere: placement has no _template.json.j2" in failed
    assert str(hook.settings.content_dir) not in failed  # no server paths in answers
    assert set(hook.manifest()["placements"]["hero"]["variants"]) >= {"spring-sale"}
    assert not any("evil" in key.lower() or "lost" in key for key in hook.objects())


def test_text_that_is_not_unicode_is_named_and_its_neighbours_publish(hook: Hook) -> None:
    # A lone surrogate ("\\ud800" in the JSON) once made the answer a 500 (or the template
    # look hung and refuse every other variant of the placement, or, as a key of `fields`,
    # crash the publish).
    body = edgepick_body([
        {"placement": "hero", "variant": {**SPRING, "id": "a\udfffb"}},
        {"placement": "hero", "variant": {**SPRING, "id": "odd-fields",
                                          "fields": {**SPRING["fields"], "x": [{"\ud800": 1}]}}},
        {"placement": "hero", "variant": SPRING},
    ])
    answer = hook.post(body, edgepick_headers(body))
    assert answer.status_code == 207, answer.text
    result = answer.json()
    assert result["uploaded"] == ["hero/spring-sale"]
    assert result["failed"][0].startswith("publish[0] (hero/a\\udfffb): field 'id'")
    assert result["failed"][1] == "publish[1] (hero/odd-fields): field 'fields' holds text " \
                                  "that is not Unicode (a lone surrogate)"


def test_default_cannot_be_unpublished_without_replacement(hook: Hook) -> None:
    body = edgepick_body(unpublish=[{"placement": "hero", "variant": "evergreen"}])
    answer = hook.post(body, edgepick_headers(body))
    assert answer.status_code == 422
    assert "unpublish[0]: 'evergreen' is the default of 'hero'" in answer.json()["failed"][0]
    body = edgepick_body(unpublish=[{"placement": "hero", "variant": "evergreen",
                                     "replace_default": "winter-camping"}])
    answer = hook.post(body, edgepick_headers(body))
    assert answer.status_code == 200
    assert hook.manifest()["placements"]["hero"]["default"] == "winter-camping"


def test_malformed_body_is_a_400(hook: Hook) -> None:
    for body in (b"{not json", b'{"publish": {}}', b'{"delete": []}', b"[" * 5000 + b"]" * 5000):
        answer = hook.post(body, edgepick_headers(body))
        assert answer.status_code in (400, 413), answer.text
        assert answer.json()["error"] in ("invalid_payload", "body_too_large")


def test_two_concurrent_publishes_of_one_placement_get_one_409(hook: Hook) -> None:
    # A template slow enough (a CPU loop) that the first publish still holds its lock.
    template = hook.settings.content_dir / "hero" / "_template.json.j2"
    slow = "{% for i in range(100000) %}{% for j in range(15) %}{% endfor %}{% endfor %}"
    template.write_text(slow + template.read_text())
    answers: list[httpx.Response] = []

    def send(variant_id: str) -> None:
        body = edgepick_body([{"placement": "hero", "variant": {**SPRING, "id": variant_id}}])
        answers.append(hook.post(body, edgepick_headers(body)))

    first = threading.Thread(target=send, args=("first",))
    first.start()
    wait_until(lambda: hook.redis.exists("{ep:publish}:lock:hero"), 10, "the first lock")
    send("second")
    first.join(30)
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 409], [a.text for a in answers]
    busy = next(a for a in answers if a.status_code == 409)
    assert busy.json()["error"] == "publish_in_progress" and "'hero'" in busy.json()["detail"]
    assert 1 <= int(busy.headers["Retry-After"]) <= 10
    variants = hook.manifest()["placements"]["hero"]["variants"]
    assert "first" in variants and "second" not in variants
    assert not hook.redis.exists("{ep:publish}:lock:hero")  # released


def test_a_refused_busy_request_may_be_retried(hook: Hook) -> None:
    hook.redis.set("{ep:publish}:lock:hero", "someone-else", px=3000)
    body = edgepick_body([{"placement": "hero", "variant": SPRING}])
    headers = edgepick_headers(body)
    assert hook.post(body, headers).status_code == 409
    hook.redis.delete("{ep:publish}:lock:hero")
    assert hook.post(body, headers).status_code == 200  # same signature: not a replay


# --- Contentful -----------------------------------------------------------------------------

def contentful_entry(entry_id: str = "5KsDBWseXY6QegucYAoacS", **overrides: Any) -> bytes:
    fields = {"placement": "hero", "slug": "spring-sale", "title": "Spring sale",
              "category": "promo", "tags": ["seasonal"], "headline": "Spring",
              "image": "/img/spring.jpg", "link": "/spring", **overrides}
    return json.dumps({
        "sys": {"id": entry_id, "type": "Entry", "revision": 3,
                "contentType": {"sys": {"type": "Link", "linkType": "ContentType",
                                        "id": "variant"}}},
        "fields": {name: {"en-US": value, "de-DE": f"de:{value}"}
                   for name, value in fields.items()}}).encode()


def test_contentful_publish_and_unpublish(hook: Hook) -> None:
    body = contentful_entry()
    answer = hook.post(body, contentful_headers(body, "ContentManagement.Entry.publish"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["uploaded"] == ["hero/spring-sale"]
    entry = hook.manifest()["placements"]["hero"]["variants"]["spring-sale"]
    assert entry["title"] == "Spring sale" and entry["tags"] == ["seasonal"]  # en-US picked
    assert entry["source"] == "contentful:5KsDBWseXY6QegucYAoacS"

    # Contentful's unpublish payload carries only sys: found by the entry id.
    deleted = json.dumps({"sys": {"id": "5KsDBWseXY6QegucYAoacS", "type": "DeletedEntry",
                                  "contentType": {"sys": {"id": "variant"}}}}).encode()
    answer = hook.post(deleted, contentful_headers(deleted, "ContentManagement.Entry.unpublish"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["unpublished"] == ["hero/spring-sale"]


@pytest.mark.parametrize("case", ["tampered", "stale", "missing", "wrong-secret", "replay"])
def test_contentful_refusals(hook: Hook, case: str) -> None:
    body = contentful_entry()
    topic = "ContentManagement.Entry.publish"
    headers = contentful_headers(body, topic)
    expected = ("bad_signature", "x-contentful-signature")
    if case == "tampered":
        body = contentful_entry(title="Changed")
    elif case == "stale":
        headers = contentful_headers(body, topic, millis=int((time.time() - 400) * 1000))
        expected = ("stale_timestamp", "x-contentful-timestamp")
    elif case == "missing":
        del headers["x-contentful-timestamp"]
        expected = ("missing_header", "x-contentful-timestamp is missing")
    elif case == "wrong-secret":
        headers = contentful_headers(body, topic, secret="w" * 64)
    else:
        assert hook.post(body, headers).status_code == 200
        answer = hook.post(body, headers)
        assert answer.status_code == 401 and answer.json()["error"] == "replayed"
        return
    refused(hook, hook.post(body, headers), 401, *expected)


def test_contentful_entries_of_other_types_and_topics_are_ignored(hook: Hook) -> None:
    page = json.dumps({"sys": {"id": "abc", "type": "Entry",
                               "contentType": {"sys": {"id": "page"}}}, "fields": {}}).encode()
    answer = hook.post(page, contentful_headers(page, "ContentManagement.Entry.publish"))
    assert answer.status_code == 200 and "'page' is not a variant type" in answer.json()["ignored"]
    body = contentful_entry()
    answer = hook.post(body, contentful_headers(body, "ContentManagement.Entry.save"))
    assert answer.status_code == 200 and "publishes nothing" in answer.json()["ignored"]
    assert hook.manifest()["rev"] == 1


# --- Sanity ---------------------------------------------------------------------------------

def sanity_document(**overrides: Any) -> bytes:
    return json.dumps({"_id": "0f6a1c2e-spring", "_type": "variant", "_rev": "x1",
                       "placement": "hero", "slug": {"_type": "slug", "current": "spring-sale"},
                       "title": "Spring sale", "category": "promo", "headline": "Spring",
                       "image": "/img/spring.jpg", "link": "/spring", **overrides}).encode()


def test_sanity_publish_and_delete(hook: Hook) -> None:
    body = sanity_document()
    answer = hook.post(body, sanity_headers(body))
    assert answer.status_code == 200, answer.text
    assert answer.json()["uploaded"] == ["hero/spring-sale"]
    fields_url = parse_bytes(hook.redis.get(MANIFEST_KEY)).placements["hero"].urls["spring-sale"]
    assert httpx.get(fields_url).json()["link"] == "/spring"
    answer = hook.post(body, sanity_headers(body, "delete"))
    assert answer.status_code == 200 and answer.json()["unpublished"] == ["hero/spring-sale"]


@pytest.mark.parametrize("case", ["tampered", "stale", "missing", "wrong-secret", "replay"])
def test_sanity_refusals(hook: Hook, case: str) -> None:
    body = sanity_document()
    headers = sanity_headers(body)
    expected = ("bad_signature", "sanity-webhook-signature")
    if case == "tampered":
        body = sanity_document(title="Changed")
    elif case == "stale":
        headers = sanity_headers(body, millis=int((time.time() - 400) * 1000))
        expected = ("stale_timestamp", "timestamp")
    elif case == "missing":
        headers = {"content-type": "application/json"}
        expected = ("missing_header", "no signature header")
    elif case == "wrong-secret":
        headers = sanity_headers(body, secret="wrong-secret-0123456789")
    else:
        assert hook.post(body, headers).status_code == 200
        answer = hook.post(body, headers)
        assert answer.status_code == 401 and answer.json()["error"] == "replayed"
        return
    refused(hook, hook.post(body, headers), 401, *expected)


# --- Strapi ---------------------------------------------------------------------------------

STRAPI_ENTRY = {"id": 7, "documentId": "k2p9spring", "placement": "hero", "slug": "spring-sale",
                "title": "Spring sale", "category": "promo", "headline": "Spring",
                "image": "/img/spring.jpg", "link": "/spring",
                "createdAt": "2026-01-01T00:00:00.000Z", "publishedAt": "2026-01-02T00:00:00Z"}


def test_strapi_publish_unpublish_and_drafts(hook: Hook) -> None:
    body, headers = strapi("entry.publish", STRAPI_ENTRY)
    answer = hook.post(body, headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["uploaded"] == ["hero/spring-sale"]
    body, headers = strapi("entry.update", {**STRAPI_ENTRY, "title": "Draft", "publishedAt": None})
    assert "draft" in hook.post(body, headers).json()["ignored"]
    body, headers = strapi("entry.unpublish", STRAPI_ENTRY)
    answer = hook.post(body, headers)
    assert answer.status_code == 200 and answer.json()["unpublished"] == ["hero/spring-sale"]


@pytest.mark.parametrize("case", ["stale", "missing", "wrong-secret", "replay"])
def test_strapi_refusals(hook: Hook, case: str) -> None:
    body, headers = strapi("entry.publish", STRAPI_ENTRY)
    if case == "stale":
        body, headers = strapi("entry.publish", STRAPI_ENTRY, created=time.time() - 400)
        refused(hook, hook.post(body, headers), 401, "stale_timestamp", "createdAt")
    elif case == "missing":
        del headers["Authorization"]
        refused(hook, hook.post(body, headers), 401, "missing_header", "Authorization")
    elif case == "wrong-secret":
        body, headers = strapi("entry.publish", STRAPI_ENTRY, secret="nope-0123456789abcdef")
        refused(hook, hook.post(body, headers), 401, "bad_signature", "Bearer")
    else:
        assert hook.post(body, headers).status_code == 200
        answer = hook.post(body, headers)
        assert answer.status_code == 401 and answer.json()["error"] == "replayed"


@pytest.mark.parametrize("body", [b"[" * 5000 + b"]" * 5000, b'{"createdAt": ' + b"[" * 5000,
                                  b"\xff", b"[]", b'{"createdAt": "2026-13-01"}'])
def test_strapi_body_without_a_readable_createdAt_is_refused(hook: Hook, body: bytes) -> None:
    # Read before any other check (it is Strapi's freshness): nesting once made it a 500.
    headers = {"X-Strapi-Event": "entry.publish", "Authorization": f"Bearer {STRAPI_SECRET}"}
    refused(hook, hook.post(body, headers), 401, "bad_timestamp", "createdAt")


def test_a_scheme_without_a_secret_is_refused(settings, serve_app, redis: Redis,
                                              content: Path) -> None:
    settings = dataclasses.replace(settings, content_dir=content, hook_secret=EDGEPICK_SECRET)
    base = serve_app(create_hook_app(settings))
    body = sanity_document()
    answer = httpx.post(base + PATH, content=body, headers=sanity_headers(body))
    assert answer.status_code == 401
    assert answer.json() == {"error": "scheme_not_configured",
                             "detail": "the sanity scheme has no secret configured on this "
                                       "server"}


def test_cms_mapping_file_renames_fields(settings, serve, serve_app, redis: Redis,
                                         content: Path, publish_content,
                                         tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("strapi:\n  types: [promo]\n  fields: {id: handle, placement: slot}\n"
                       "  extra: [headline, image, link]\n")
    port = free_port()
    settings = dataclasses.replace(settings, cdn_base=f"http://127.0.0.1:{port}",
                                   content_dir=content, strapi_secret=STRAPI_SECRET,
                                   cms_mapping=mapping)
    serve(settings, port)
    publish_content(settings, content)
    base = serve_app(create_hook_app(settings))
    entry = {"id": 9, "slot": "hero", "handle": "renamed", "title": "T", "category": "promo",
             "headline": "H", "image": "/i.jpg", "link": "/l", "ignored": "not copied"}
    body = json.dumps({"event": "entry.publish", "model": "promo", "entry": entry,
                       "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}).encode()
    answer = httpx.post(base + PATH, content=body, headers={
        "X-Strapi-Event": "entry.publish", "Authorization": f"Bearer {STRAPI_SECRET}"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["uploaded"] == ["hero/renamed"]

