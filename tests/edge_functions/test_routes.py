"""The serving contract of GET /p/{placement} and GET /p?placements=…, on a real Redis."""

from __future__ import annotations

import dataclasses
import json
import time
from urllib.parse import quote

import httpx
import pytest
from redis import Redis

from decision_worker.online.pinning import pin
from edge_functions.app import create_app
from edge_functions.decision_record import DecisionRecord, encode
from edge_functions.http_protocol import http_protocol
from edge_functions.keys import decision_key, user_tag
from tests.conftest import SECRET, Settings, free_port, wait_until
from tests.raw_http import raw_request


def get(base: str, path: str, **kwargs: object) -> httpx.Response:
    return httpx.get(base + path, follow_redirects=False, **kwargs)  # type: ignore[arg-type]


def variant_of(response: httpx.Response) -> str:
    """Follow the redirect like a browser and read which variant the JSON is."""
    assert response.status_code == 302, response.text
    return str(httpx.get(response.headers["location"]).json()["variant"])


def test_pinned_user_is_redirected_to_the_pinned_variant(served_example, redis: Redis) -> None:
    settings, base = served_example
    pin(redis, SECRET.encode(), "alice", "hero", ["trail-running"], 60)
    response = get(base, "/p/hero", cookies={"ep_uid": "alice"})
    assert response.status_code == 302
    assert response.headers["x-edgepick-source"] == "decision"
    assert response.headers["cache-control"] == "private, no-store"
    location = response.headers["location"]
    assert location.startswith(f"{settings.cdn_base}/content/hero/variant-trail-running.")
    assert location.endswith(".json")
    variant = httpx.get(location)
    assert variant.json()["title"] == "Trail running season"
    assert variant.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_user_id_comes_from_cookie_then_header_then_query(served_example, redis: Redis) -> None:
    _, base = served_example
    pin(redis, SECRET.encode(), "by-cookie", "hero", ["trail-running"], 60)
    pin(redis, SECRET.encode(), "by-header", "hero", ["winter-camping"], 60)
    pin(redis, SECRET.encode(), "by-query", "hero", ["climbing-es"], 60)
    both = get(base, "/p/hero?uid=by-query", cookies={"ep_uid": "by-cookie"},
               headers={"x-user-id": "by-header"})
    assert variant_of(both) == "trail-running"
    assert variant_of(get(base, "/p/hero?uid=by-query", headers={"x-user-id": "by-header"})) \
        == "winter-camping"
    assert variant_of(get(base, "/p/hero?uid=by-query")) == "climbing-es"


def test_no_decision_and_no_user_get_the_default(served_example) -> None:
    _, base = served_example
    unknown = get(base, "/p/hero", cookies={"ep_uid": "nobody-decided-this"})
    assert variant_of(unknown) == "evergreen"
    assert unknown.headers["x-edgepick-source"] == "no-decision"
    anonymous = get(base, "/p/hero")
    assert variant_of(anonymous) == "evergreen"
    assert anonymous.headers["x-edgepick-source"] == "no-user"


def test_opted_out_user_gets_the_default(served_example, redis: Redis) -> None:
    _, base = served_example
    pin(redis, SECRET.encode(), "alice", "hero", ["trail-running"], 60)
    for extra in ({"headers": {"sec-gpc": "1"}},
                  {"cookies": {"ep_uid": "alice", "ep_optout": "1"}}):
        response = get(base, "/p/hero?uid=alice", **extra)
        assert variant_of(response) == "evergreen"
        assert response.headers["x-edgepick-source"] == "opted-out"


def test_holdout_arm_gets_the_default(served_example, redis: Redis) -> None:
    _, base = served_example
    record = DecisionRecord(("trail-running",), "baseline-1", "holdout", int(time.time()))
    redis.set(decision_key(user_tag(SECRET.encode(), "held"), "hero"), encode(record), ex=60)
    response = get(base, "/p/hero?uid=held")
    assert variant_of(response) == "evergreen"
    assert response.headers["x-edgepick-source"] == "holdout"


def test_unpublished_first_choice_falls_to_the_next_ranked_then_default(
        served_example, redis: Redis) -> None:
    from content_variants.manifest_writer import unpublish

    _, base = served_example
    pin(redis, SECRET.encode(), "alice", "hero", ["trail-running", "winter-camping"], 60)
    pin(redis, SECRET.encode(), "bob", "hero", ["trail-running"], 60)
    doc = unpublish(redis, "hero", "trail-running")
    wait_until(lambda: httpx.get(f"{base}/healthz").json()["manifest_rev"] == doc["rev"])
    assert variant_of(get(base, "/p/hero?uid=alice")) == "winter-camping"
    fallen = get(base, "/p/hero?uid=bob")
    assert variant_of(fallen) == "evergreen"
    assert fallen.headers["x-edgepick-source"] == "not-eligible"


