"""`edgepick demo`: the whole product on one machine, in one command.

Embedded Redis, a local folder origin served by the app itself under /content/ (standing
in for the CDN), the example catalog published and pre-warmed through that URL, the events
API and the decision worker running, and a synthetic population whose users have hidden
preferences: their past impressions and clicks, then a new session each, are posted to the
API as Segment events; the worker decides; the summary says how fresh the decisions were
and how much the synthetic users would click the decided variants against the defaults.
Then a LightGBM ranker is trained on the log, and two rollouts run in accelerated time, a
model known to be better completing and one known to be worse rolled back
(demo_rollouts.py); the dashboard's URL is printed with an admin token for the run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from redis import Redis
from redis.exceptions import RedisError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from content_variants.origin import origin_from_url
from content_variants.prewarm import Prewarmer
from content_variants.settings import PublisherSettings
from decision_worker.api import create_api
from decision_worker.keys import CONSUMER_GROUP, EVENTS_STREAM
from decision_worker.learning.synthetic import Population
from decision_worker.online.worker import Worker
from decision_worker.ranking.candidates import Catalog
from decision_worker.settings import WorkerSettings
from edge_functions.app import create_app
from edge_functions.env import HttpServerSettings
from edge_functions.errors import EdgepickError
from edge_functions.http_protocol import http_protocol
from edge_functions.keys import MANIFEST_KEY
from edge_functions.redis_client import connect_async, connect_sync
from edge_functions.settings import ServingSettings
from edgepick.demo_summary import print_summary
from edgepick.reporting import publish_with_progress

EXAMPLE_CONTENT = Path(__file__).parent / "examples" / "content"
HISTORY_IMPRESSIONS = 12  # past impressions per synthetic user
POST_BATCH = 500
# Session starts arrive one per request at this pace (a busy site's, not a burst), so the
# latency the summary prints is what a user would wait for.
SESSION_STARTS_PER_S = 100
DEMO_EXPOSURE_FLUSH_S = 0.25


class DemoError(EdgepickError):
    error_code = "demo_failed"


@dataclass(frozen=True)
class DemoSettings:
    """The demo runs every part: each with its own package's settings, one Redis."""

    serving: ServingSettings
    worker: WorkerSettings
    publisher: PublisherSettings


def run_demo(parts: DemoSettings, port: int, api_port: int, content_dir: Path | None,
             once: bool, users: int, rollouts: bool = True) -> None:
    console = Console(soft_wrap=True)
    _stop_on_interrupt()
    publisher, generated = parts.publisher, parts.worker.admin_token is None
    settings, serving = _demo_settings(parts)
    assert settings.redis_url is not None
    edge = _Server(create_app(serving), port, serving)
    api = _Server(create_api(settings), api_port, settings)
    worker = _WorkerThread(settings)
    try:
        for part in (edge, api, worker):
            part.start()
        redis = connect_sync(settings.redis_url)
        prewarmer = Prewarmer(publisher.cdn_base, publisher.prewarm_timeout_s)
        try:
            report = publish_with_progress(content_dir or EXAMPLE_CONTENT, redis,
                                           origin_from_url(publisher.origin), prewarmer,
                                           publisher.max_variant_bytes, console)
        finally:
            prewarmer.close()
        if report.rev == 0:
            raise DemoError("nothing was published")
        with httpx.Client(timeout=30) as client:
            _wait_for(lambda: client.get(f"{edge.base}/healthz").json()["manifest_rev"]
                      >= report.rev, 10, "the server did not pick up the published manifest")
            population = Population(Catalog.from_bytes(redis.get(MANIFEST_KEY)), users)
            now = dt.datetime.now(dt.UTC)
            run = f"demo-{now:%Y%m%dT%H%M%S}-"  # a rerun in the same folder is new traffic
            _post(console, client, api.base, "past impression and click", population.history(
                HISTORY_IMPRESSIONS, now - dt.timedelta(minutes=1), run=run))
            _wait_drained(redis)
            worker.reset_latencies()
            _post(console, client, api.base, "session start", population.session_starts(now, run),
                  per_second=SESSION_STARTS_PER_S)
            _wait_drained(redis)
            assert worker.worker is not None
            served = print_summary(console, redis, settings, population,
                                   worker.worker.totals, SESSION_STARTS_PER_S)
            # what the users then did with it: the rewards off-policy evaluation reads
            _post(console, client, api.base, "view and click of what was served",
                  population.outcomes(served, now, run))
            _wait_drained(redis)
            trained = _train_on_the_log(console, settings, redis)
            if rollouts:
                _rollouts(console, settings, redis, worker, population, client,
                          (edge.base, api.base, run), trained)
            _print_tour(console, client, edge.base, api.base, population)
            _print_dashboard(console, api.base, settings.admin_token if generated else None)
        if once:
            return
        console.print("\nServing until Ctrl-C.")
        while edge.alive:
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        worker.stop()
        api.stop()
        edge.stop()


