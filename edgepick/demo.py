"""`edgepick demo`: the whole serving path on one machine, in one command.

Embedded Redis, a local folder origin served by the app itself under /content/ (standing
in for the CDN), the example catalog published and pre-warmed through that URL, a few
users with pinned decisions, and the URLs to open.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table

from content_variants.origin import origin_from_url
from content_variants.prewarm import Prewarmer
from decision_worker.pinning import pin
from edge_functions.app import create_app
from edge_functions.errors import EdgepickError
from edge_functions.redis_client import connect_sync
from edge_functions.settings import Settings
from edgepick.reporting import publish_with_progress

EXAMPLE_CONTENT = Path(__file__).parent / "examples" / "content"
# (user, placement, ranked variants): what a content editor would pin to preview.
DEMO_PINS = [
    ("alice", "hero", ["trail-running", "winter-camping"]),
    ("alice", "cta", ["free-shipping"]),
    ("bob", "hero", ["winter-camping"]),
    ("bob", "email-header", ["new-arrivals"]),
]


class DemoError(EdgepickError):
    error_code = "demo_failed"


def run_demo(settings: Settings, port: int, content_dir: Path | None, once: bool) -> None:
    console = Console(soft_wrap=True)
    assert settings.redis_url is not None
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="edgepick-serve", daemon=True)
    thread.start()
    try:
        _wait_for(lambda: server.started, 10, f"the server did not start on port {port}")
        redis = connect_sync(settings.redis_url)
        prewarmer = Prewarmer(settings.cdn_base, settings.prewarm_timeout_s)
        try:
            report = publish_with_progress(content_dir or EXAMPLE_CONTENT, redis,
                                           origin_from_url(settings.origin), prewarmer,
                                           settings.max_variant_bytes, console)
        finally:
            prewarmer.close()
        if report.rev == 0:
            raise DemoError("nothing was published")
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=5) as client:
            _wait_for(lambda: client.get("/healthz").json()["manifest_rev"] >= report.rev, 10,
                      "the server did not pick up the published manifest")
            for user, placement, variants in DEMO_PINS:
                pin(redis, settings.key_secret_bytes, user, placement, variants,
                    settings.decision_ttl_s)
            _print_tour(console, client, base)
        if once:
            return
        console.print("\nServing until Ctrl-C.")
        while thread.is_alive():
            thread.join(0.5)
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        server.should_exit = True
        thread.join(10)


def _print_tour(console: Console, client: httpx.Client, base: str) -> None:
    table = Table(title="Open these (each answers a 302 to a pre-rendered variant)")
    table.add_column("URL", overflow="fold")
    for column in ("answer", "variant", "why"):
        table.add_column(column)
    for user in ("alice", "bob", None):
        for placement in ("hero", "cta", "email-header"):
            path = f"/p/{placement}" + (f"?uid={user}" if user else "")
            answer = client.get(path)
            location = answer.headers.get("location", "")
            variant = client.get(location).json().get("variant", "?") if location else "-"
            table.add_row(base + path, str(answer.status_code), variant,
                          answer.headers.get("x-edgepick-source", ""))
    console.print(table)
    console.print(f"Batch: {base}/p?placements=hero,cta,email-header&uid=alice   "
                  f"Metrics: {base}/metrics   Health: {base}/healthz")
    console.print("Pin another preview: edgepick pin carol hero climbing-es")


def _wait_for(condition: object, seconds: float, message: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():  # type: ignore[operator]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise DemoError(message)