def test_expired_decision_falls_back_to_default(served_example, redis: Redis) -> None:
    _, base = served_example
    pin(redis, SECRET.encode(), "brief", "hero", ["trail-running"], 1)
    assert variant_of(get(base, "/p/hero?uid=brief")) == "trail-running"
    wait_until(lambda: redis.ttl(decision_key(user_tag(SECRET.encode(), "brief"), "hero")) == -2,
               seconds=3)
    assert variant_of(get(base, "/p/hero?uid=brief")) == "evergreen"


def test_corrupt_record_gets_the_default_not_an_error(served_example, redis: Redis) -> None:
    _, base = served_example
    redis.set(decision_key(user_tag(SECRET.encode(), "mangled"), "hero"), b"\xff garbage", ex=60)
    response = get(base, "/p/hero?uid=mangled")
    assert variant_of(response) == "evergreen"
    assert response.headers["x-edgepick-source"] == "corrupt-record"


def test_unknown_placement_is_404_json(served_example) -> None:
    _, base = served_example
    response = get(base, "/p/sidebar?uid=alice")
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_placement"
    assert "sidebar" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/p/Hero", "/p/-hero", "/p/" + "h" * 65, "/p/he%20ro",
                                  "/p/h%C3%A9ro", "/p/hero%2F..%2Fetc"])
def test_malformed_placement_is_400(served_example, path: str) -> None:
    _, base = served_example
    response = get(base, path)
    assert response.status_code == 400, path
    assert response.json()["error"] == "invalid_identifier"


@pytest.mark.parametrize("user", ["x" * 257, "é" * 129, "tab\there", ""])
def test_malformed_user_id_is_400(served_example, user: str) -> None:
    _, base = served_example
    response = get(base, f"/p/hero?uid={quote(user)}")
    assert response.status_code == 400
    assert "user id" in response.json()["detail"]


def test_non_ascii_user_ids_are_served(served_example, redis: Redis) -> None:
    _, base = served_example
    pin(redis, SECRET.encode(), "Zoë-🙂", "hero", ["winter-camping"], 60)
    assert variant_of(get(base, f"/p/hero?uid={quote('Zoë-🙂')}")) == "winter-camping"


@pytest.mark.parametrize("where", [b"Cookie: ep_uid=jos\xc3\xa9\r\n", b"X-User-Id: jos\xc3\xa9\r\n",
                                   b'Cookie: ep_uid="jos\\303\\251"\r\n', b"?uid=jos%C3%A9"])
def test_utf8_user_id_is_keyed_as_the_worker_keys_it_wherever_it_is_sent(
        served_example, redis: Redis, where: bytes) -> None:
    # The worker keys "josé" by its UTF-8 bytes; a browser sends the cookie as those bytes.
    _, base = served_example
    pin(redis, SECRET.encode(), "jos\u00e9", "hero", ["winter-camping"], 60)
    query, header = (where, b"") if where.startswith(b"?") else (b"", where)
    status, headers, _ = raw_request(
        base, b"GET /p/hero" + query + b" HTTP/1.1\r\nHost: edge.test\r\n" + header + b"\r\n")
    assert status == 302, headers
    assert headers["x-edgepick-source"] == "decision"
    assert "/variant-winter-camping." in headers["location"]


@pytest.mark.parametrize("where,named", [
    (b"Cookie: theme=dark; ep_uid=jos\xe9\r\n", "cookie ep_uid is not UTF-8"),
    (b"X-User-Id: jos\xe9\r\n", "user id header is not UTF-8"),
    (b"?uid=jos%E9", "query parameter 'uid' is not UTF-8"),
])
def test_user_id_that_is_not_utf8_is_a_400_naming_where_it_came_from(
        served_example, where: bytes, named: str) -> None:
    # Decoded as latin-1 (or with replacement characters) it would be another user's key.
    _, base = served_example
    query, header = (where, b"") if where.startswith(b"?") else (b"", where)
    response = raw_request(
        base, b"GET /p/hero" + query + b" HTTP/1.1\r\nHost: edge.test\r\n" + header + b"\r\n")
    assert_json_error(response, 400, "invalid_identifier")
    assert named in json.loads(response[2])["detail"]


def test_other_cookies_may_hold_any_bytes(served_example, redis: Redis) -> None:
    _, base = served_example
    pin(redis, SECRET.encode(), "alice", "hero", ["trail-running"], 60)
    status, headers, _ = raw_request(base, b"GET /p/hero HTTP/1.1\r\nHost: edge.test\r\n"
                                           b"Cookie: legacy=caf\xe9; ep_uid=alice\r\n\r\n")
    assert status == 302 and headers["x-edgepick-source"] == "decision"