def _demo_settings(parts: DemoSettings) -> tuple[WorkerSettings, ServingSettings]:
    """The dashboard needs an operator token: one for this run unless one is configured.
    Accelerated time: exposures with no lookup to ride with leave the edge after 0.25 s."""
    settings = dataclasses.replace(parts.worker, admin_token=parts.worker.admin_token
                                   or secrets.token_urlsafe(18))
    serving = dataclasses.replace(parts.serving, exposure_flush_s=min(
        parts.serving.exposure_flush_s, DEMO_EXPOSURE_FLUSH_S))
    return settings, serving


def _stop_on_interrupt() -> None:
    """Ctrl-C (and SIGTERM) stop the demo wherever it was started: a process started in the
    background by a shell inherits SIGINT ignored, and Python then never raises
    KeyboardInterrupt (the demo served on after Ctrl-C in such runs)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.default_int_handler)


class _Server:
    """An ASGI app on uvicorn in a thread."""

    def __init__(self, app: Any, port: int, settings: HttpServerSettings) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                                     log_level="warning", access_log=False,
                                                     http=http_protocol(settings)))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        _wait_for(lambda: self._server.started, 10, f"no server came up at {self.base}")

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


class _WorkerThread:
    """The decision worker on its own event loop in a thread."""

    def __init__(self, settings: WorkerSettings) -> None:
        assert settings.redis_url is not None
        self._url = settings.redis_url
        self._settings = settings
        self.worker: Worker | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        redis = connect_async(self._url)
        self.worker = Worker(redis, self._settings, consumer="demo-worker")
        try:
            await self.worker.run()
        finally:
            await redis.aclose()

    def start(self) -> None:
        self._thread.start()
        _wait_for(lambda: self.worker is not None, 10, "the worker did not start")

    def reset_latencies(self) -> None:
        assert self.worker is not None
        self.worker.totals.latencies.clear()
        self.worker.inputs.reload_popularity_now()

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self._thread.join(10)


def _post(console: Console, client: httpx.Client, api: str, what: str,
          messages: Iterable[dict[str, Any]], per_second: float | None = None) -> None:
    """Post in batches of POST_BATCH, or with `per_second` one message per request at
    that pace."""
    items = list(messages)
    size = 1 if per_second else POST_BATCH
    started = time.monotonic()
    with Progress(TextColumn(f"posting {what} events"), BarColumn(), MofNCompleteColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task(what, total=len(items))
        iterator = iter(items)
        for sent, batch in enumerate(iter(lambda: list(islice(iterator, size)), [])):
            if per_second:
                time.sleep(max(0.0, started + sent / per_second - time.monotonic()))
            answer = client.post(f"{api}/v1/events", json={"batch": batch})
            if answer.status_code != 200:
                raise DemoError(f"the events API answered {answer.status_code}: "
                                f"{answer.text[:200]}")
            progress.advance(task, len(batch))
    console.print(f"posted {len(items):,} {what} events to {api}/v1/events", highlight=False)


def _wait_drained(redis: Redis, seconds: float = 120) -> None:
    def drained() -> bool:
        group = next(g for g in redis.xinfo_groups(EVENTS_STREAM)
                     if g["name"].decode() == CONSUMER_GROUP)
        newest = redis.xinfo_stream(EVENTS_STREAM)["last-generated-id"]
        return bool(group["pending"] == 0 and group["last-delivered-id"] == newest)

    _wait_for(drained, seconds, "the worker did not catch up with the events")


def _train_on_the_log(console: Console, settings: WorkerSettings, redis: Redis) -> str:
    """Learning to rank on what the demo just logged: train, evaluate, and ask for a
    promotion, which the registry grants only if the candidate beats production."""
    from decision_worker.errors import RegistryError
    from decision_worker.learning.registry import registry_from_url
    from edgepick.training_cli import train_and_report

    console.print("\nTraining a LightGBM ranker on the event log just written:")
    version = train_and_report(settings, redis, 3, None, None, console)
    try:
        registry_from_url(settings.origin).promote(version)
        console.print(f"promoted {version}: the worker scores with it from now on")
    except RegistryError as e:
        console.print(f"not promoted ({e}); production is unchanged",
                      highlight=False)
    return version


def _rollouts(console: Console, settings: WorkerSettings, redis: Redis, worker: _WorkerThread,
              population: Population, client: httpx.Client, bases: tuple[str, str, str],
              trained: str) -> None:
    """The better model rolled out to 100 %, the worse one rolled back (demo_rollouts.py),
    on what the demo's own worker ranks with now."""
    from decision_worker.learning.registry import registry_from_url
    from decision_worker.ranking.ranker import BaselineRanker, Ranker
    from edgepick.demo_models import Inputs, registry_ranker
    from edgepick.demo_rollouts import Traffic, run_rollouts

    deciding = worker.worker
    assert deciding is not None
    registry = registry_from_url(settings.origin)
    production = registry.pointers().get("production")
    ranker: Ranker = registry_ranker(registry, production) if production else BaselineRanker()
    inputs = Inputs(redis, settings, population, deciding.batch.catalog,
                    deciding.batch.popularity, ranker)
    edge, api, run = bases
    traffic = Traffic(client, edge, api, redis, population, lambda: _wait_drained(redis), run,
                      settings.key_secret_bytes, settings.holdout_share)
    run_rollouts(console, inputs, registry, traffic, trained)


