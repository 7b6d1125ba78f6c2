"""Serve a folder origin under /content/ (local mode: the demo needs no CDN or S3)."""

from __future__ import annotations

from pathlib import Path

from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

IMMUTABLE = b"public, max-age=31536000, immutable"


class ImmutableContent:
    """StaticFiles over `<origin>/content`, with the immutable cache header of the design."""

    def __init__(self, origin_dir: Path) -> None:
        self._files: ASGIApp = StaticFiles(directory=origin_dir / "content", check_dir=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                message["headers"] = [*message["headers"], (b"cache-control", IMMUTABLE)]
            await send(message)

        await self._files(scope, receive, send_with_headers)