def test_batch_route_maps_each_placement_in_one_round_trip(served_example, redis: Redis) -> None:
    settings, base = served_example
    pin(redis, SECRET.encode(), "alice", "hero", ["trail-running"], 60)
    pin(redis, SECRET.encode(), "alice", "cta", ["free-shipping"], 60)
    before = mget_calls(redis)
    response = httpx.get(f"{base}/p?placements=hero,cta,email-header&uid=alice")
    assert mget_calls(redis) - before == 1
    assert response.status_code == 200
    urls = response.json()
    assert set(urls) == {"hero", "cta", "email-header"}
    assert httpx.get(urls["hero"]).json()["variant"] == "trail-running"
    assert httpx.get(urls["cta"]).json()["variant"] == "free-shipping"
    assert httpx.get(urls["email-header"]).json()["variant"] == "weekly"
    assert response.headers["x-edgepick-source"] == \
        "hero=decision,cta=decision,email-header=no-decision"


@pytest.mark.parametrize("query,status", [("", 400), ("?placements=", 400),
                                          ("?placements=hero,BAD", 400),
                                          ("?placements=hero,hero", 400),
                                          ("?placements=" + ",".join(f"p{i}" for i in
                                                                     range(33)), 400),
                                          ("?placements=hero,sidebar", 404)])
def test_batch_route_rejects_bad_lists(served_example, query: str, status: int) -> None:
    _, base = served_example
    response = httpx.get(f"{base}/p{query}")
    assert response.status_code == status
    assert "error" in response.json()


def mget_calls(redis: Redis) -> int:
    stats = redis.info("commandstats")
    return int(stats.get("cmdstat_mget", {}).get("calls", 0))


def test_one_redirect_is_one_store_round_trip(served_example, redis: Redis) -> None:
    _, base = served_example
    pin(redis, SECRET.encode(), "alice", "hero", ["trail-running"], 60)
    before = redis.info("commandstats")
    assert variant_of(get(base, "/p/hero?uid=alice")) == "trail-running"
    after = redis.info("commandstats")
    # Besides the lookup, only the manifest poller's GETs of the revision and a connection
    # handshake (when the pool opens a connection) may run meanwhile.
    background = ("cmdstat_get", "cmdstat_info", "cmdstat_hello", "cmdstat_client",
                  "cmdstat_select", "cmdstat_auth")
    changed = {k: after[k]["calls"] - before.get(k, {"calls": 0})["calls"] for k in after
               if k not in background and
               after[k]["calls"] != before.get(k, {"calls": 0})["calls"]}
    assert changed == {"cmdstat_mget": 1}


def test_metrics_count_answers_by_source(served_example) -> None:
    _, base = served_example
    get(base, "/p/hero")
    get(base, "/p/hero?uid=nobody")
    text = httpx.get(f"{base}/metrics").text
    assert 'edgepick_edge_answers_total{source="no-user"} 1.0' in text
    assert 'edgepick_edge_answers_total{source="no-decision"} 1.0' in text
    assert 'edgepick_edge_request_seconds_bucket{le="0.005",route="placement"}' in text
    assert "edgepick_edge_store_round_trips_total 1.0" in text  # only the second one looked up
    assert "edgepick_edge_store_lookups_total 1.0" in text


def test_healthz_reports_the_manifest(served_example) -> None:
    _, base = served_example
    body = httpx.get(f"{base}/healthz").json()
    assert body["manifest_loaded"] is True and body["manifest_rev"] >= 1
    assert body["store_circuit"] == "closed"


def test_local_origin_serves_only_content(served_example) -> None:
    import socket

    _, base = served_example
    assert httpx.get(f"{base}/content/hero/variant-nope.0000.json").status_code == 404
    # Sent as is: a client would normalise the dots away before sending.
    host, port = base.rsplit("//", 1)[1].split(":")
    for path in (b"/content/../../etc/passwd", b"/content/hero/../../../pyproject.toml",
                 b"/content/%2e%2e/%2e%2e/etc/passwd"):
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 404"), (path, answer[:200])
        assert b"root:" not in answer and b"[project]" not in answer


