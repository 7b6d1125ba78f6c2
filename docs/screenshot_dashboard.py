"""Screenshots of the operator dashboard for docs/dashboard.md, with realistic data made by
the real parts: a private redis-server, the edge serving the example catalog, two models
trained on a synthetic population's logged history (the first promoted, the second the
shadow), a rollout of the second in Redis, live traffic posted to the events API and
decided by a worker (its metrics served as `--metrics-port` serves them), placement requests
answered by the edge; then headless chromium opens the page, signs in and photographs it.

    python docs/screenshot_dashboard.py [--out docs]

Writes dashboard.png (the whole page, as served; the rollouts seeded here have no exposures,
so their analysis is empty). The experiments panel with real rollouts is photographed from
`edgepick demo` by screenshot_demo_rollouts.py. Needs redis-server and chromium (Debian
packages).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from playwright.sync_api import Page, sync_playwright
from redis import Redis
from redis.exceptions import RedisError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from content_variants.origin import ContentOrigin
from content_variants.prewarm import Prewarmer
from content_variants.publish import publish
from decision_worker.ingest.event_log import EventLog
from decision_worker.learning.pipeline import run_training
from decision_worker.learning.synthetic import Population, as_logged, log_messages
from decision_worker.ranking.candidates import Catalog
from edge_functions.app import create_app
from edge_functions.keys import MANIFEST_KEY
from object_store.folder import FolderStore
from tests.conftest import EXAMPLE_CONTENT, Settings, free_port
from tests.integration.dashboard_bed import (
    TOKEN,
    DashboardBed,
    experiment,
    start_bed,
    write_experiment,
)

VIEWPORT = {"width": 1440, "height": 1000}


def serve(app: Any, port: int | None = None) -> str:
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}"


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--dir", str(workdir)],
                               stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(200):
        try:
            Redis.from_url(url).ping()
            return process, url
        except (OSError, RedisError):
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def train_models(settings: Settings, redis: Redis, registry: Any) -> None:
    """Two candidates on logged synthetic history, as `edgepick train` would train them."""
    catalog = Catalog.from_bytes(redis.get(MANIFEST_KEY))
    assert settings.origin_dir is not None
    log = EventLog(FolderStore(settings.origin_dir))
    end = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    log_messages(log, as_logged(Population(catalog, 1200, seed=5).history(
        20, end - dt.timedelta(days=3), dt.timedelta(days=5), run="a")))
    first = run_training(log, catalog, registry, settings.lateness_s, days=7,
                         until=end - dt.timedelta(days=3))
    registry.promote(first.version, force_reason="first model, promoted by hand")
    log_messages(log, as_logged(Population(catalog, 1200, seed=6).history(
        20, end, dt.timedelta(days=3), run="b")))
    second = run_training(log, catalog, registry, settings.lateness_s, days=7, until=end)
    print(f"trained {first.version} (production) and {second.version} (shadow)")


def seed(bed: DashboardBed, registry: Any) -> str:
    """Two rollouts as the controller writes them; returns the running one's id."""
    pointers = registry.pointers()
    now = dt.datetime.now(dt.UTC).timestamp()
    running = f"rollout-{pointers['shadow']}"
    write_experiment(bed.redis, experiment(
        id=running, name=f"{pointers['shadow']} rollout", treatment_model=pointers["shadow"],
        control_model=pointers["production"], status="ramping", step_index=1,
        started_at=now - 3 * 3600, step_started_at=now - 3 * 3600 + 40 * 60))
    write_experiment(bed.redis, experiment(
        id="rollout-wide-retrieval", name="wide retrieval (rolled back)",
        treatment_model="m-wide-retrieval", control_model=pointers["production"],
        status="rolled_back", step_index=1, started_at=now - 2 * 86400,
        step_started_at=now - 2 * 86400 + 4000))
    return running


def photograph(bed: DashboardBed, out: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium")
                                             or "/usr/bin/chromium")
        page = browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
        sign_in(page, bed.api)
        for round_ in range(8):  # live traffic while the page polls: freshness over time
            bed.traffic(f"live{round_}", 60, seed=round_)
            page.wait_for_timeout(1100)
        page.screenshot(path=str(out / "dashboard.png"), full_page=True)
        browser.close()
    print(f"wrote {out / 'dashboard.png'}")


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/dashboard")
    page.fill("#token", TOKEN)
    page.click("#token-form button[type=submit]")
    page.wait_for_selector("#panels:not([hidden])")
    page.wait_for_selector(".js-plotly-plot")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis_process, redis_url = start_redis(Path(tmp))
        try:
            run(Path(tmp), redis_url, args.out)
        finally:
            redis_process.terminate()


def run(tmp: Path, redis_url: str, out: Path) -> None:
    port = free_port()
    settings = Settings(redis_url=redis_url, data_dir=tmp / "data", origin=f"file://{tmp}/o",
                        key_secret="screenshot-secret-0123456789", manifest_refresh_s=0.05,
                        serve_origin=True, cdn_base=f"http://127.0.0.1:{port}")
    redis = Redis.from_url(redis_url)
    edge = serve(create_app(settings), port)
    assert settings.origin_dir is not None
    prewarmer = Prewarmer(settings.cdn_base, 5.0)
    report = publish(EXAMPLE_CONTENT, redis, ContentOrigin(FolderStore(settings.origin_dir)),
                     prewarmer, settings.max_variant_bytes)
    prewarmer.close()
    assert report.ok, report.failed
    bed = start_bed(settings, edge, lambda app: serve(app), redis, refresh_s=1.0)
    train_models(settings, redis, bed.registry)
    seed(bed, bed.registry)
    bed.traffic("visitor", 400, seed=11)
    photograph(bed, out)


if __name__ == "__main__":
    main()