def _print_dashboard(console: Console, api: str, generated_token: str | None) -> None:
    token = f"sign in with the admin token generated for this run: {generated_token}" \
        if generated_token else "sign in with the EDGEPICK_ADMIN_TOKEN you configured"
    console.print(f"Operator dashboard: {api}/dashboard  ({token})", highlight=False)


def _print_tour(console: Console, client: httpx.Client, base: str, api: str,
                population: Population) -> None:
    table = Table(title="Open these (each answers a 302 to a pre-rendered variant)")
    table.add_column("URL", overflow="fold")
    for column in ("answer", "variant", "why"):
        table.add_column(column)
    for user in [u.user_id for u in population.users[:2]] + [None]:
        for placement in sorted(population.catalog.placements):
            path = f"/p/{placement}" + (f"?uid={user}" if user else "")
            answer = client.get(f"{base}{path}")
            location = answer.headers.get("location", "")
            variant = client.get(location).json().get("variant", "?") if location else "-"
            table.add_row(base + path, str(answer.status_code), variant,
                          answer.headers.get("x-edgepick-source", ""))
    console.print(table)
    first = population.users[0].user_id
    console.print(f"Batch: {base}/p?placements=hero,cta,email-header&uid={first}   "
                  f"Metrics: {base}/metrics   Events: POST {api}/v1/events", highlight=False)
    console.print("Pin a preview by hand: edgepick pin carol hero climbing-es")


def _wait_for(condition: Callable[[], object], seconds: float, message: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (httpx.HTTPError, RedisError):
            pass  # not up yet
        time.sleep(0.05)
    raise DemoError(message)
