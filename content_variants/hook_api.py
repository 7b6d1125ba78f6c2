"""`POST /v1/hooks/cms`: a CMS publishes or unpublishes variants (`create_hook_app`).

    body bounded (413) → signature and freshness (401, `hook_auth`) → replay (401, a Redis
    marker per accepted signature, `SET NX EX`) → what is asked (400, `hook_payload`)
    → the CLI's publish, in a thread (at most EDGEPICK_HOOK_CONCURRENCY at once, else 503)
    holding the placements' locks (409 + Retry-After) → what changed (200, 207 or 422)

Mount it beside other routes, or run it alone with `edgepick hooks`. A request refused
before its publish ran (409, 503) forgets its replay marker, so the CMS may retry it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from content_variants import manifest_writer
from content_variants.cms_mapping import CmsMapping
from content_variants.errors import PublishBusy, PublishError
from content_variants.hook_auth import HookAuthError, HookSecrets, verify
from content_variants.hook_payload import HookItems, parse
from content_variants.hook_request import build_request
from content_variants.keys import hook_seen_key
from content_variants.limits import PublishLimits
from content_variants.origin import origin_from_url
from content_variants.prewarm import Prewarmer
from content_variants.publish import Publisher
from content_variants.publish_request import PublishReport
from content_variants.settings import PublisherSettings
from edge_functions.errors import ConfigError, EdgepickError
from edge_functions.redis_client import connect_async, connect_sync

ROUTE = "/v1/hooks/cms"
BUSY_RETRY_AFTER_S = 5
log = logging.getLogger("edgepick.hooks")


class BodyTooLarge(PublishError):
    http_status = 413
    error_code = "body_too_large"


class HookBusy(PublishError):
    """Every publishing thread is taken."""

    http_status = 503
    error_code = "busy"


def create_hook_app(settings: PublisherSettings) -> Starlette:
    if settings.redis_url is None:
        raise ConfigError("the CMS hook needs a Redis URL (the CLI starts embedded Redis)")
    if settings.content_dir is None:
        raise ConfigError("the CMS hook needs EDGEPICK_CONTENT_DIR (the placements' templates)")
    content_dir = settings.content_dir.resolve()
    secrets = HookSecrets.from_settings(settings)
    if not any((secrets.edgepick, secrets.contentful, secrets.sanity, secrets.strapi)):
        log.warning("no hook secret is set (EDGEPICK_HOOK_SECRET, …): every request is refused")
    mapping = CmsMapping.load(settings.cms_mapping)
    limits = PublishLimits.from_settings(settings)
    redis = connect_async(settings.redis_url)
    prewarmer = Prewarmer(settings.cdn_base, settings.prewarm_timeout_s)
    publisher = Publisher(connect_sync(settings.redis_url), origin_from_url(settings.origin),
                          prewarmer, limits)
    threads = anyio.CapacityLimiter(settings.hook_concurrency)
    max_body = settings.hook_max_body_bytes

    async def hook(request: Request) -> Response:
        body = await _bounded_body(request, max_body)
        headers = {name.lower(): value for name, value in request.headers.items()}
        target = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
        if request.scope.get("query_string"):
            target += "?" + request.scope["query_string"].decode("latin-1")
        verified = verify(request.method, target, headers, body, secrets,
                          settings.hook_tolerance_s, time.time())
        seen = hook_seen_key(verified.scheme, verified.replay_token)
        if not await redis.set(seen, 1, nx=True, ex=settings.hook_tolerance_s * 2):
            raise HookAuthError("replayed", "this signed request was already accepted")
        try:
            items = parse(verified.scheme, headers, body, mapping, settings.cms_locale,
                          settings.hook_max_items)
            if not len(items):
                log.info("hook %s: ignored: %s", verified.scheme, items.ignored)
                return JSONResponse({"scheme": verified.scheme, "ignored": items.ignored})
            report = await _publish_in_thread(threads, publisher, items, settings)
        except (PublishBusy, HookBusy):
            await redis.delete(seen)  # nothing was done: a retry must not look like a replay
            raise
        log.info("hook %s: %d changed, %d failed, manifest rev %s", verified.scheme,
                 len(report.changed), len(report.failed), report.rev)
        return _answer(verified.scheme, report, str(content_dir))

    async def healthz(request: Request) -> Response:
        await redis.ping()
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        prewarmer.close()
        publisher.redis.close()
        await redis.aclose()

    return Starlette(routes=[Route(ROUTE, hook, methods=["POST"]), Route("/healthz", healthz)],
                     exception_handlers={EdgepickError: _error, RedisError: _redis_error},
                     lifespan=lifespan)


async def _bounded_body(request: Request, max_bytes: int) -> bytes:
    length = request.headers.get("content-length")
    too_large = BodyTooLarge(f"body is larger than {max_bytes} bytes "
                             "(EDGEPICK_HOOK_MAX_BODY_BYTES)")
    if length is not None and (not length.isdigit() or int(length) > max_bytes):
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise too_large
    return bytes(body)


async def _publish_in_thread(threads: anyio.CapacityLimiter, publisher: Publisher,
                             items: HookItems, settings: PublisherSettings) -> PublishReport:
    try:
        threads.acquire_nowait()
    except anyio.WouldBlock:
        raise HookBusy(f"{settings.hook_concurrency} publishes are running; try again "
                       f"in {BUSY_RETRY_AFTER_S} s") from None
    assert settings.content_dir is not None
    content_dir = settings.content_dir.resolve()

    def work() -> PublishReport:
        deadline = time.monotonic() + publisher.limits.publish_timeout_s
        current, _ = manifest_writer.read_current(publisher.redis, publisher.origin)
        request = build_request(items, content_dir, publisher.limits, deadline, current)
        return publisher.run(request, deadline=deadline)

    try:
        # Publishing is blocking I/O (render child, uploads, pre-warm GETs): off the loop.
        return await anyio.to_thread.run_sync(work)
    finally:
        threads.release()


def _answer(scheme: str, report: PublishReport, content_dir: str) -> Response:
    def shown(line: str) -> str:  # paths relative to the content folder, not the server's
        # A line may quote what was sent, lone surrogates included: escape what is not text.
        line = line.replace(content_dir + "/", "")
        return line.encode("utf-8", "backslashreplace").decode("utf-8")

    payload: dict[str, Any] = {
        "scheme": scheme,
        "uploaded": report.uploaded,
        "updated": report.metadata_updated,
        "unchanged": report.unchanged,
        "unpublished": report.unpublished,
        "failed": [shown(line) for line in report.failed],
        "manifest": {"rev": report.rev, "changed": report.manifest_changed,
                     "written": report.manifest_error is None,
                     "source": report.manifest_source},
    }
    if report.ok:
        status = 200
    elif report.changed or report.unchanged:
        status = 207  # some items went through, some did not: the body says which
    else:
        status = 422
    return JSONResponse(payload, status_code=status)


async def _redis_error(request: Request, exc: Exception) -> Response:
    log.error("hook: Redis: %s", exc)
    return JSONResponse({"error": "redis_unavailable", "detail": f"Redis: {exc}"},
                        status_code=503, headers={"Retry-After": str(BUSY_RETRY_AFTER_S)})


async def _error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EdgepickError)
    headers = {}
    if isinstance(exc, PublishBusy):
        headers["Retry-After"] = str(exc.retry_after_s)
    elif isinstance(exc, HookBusy):
        headers["Retry-After"] = str(BUSY_RETRY_AFTER_S)
    if exc.http_status in (401, 403):
        log.warning("hook refused: %s: %s", exc.error_code, exc)
    return JSONResponse({"error": exc.error_code, "detail": str(exc)},
                        status_code=exc.http_status, headers=headers)
