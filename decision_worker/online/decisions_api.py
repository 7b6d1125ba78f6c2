"""What was decided for a user, read back: `GET /v1/decisions/{user}` on the events API
(operator route, `Authorization: Bearer $EDGEPICK_ADMIN_TOKEN`) and `edgepick explain`.

Per published placement (or the one asked for with `?placement=`): the ranked list, the
model version, the arm and when it was decided, exactly as the edge reads it; `null` where
the user has no decision (the edge then serves the default). Beside them, from the
decision's why-record (ranking/why_record.py, read in the same MGET: same hash slot):
`exploration`, the probability that the first variant was put first and whether the draw
explored, and `contributions`, the features that moved its score most, computed here on
read (ranking/contributions.py; `contributions_from` says how, or why there are none).
The user id is hashed into its key as the edge does and never logged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from decision_worker.keys import why_key
from decision_worker.online.forget import published_placements
from decision_worker.online.operator_auth import refuse_unauthorized
from decision_worker.ranking.contributions import Explainer
from decision_worker.ranking.model_registry import ModelRegistry
from decision_worker.ranking.why_record import WhyRecord, decode_whys
from decision_worker.settings import WorkerSettings
from edge_functions.decision_record import DecisionRecord, decode
from edge_functions.errors import CorruptRecord, InvalidIdentifier
from edge_functions.http_errors import NO_STORE, error_response
from edge_functions.identifiers import check_id, check_user_id
from edge_functions.keys import decision_key, user_tag
from object_store import from_url

Decisions = dict[str, dict[str, Any] | None]  # placement → the decision as JSON, or None


@dataclass
class ReadBack:
    decisions: Decisions
    found: list[tuple[str, DecisionRecord, WhyRecord | None]]  # the decoded ones


async def read_decisions(redis: Redis, secret: bytes, user: str,
                         placements: list[str]) -> ReadBack:
    """What was decided for `user` (a checked user id): one round trip for the decisions
    and the why-record."""
    tag = user_tag(secret, user)
    raws: list[Any] = await redis.mget([*(decision_key(tag, p) for p in placements),
                                        why_key(tag)])
    whys = _whys(raws[-1])
    out = ReadBack({}, [])
    for placement, raw in zip(placements, raws[:-1], strict=True):
        if raw is None:
            out.decisions[placement] = None
            continue
        try:
            record = decode(raw)
        except CorruptRecord as e:
            out.decisions[placement] = {"error": str(e)}
            continue
        why = whys.get((placement, record.decided_at))
        if why is not None and why.variant != record.ranked[0]:
            why = None  # written with another decision (one pinned since, say)
        out.decisions[placement] = {
            "ranked": list(record.ranked), "model_version": record.model_version,
            "arm": record.arm, "decided_at": record.decided_at,
            "exploration": None if why is None else {"propensity": why.propensity,
                                                     "explored": why.explored}}
        out.found.append((placement, record, why))
    return out


async def explain_decisions(read_back: ReadBack, explainer: Explainer) -> Decisions:
    """The decisions with `contributions` and `contributions_from`, computed in a thread
    (a model may have to be loaded from the registry first)."""
    found = read_back.found
    explained = await asyncio.to_thread(
        lambda: [explainer.explain(r.model_version, r.arm, w) for _, r, w in found])
    for (placement, _, _), explanation in zip(found, explained, strict=True):
        decision = read_back.decisions[placement]
        assert decision is not None
        decision["contributions"] = explanation.contributions
        decision["contributions_from"] = explanation.method
    return read_back.decisions


def _whys(raw: bytes | None) -> dict[tuple[str, int], WhyRecord]:
    """(placement, decided_at) → why-record; none when missing or unreadable."""
    if raw is None:
        return {}
    try:
        decided_at, whys = decode_whys(raw)
    except CorruptRecord:
        return {}
    return {(placement, decided_at): why for placement, why in whys.items()}


def decisions_route(redis: Redis, settings: WorkerSettings) -> Route:
    explainer = Explainer(ModelRegistry(from_url(settings.origin)))

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
                read_back = await read_decisions(redis, settings.key_secret_bytes, user,
                                                 placements)
        except (RedisError, OSError, TimeoutError) as e:
            return error_response(503, "unavailable", f"Redis is unavailable: {e or 'no answer'}",
                                  retry_after_s=1)
        found = await explain_decisions(read_back, explainer)
        return JSONResponse({"placements": found}, headers={"cache-control": NO_STORE})

    return Route("/v1/decisions/{user:path}", decisions, methods=["GET"])
