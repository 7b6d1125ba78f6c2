"""`POST /v1/events`: Segment-spec messages, one or `{"batch": [...]}`, plain or gzip.

200 `{"accepted", "duplicates", "suppressed", "rejected": []}`, or 400 with the same body when
any message was refused (its neighbours are still accepted); 4xx naming the problem when
the body as a whole is unusable; 503 with `Retry-After` when Redis or the event log cannot
take it now (retrying is always safe: ingestion.py).
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from decision_worker.errors import IngestUnavailable, RequestRejected
from decision_worker.ingest.events import MAX_REQUEST_BYTES
from decision_worker.ingest.ingestion import Ingest
from decision_worker.ingest.request_body import decode_body, read_body
from edge_functions.http_errors import NO_STORE, from_error

log = logging.getLogger("edgepick.api")
OUTCOMES = ("accepted", "duplicate", "rejected", "suppressed")


def events_route(ingest: Ingest, registry: CollectorRegistry) -> Route:
    messages = Counter("edgepick_ingest_messages_total", "Messages by outcome.", ["outcome"],
                       registry=registry)
    count = {outcome: messages.labels(outcome) for outcome in OUTCOMES}
    unavailable = Counter("edgepick_ingest_unavailable_total",
                          "Requests answered 503 (Redis or the event log unavailable).",
                          registry=registry)

    async def events(request: Request) -> Response:
        try:
            body = decode_body(await read_body(request, MAX_REQUEST_BYTES),
                               request.headers.get("content-encoding"), MAX_REQUEST_BYTES)
            result = await ingest.accept(body)
        except RequestRejected as e:
            return from_error(e)
        except IngestUnavailable as e:
            unavailable.inc()
            log.warning("refused a request with 503: %s", e.reason)
            return from_error(e)
        count["accepted"].inc(result.accepted)
        count["duplicate"].inc(result.duplicates)
        count["rejected"].inc(len(result.rejections))
        count["suppressed"].inc(result.suppressed)
        payload = {"accepted": result.accepted, "duplicates": result.duplicates,
                   "suppressed": result.suppressed,
                   "rejected": [{"index": r.index, "field": r.field, "reason": r.reason}
                                for r in result.rejections]}
        return JSONResponse(payload, status_code=400 if result.rejections else 200,
                            headers={"cache-control": NO_STORE})

    return Route("/v1/events", events, methods=["POST"])
