"""The baseline: a bare Starlette route answering the same redirect with no I/O at all."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

LOCATION = "http://127.0.0.1:8000/content/hero/variant-trail-running.0123456789abcdef.json"


async def redirect(request: Request) -> Response:
    return Response(status_code=302, headers={"location": LOCATION,
                                              "cache-control": "private, no-store",
                                              "x-edgepick-source": "decision"})


app = Starlette(routes=[Route("/p/{placement:path}", redirect)])
