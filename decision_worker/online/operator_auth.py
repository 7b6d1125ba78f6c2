"""Who may call the events API's operator routes (forget): `Authorization: Bearer
$EDGEPICK_ADMIN_TOKEN`, compared in constant time; without a token set they are disabled."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response

from edge_functions.http_errors import error_response


def refuse_unauthorized(request: Request, token: str | None) -> Response | None:
    """None when the request may proceed, else the answer that refuses it."""
    if token is None:
        return error_response(403, "disabled", "this route needs EDGEPICK_ADMIN_TOKEN to be set")
    given = request.headers.get("authorization", "")
    if not given.startswith("Bearer "):
        return error_response(401, "unauthorized", "send Authorization: Bearer <admin token>")
    if not hmac.compare_digest(given[len("Bearer "):].encode(), token.encode()):
        return error_response(401, "unauthorized", "the admin token does not match")
    return None
