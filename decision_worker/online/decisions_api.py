"""What was decided for a user, read back: `GET /v1/decisions/{user}` on the events API
(operator route, `Authorization: Bearer $EDGEPICK_ADMIN_TOKEN`) and `edgepick explain`.

Per published placement (or the one asked for with `?placement=`): the ranked list, the
model version, the arm and when it was decided, exactly as the edge reads it; `null` where
the user has no decision (the edge then serves the default). The user id is hashed into
its key as the edge does and never logged.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from decision_worker.online.forget import published_placements
from decision_worker.online.operator_auth import refuse_unauthorized
from decision_worker.settings import WorkerSettings
from edge_functions.decision_record import decode
from edge_functions.errors import CorruptRecord, InvalidIdentifier
from edge_functions.http_errors import NO_STORE, error_response
from edge_functions.identifiers import check_id, check_user_id
from edge_functions.keys import decision_key, user_tag


async def read_decisions(redis: Redis, secret: bytes, user: str,
                         placements: list[str]) -> dict[str, dict[str, Any] | None]:
    """{placement: the decision as JSON, or None} for `user` (a checked user id)."""
    tag = user_tag(secret, user)
    raws: list[Any] = await redis.mget([decision_key(tag, p) for p in placements]) \
        if placements else []
    out: dict[str, dict[str, Any] | None] = {}
    for placement, raw in zip(placements, raws, strict=True):
        if raw is None:
            out[placement] = None
            continue
        try:
            record = decode(raw)
        except CorruptRecord as e:
            out[placement] = {"error": str(e)}
            continue
        out[placement] = {"ranked": list(record.ranked), "model_version": record.model_version,
                          "arm": record.arm, "decided_at": record.decided_at}
    return out


def decisions_route(redis: Redis, settings: WorkerSettings) -> Route:
    async def decisions(request: Request) -> Response:
        refused = refuse_unauthorized(request, settings.admin_token)
        if refused is not None:
            return refused
        try:
            user = check_user_id(request.path_params["user"])
            wanted = request.query_params.get("placement")
            if wanted is not None:
                check_id("placement", wanted)
        except InvalidIdentifier as e:
            return error_response(400, "invalid_identifier", e.message)
        try:
            async with asyncio.timeout(settings.api_timeout_s):
                placements = await published_placements(redis)
                if wanted is not None:
                    if wanted not in placements:
                        return error_response(404, "unknown_placement",
                                              f"no published placement {wanted!r}")
                    placements = [wanted]
                found = await read_decisions(redis, settings.key_secret_bytes, user,
                                             placements)
        except (RedisError, OSError, TimeoutError) as e:
            return error_response(503, "unavailable", f"Redis is unavailable: {e or 'no answer'}",
                                  retry_after_s=1)
        return JSONResponse({"placements": found}, headers={"cache-control": NO_STORE})

    return Route("/v1/decisions/{user:path}", decisions, methods=["GET"])
