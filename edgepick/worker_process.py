"""The `edgepick worker` process: a Redis client, signal handlers, metrics, the loop."""

from __future__ import annotations

import asyncio
import signal

from decision_worker.online.worker import Worker
from decision_worker.settings import WorkerSettings
from edge_functions.redis_client import connect_async


def run_worker(settings: WorkerSettings, burst: bool, metrics_port: int | None) -> None:
    asyncio.run(_main(settings, burst, metrics_port))


async def _main(settings: WorkerSettings, burst: bool, metrics_port: int | None) -> None:
    assert settings.redis_url is not None
    redis = connect_async(settings.redis_url)
    worker = Worker(redis, settings)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1", registry=worker.metrics.registry)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)  # finish the batch in hand, then return
    try:
        await worker.run(burst=burst)
    finally:
        await redis.aclose()
