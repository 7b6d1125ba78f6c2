"""`edgepick worker` as real processes: killed with SIGKILL mid-batch, stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from redis import Redis

from decision_worker.keys import CONSUMER_GROUP, DEAD_LETTER_STREAM, EVENTS_STREAM
from edge_functions.keys import decision_key, user_tag
from tests.conftest import Settings

from ..conftest import track

USERS = 20_000


@pytest.fixture
def start_worker(worker_settings: Settings) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []

    def start(**env: str) -> subprocess.Popen[str]:
        s = worker_settings
        process = subprocess.Popen(
            [sys.executable, "-m", "edgepick", "worker"],
            env={**os.environ, "EDGEPICK_REDIS_URL": str(s.redis_url),
                 "EDGEPICK_KEY_SECRET": s.key_secret, "EDGEPICK_ORIGIN": s.origin,
                 "EDGEPICK_DATA_DIR": str(s.data_dir), "EDGEPICK_WORKER_BATCH": "100",
                 "EDGEPICK_CLAIM_IDLE_S": "1", **env},
            stderr=subprocess.PIPE, text=True)
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def sessions(ingest, count: int) -> list[str]:
    users = [f"user-{i}" for i in range(count)]
    for start in range(0, count, 2000):
        ingest([track(u, "Session Started", f"s-{u}") for u in users[start:start + 2000]])
    return users


def decided(redis: Redis, settings: Settings, users: list[str]) -> int:
    secret = settings.key_secret_bytes
    keys = [decision_key(user_tag(secret, u), "hero") for u in users]
    return sum(v is not None for i in range(0, len(keys), 1000)
               for v in redis.mget(keys[i:i + 1000]))


def pending_of(redis: Redis, consumer_pid: int) -> int:
    summary = redis.xpending(EVENTS_STREAM, CONSUMER_GROUP)
    return sum(c["pending"] for c in summary["consumers"]
               if c["name"].decode().endswith(f"-{consumer_pid}"))


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_sigkill_mid_batch_loses_nothing(ingest, redis: Redis, worker_settings,
                                         start_worker) -> None:
    users = sessions(ingest, USERS)
    # Large batches make "mid-batch" most of a worker's time; a kill that still lands in
    # the gap between two batches is retried with the next worker, so the test always
    # covers a worker that died holding entries.
    killed_holding_entries = False
    for _ in range(5):
        victim = start_worker(EDGEPICK_WORKER_BATCH="1000")
        done_before = decided(redis, worker_settings, users)
        wait_for(lambda before=done_before: decided(redis, worker_settings, users) > before,
                 30, "the worker to decide")
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=10)
        if pending_of(redis, victim.pid) > 0:
            killed_holding_entries = True
            break
    assert killed_holding_entries, "no kill landed mid-batch in 5 tries"
    assert decided(redis, worker_settings, users) < USERS
    second = start_worker()
    wait_for(lambda: redis.xpending(EVENTS_STREAM, CONSUMER_GROUP)["pending"] == 0
             and redis.xinfo_groups(EVENTS_STREAM)[0]["last-delivered-id"]
             == redis.xinfo_stream(EVENTS_STREAM)["last-generated-id"], 60, "the backlog to drain")
    assert decided(redis, worker_settings, users) == USERS  # every user, none missing
    assert redis.xlen(DEAD_LETTER_STREAM) == 0
    second.send_signal(signal.SIGTERM)
    _, stderr = second.communicate(timeout=10)
    assert second.returncode == 0, stderr


def test_sigterm_finishes_the_batch_and_exits_cleanly(ingest, redis: Redis, worker_settings,
                                                      start_worker) -> None:
    users = sessions(ingest, 6000)
    worker = start_worker()
    wait_for(lambda: decided(redis, worker_settings, users[:200]) > 0, 30, "first decisions")
    worker.send_signal(signal.SIGTERM)
    _, stderr = worker.communicate(timeout=10)
    assert worker.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert pending_of(redis, worker.pid) == 0  # its last batch was written and acknowledged
    assert 0 < decided(redis, worker_settings, users) < 6000
