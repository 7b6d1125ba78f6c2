"""Serve a folder origin under /content/ (local mode: the demo needs no CDN or S3)."""

from __future__ import annotations

from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

IMMUTABLE = b"public, max-age=31536000, immutable"


class ImmutableContent:
    """StaticFiles over `<origin>/content`, with the immutable cache header of the design.

    Only regular files are served, and none whose path has a component starting with `.`:
    the publisher's upload temp files (`.upload-*`) sit beside the objects they become,
    and `.` or `..` segments have no place in a content-addressed URL. `Range` is ignored
    (allowed by RFC 9110): objects are small, and StaticFiles answers a bad range in plain
    text rather than the app's JSON error shape.
    """

    def __init__(self, origin_dir: Path) -> None:
        self._files: ASGIApp = _Folder(directory=origin_dir / "content", check_dir=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if any(part.startswith(".") for part in scope["path"].split("/")):
            raise HTTPException(status_code=404)
        headers = scope["headers"]
        if any(name == b"range" for name, _ in headers):
            scope = {**scope, "headers": [(n, v) for n, v in headers if n != b"range"]}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                message["headers"] = [*message["headers"], (b"cache-control", IMMUTABLE)]
            await send(message)

        await self._files(scope, receive, send_with_headers)


class _Folder(StaticFiles):
    async def check_config(self) -> None:
        """No folder yet means nothing published yet: every path is a 404 (StaticFiles
        would raise, a 500 on every request until the first publish)."""
