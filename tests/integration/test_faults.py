"""Redis stopped, frozen and restarted empty under load, with serve, api and worker running
as their own processes (benchmarks/faults.py with short phases; its full-length run is the
bar in docs/benchmarks.md): serving answers only 302, the API answers 503 and loses nothing
it accepted, and the worker decides every session start it acknowledged, without restart."""

from __future__ import annotations

from benchmarks.faults import Plan, bars, run
from tests.conftest import need_binary


def test_serve_api_and_worker_ride_out_redis_stopped_frozen_and_emptied() -> None:
    need_binary("redis-server")
    result = run(Plan(fault=3, recover=3, serve_rate=40, event_rate=10))
    assert bars(result) == dict.fromkeys(bars(result), 0), result
    assert result["serving"]["302"] > 300
    assert result["events"].get("503", 0) > 0  # the faults did reach the API
    assert result["sources"].get("decision", 0) > 0  # and decisions were served between them
    assert result["accepted"] > 50
