"""Publish → pin → GET /p/hero through a real nginx edge cache, on a real Redis."""

from __future__ import annotations

import dataclasses

import httpx
from redis import Redis

from content_variants.manifest_writer import unpublish
from decision_worker.online.pinning import pin
from tests.conftest import SECRET, free_port, wait_until
from tests.raw_http import raw_request


def test_user_is_redirected_through_the_cdn_to_a_prewarmed_variant(
        settings, serve, nginx, redis: Redis, publish_content) -> None:
    app_port = free_port()
    cdn = nginx(settings.origin_dir, f"127.0.0.1:{app_port}")
    settings = dataclasses.replace(settings, cdn_base=cdn.base, serve_origin=False)
    app = serve(settings, app_port)

    report = publish_content(settings)
    assert report.ok, report.failed
    wait_until(lambda: httpx.get(f"{app}/healthz").json()["manifest_rev"] == report.rev)
    pin(redis, SECRET.encode(), "alice", "hero", ["trail-running", "winter-camping"], 600)

    with httpx.Client(base_url=cdn.base, follow_redirects=False) as browser:
        answer = browser.get("/p/hero", headers={"cookie": "ep_uid=alice"})
        assert answer.status_code == 302
        assert answer.headers["x-edgepick-source"] == "decision"
        assert answer.headers["cache-control"] == "private, no-store"
        location = answer.headers["location"]
        assert location.startswith(f"{cdn.base}/content/hero/variant-trail-running.")

        # The first fetch by any client after publish is already served from the edge cache.
        variant = browser.get(location)
        assert variant.status_code == 200
        assert variant.headers["x-cache-status"] == "HIT"
        assert variant.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert variant.headers["content-type"].startswith("application/json")
        assert variant.json()["variant"] == "trail-running"
        assert variant.json()["headline"] == "Faster on rough ground"

        # Everyone else gets the placement default, also a cache hit.
        default = browser.get("/p/hero", headers={"cookie": "ep_uid=bob"})
        assert default.headers["x-edgepick-source"] == "no-decision"
        fetched = browser.get(default.headers["location"])
        assert fetched.json()["variant"] == "evergreen"
        assert fetched.headers["x-cache-status"] == "HIT"

        # Unpublishing the first choice moves alice to her next ranked variant.
        doc = unpublish(redis, "hero", "trail-running")
        wait_until(lambda: httpx.get(f"{app}/healthz").json()["manifest_rev"] == doc["rev"])
        next_ranked = browser.get("/p/hero", headers={"cookie": "ep_uid=alice"})
        assert "variant-winter-camping." in next_ranked.headers["location"]

        assert browser.get("/p/sidebar").status_code == 404
        assert browser.get("/p/NOT_VALID").status_code == 400


def test_cdn_never_caches_a_missing_object(settings, nginx) -> None:
    cdn = nginx(settings.origin_dir, f"127.0.0.1:{free_port()}")
    path = "/content/hero/variant-late.0123456789abcdef.json"
    assert httpx.get(cdn.base + path).status_code == 404
    target = settings.origin_dir / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text('{"variant": "late"}')
    first = httpx.get(cdn.base + path)
    assert first.status_code == 200 and first.headers["x-cache-status"] == "MISS"
    assert httpx.get(cdn.base + path).headers["x-cache-status"] == "HIT"


def test_cdn_and_origin_serve_no_dotfile(settings, nginx) -> None:
    cdn = nginx(settings.origin_dir, f"127.0.0.1:{free_port()}")
    hero = settings.origin_dir / "content" / "hero"
    hero.mkdir(parents=True)
    (hero / ".upload-abc123").write_text('{"half": "uploaded"}')  # a publisher's temp file
    (hero / "variant-a.0123456789abcdef.json").write_text('{"variant": "a"}')
    for base in (cdn.base, f"http://127.0.0.1:{cdn.origin_port}"):
        for path in ("/content/hero/.upload-abc123", "/content/hero/%2Eupload-abc123",
                     "/content/hero/../hero/.upload-abc123", "/content/.git/config"):
            status, _, body = raw_request(
                base, f"GET {path} HTTP/1.1\r\nHost: cdn.test\r\n\r\n".encode())
            assert status == 404 and b"uploaded" not in body, (base, path)
        assert httpx.get(f"{base}/content/hero/variant-a.0123456789abcdef.json").status_code == 200