def test_app_without_published_manifest_is_not_ready(settings: Settings, serve, redis,
                                                      publish_content) -> None:
    port = free_port()
    settings = dataclasses.replace(settings, cdn_base=f"http://127.0.0.1:{port}")
    base = serve(settings, port)
    time.sleep(0.2)  # several manifest polls: still nothing published
    health = httpx.get(f"{base}/healthz")
    assert health.status_code == 503
    assert health.json()["manifest_loaded"] is False and health.json()["manifest_rev"] == 0
    assert get(base, "/p/hero").status_code == 404
    assert publish_content(settings).ok
    wait_until(lambda: httpx.get(f"{base}/healthz").status_code == 200,
               what="the app to become ready once a manifest is published")


def test_non_utf8_user_header_is_400_and_the_server_keeps_serving(served_example) -> None:
    _, base = served_example
    response = get(base, "/p/hero", headers={"x-user-id": b"\xff\xfe"})
    assert response.status_code == 400
    assert "not UTF-8" in response.json()["detail"]
    assert get(base, "/p/hero").status_code == 302


def test_only_get_is_allowed_on_placements(served_example) -> None:
    _, base = served_example
    response = httpx.post(f"{base}/p/hero", content=b"x")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    assert response.headers["allow"] == "GET, HEAD"  # RFC 9110: a 405 must list them


def assert_json_error(response: tuple[int, dict[str, str], bytes], status: int,
                      code: str) -> dict[str, str]:
    got, headers, body = response
    assert got == status, body
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "private, no-store"
    assert json.loads(body)["error"] == code
    return headers


@pytest.mark.parametrize("path", ["/healthz/", "/metrics/", "/content", "/content/",
                                  "/nope", "/p/hero/../../healthz/", "//evil.example/"])
def test_no_redirect_reflects_the_host_header(served_example, path: str) -> None:
    _, base = served_example
    request = f"GET {path} HTTP/1.1\r\nHost: evil.example\r\n\r\n".encode()
    status, headers, _ = response = raw_request(base, request)
    assert "location" not in headers, headers
    assert 400 <= status < 500
    if not path.startswith("/p/"):
        assert_json_error(response, 404, "not_found")


@pytest.mark.parametrize("method,path", [("POST", "/p?placements=hero"), ("DELETE", "/healthz"),
                                         ("PUT", "/metrics"), ("POST", "/content/hero/x.json"),
                                         ("OPTIONS", "/p/hero")])
def test_wrong_method_is_a_json_405(served_example, method: str, path: str) -> None:
    _, base = served_example
    request = f"{method} {path} HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 0\r\n\r\n"
    headers = assert_json_error(raw_request(base, request.encode()), 405, "method_not_allowed")
    assert "GET" in headers["allow"]


def test_unexpected_failure_is_a_json_500(settings: Settings, serve_app, redis) -> None:
    class Broken:
        @property
        def current(self) -> object:
            raise RuntimeError("a bug")

    app = create_app(settings)
    base = serve_app(app, None, http_protocol(settings))
    app.state.edge.manifest = Broken()
    request = b"GET /p?placements=hero HTTP/1.1\r\nHost: edge.test\r\n\r\n"
    assert_json_error(raw_request(base, request), 500, "internal_error")


@pytest.mark.parametrize("path", ["/content/hero/.upload-abc123", "/content/hero/%2Eupload-abc123",
                                  "/content/hero/../hero/.upload-abc123",
                                  "/content/hero/./.upload-abc123",
                                  "/content/.hidden/variant.json", "/content/hero"])
def test_local_origin_serves_no_dotfile_and_no_directory(served_example, path: str) -> None:
    settings, base = served_example
    content = settings.origin_dir / "content"
    (content / "hero" / ".upload-abc123").write_text('{"half": "uploaded"}')
    (content / ".hidden").mkdir()
    (content / ".hidden" / "variant.json").write_text('{"half": "uploaded"}')
    response = raw_request(base, f"GET {path} HTTP/1.1\r\nHost: edge.test\r\n\r\n".encode())
    assert b"uploaded" not in response[2]
    assert_json_error(response, 404, "not_found")


def test_local_origin_before_the_first_publish_is_404_not_500(settings: Settings, serve,
                                                              redis) -> None:
    base = serve(settings)  # the origin folder does not exist yet
    response = raw_request(base, b"GET /content/hero/variant-a.0123456789abcdef.json HTTP/1.1"
                                 b"\r\nHost: edge.test\r\n\r\n")
    assert_json_error(response, 404, "not_found")


@pytest.mark.parametrize("byte_range", ["bytes=abc", "bytes=5-1", "bytes=0-0,2-2"])
def test_local_origin_answers_range_requests_with_the_whole_object(served_example,
                                                                   byte_range: str) -> None:
    _, base = served_example
    location = get(base, "/p/hero").headers["location"]
    answer = httpx.get(location, headers={"range": byte_range})
    assert answer.status_code == 200
    assert answer.json()["variant"] == "evergreen"
