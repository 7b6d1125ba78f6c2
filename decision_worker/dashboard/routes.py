"""The dashboard's routes on the events API.

Authentication: the page and its scripts are static and hold nothing (served to anyone);
the figures come only from `GET /v1/dashboard`, an operator route like the others
(`Authorization: Bearer $EDGEPICK_ADMIN_TOKEN`, online/operator_auth.py). The operator pastes
the token once; the page keeps it in sessionStorage (gone with the tab) and sends it as a
header, never in a URL. No cookie, so no cross-site request can ride on a login, and the
other operator routes keep their one scheme. The page allows scripts from this origin only
(Content-Security-Policy), so injected markup could not run and read the token.

plotly.js is served from the installed plotly package under a versioned path, cached for a
year (immutable) and gzipped once for clients that take it: the page works offline.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
from importlib import resources
from pathlib import Path
from string import Template

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from decision_worker.dashboard.data import DashboardData
from decision_worker.online.operator_auth import refuse_unauthorized
from edge_functions.http_errors import NO_STORE, error_response

STATIC = resources.files("decision_worker.dashboard") / "static"
ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
PAGE_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; connect-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "x-content-type-options": "nosniff", "referrer-policy": "no-referrer",
    "x-frame-options": "DENY"}
IMMUTABLE = "public, max-age=31536000, immutable"


def plotly_js() -> tuple[str, Path]:
    """(plotly.js version, path of plotly.min.js) from the installed plotly package."""
    from plotly.offline import get_plotlyjs_version

    path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    return get_plotlyjs_version(), path


def dashboard_routes(data: DashboardData, admin_token: str | None) -> list[BaseRoute]:
    version, plotly_path = plotly_js()
    plotly_url = f"/dashboard/plotly-{version}.min.js"
    assets = {name: (STATIC / name).read_bytes() for name in ASSETS}
    tags = {name: hashlib.sha256(body).hexdigest()[:12] for name, body in assets.items()}
    page = Template((STATIC / "dashboard.html").read_text(encoding="utf-8")).substitute(
        plotly_js=plotly_url, js=f"/dashboard/static/dashboard.js?v={tags['dashboard.js']}",
        css=f"/dashboard/static/dashboard.css?v={tags['dashboard.css']}").encode()
    plotly = _Compressed(plotly_path)

    async def html(request: Request) -> Response:
        return Response(page, media_type="text/html; charset=utf-8",
                        headers={**PAGE_HEADERS, "cache-control": "no-cache"})

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in assets:
            return error_response(404, "not_found", "nothing is served at this path")
        return Response(assets[name], media_type=ASSETS[name],
                        headers={"cache-control": IMMUTABLE, "x-content-type-options": "nosniff"})

    async def plotly_route(request: Request) -> Response:
        gzipped = "gzip" in request.headers.get("accept-encoding", "")
        body = await plotly.body(gzipped)
        headers = {"cache-control": IMMUTABLE, "x-content-type-options": "nosniff",
                   "vary": "accept-encoding"}
        if gzipped:
            headers["content-encoding"] = "gzip"
        return Response(body, media_type="text/javascript", headers=headers)

    async def document(request: Request) -> Response:
        refused = refuse_unauthorized(request, admin_token)
        if refused is not None:
            return refused
        try:
            doc = await data.build()
        except (RedisError, OSError, TimeoutError) as e:
            return error_response(503, "unavailable", f"Redis is unavailable: {e or 'no answer'}",
                                  retry_after_s=1)
        return JSONResponse(doc, headers={"cache-control": NO_STORE})

    return [Route("/dashboard", html, methods=["GET"]),
            Route("/dashboard/static/{name}", asset, methods=["GET"]),
            Route(plotly_url, plotly_route, methods=["GET"]),
            Route("/v1/dashboard", document, methods=["GET"])]


class _Compressed:
    """A large file read and gzipped once, on first request, in a thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._bodies: dict[bool, bytes] = {}
        self._lock = asyncio.Lock()

    async def body(self, gzipped: bool) -> bytes:
        async with self._lock:
            if gzipped not in self._bodies:
                self._bodies[gzipped] = await asyncio.to_thread(self._read, gzipped)
            return self._bodies[gzipped]

    def _read(self, gzipped: bool) -> bytes:
        raw = self.path.read_bytes()
        return gzip.compress(raw, compresslevel=6, mtime=0) if gzipped else raw
