"""The one error shape of every edgepick HTTP app (serving, events API, CMS hook):
`{"error": code, "detail": message[, "field": name]}` as JSON, never cached
(`Cache-Control: private, no-store`), with `Retry-After` on a refusal that may be retried.
The hot path and the HTTP protocol write the same bytes by hand (`error_body`)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from edge_functions.errors import EdgepickError

NO_STORE = "private, no-store"
HTTP_ERRORS = {404: ("not_found", "nothing is served at this path"),
               405: ("method_not_allowed", "this method is not allowed here")}


def error_body(code: str, detail: str, field: str | None = None) -> bytes:
    body: dict[str, str] = {"error": code, "detail": detail}
    if field is not None:
        body["field"] = field
    return json.dumps(body).encode()


def error_response(status: int, code: str, detail: str, *, field: str | None = None,
                   retry_after_s: int | None = None,
                   headers: Mapping[str, str] | None = None) -> Response:
    all_headers = {**(headers or {}), "cache-control": NO_STORE}
    if retry_after_s is not None:
        all_headers["retry-after"] = str(retry_after_s)
    return Response(error_body(code, detail, field), status_code=status,
                    headers=all_headers, media_type="application/json")


def from_error(error: EdgepickError) -> Response:
    return error_response(error.http_status, error.error_code, error.message,
                          field=error.field, retry_after_s=error.retry_after_s)


async def http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (and any HTTPException) in the one shape."""
    assert isinstance(exc, HTTPException)
    code, detail = HTTP_ERRORS.get(exc.status_code, ("http_error", str(exc.detail)))
    return error_response(exc.status_code, code, detail, headers=exc.headers)


