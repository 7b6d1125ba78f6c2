"""`POST /v1/privacy/forget` (operator route): `{"userIds": [...]}` (1 to 100) → forget.py."""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from decision_worker.errors import RequestRejected
from decision_worker.ingest.event_log import EventLog
from decision_worker.ingest.request_body import loads_strict, read_body
from decision_worker.online.forget import MAX_IDS_PER_REQUEST, forget, published_placements
from decision_worker.online.operator_auth import refuse_unauthorized
from decision_worker.settings import WorkerSettings
from edge_functions.errors import EdgepickError, InvalidIdentifier
from edge_functions.http_errors import NO_STORE, error_response, from_error

log = logging.getLogger("edgepick.api")
MAX_BODY_BYTES = 64 * 1024


def forget_route(redis: Redis, event_log: EventLog, settings: WorkerSettings) -> Route:
    async def forget_users(request: Request) -> Response:
        refused = refuse_unauthorized(request, settings.admin_token)
        if refused is not None:
            return refused
        try:
            doc = loads_strict(await read_body(request, MAX_BODY_BYTES))
            ids = doc.get("userIds") if isinstance(doc, dict) else None
            if not isinstance(ids, list) or not 0 < len(ids) <= MAX_IDS_PER_REQUEST:
                raise RequestRejected(400, "userIds", f"must be a list of 1 to "
                                                      f"{MAX_IDS_PER_REQUEST} user ids")
            async with asyncio.timeout(settings.api_timeout_s * 5):
                placements = await published_placements(redis)
                report = await forget(redis, event_log, settings.key_secret_bytes, ids,
                                      placements, settings.profile_ttl_s)
        except RequestRejected as e:
            return from_error(e)
        except InvalidIdentifier as e:
            return error_response(400, "invalid_identifier", e.message, field="userIds")
        except (RedisError, OSError, TimeoutError, EdgepickError) as e:
            return error_response(503, "unavailable", f"forget did not complete, retry it: {e}",
                                  retry_after_s=1)
        log.info("forgot %d user(s), %d linked id(s) in all", report.users, report.ids)
        return JSONResponse({"forgotten": report.users, "ids": report.ids,
                             "keys_deleted": report.keys_deleted},
                            headers={"cache-control": NO_STORE})

    return Route("/v1/privacy/forget", forget_users, methods=["POST"])
