"""`edgepick explain`: what was decided for a user, read as the edge reads it, and why: the
first slot's exploration probability and the features that moved its score most."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from decision_worker.online.decisions_api import explain_decisions, read_decisions
from decision_worker.online.forget import published_placements
from decision_worker.ranking.contributions import Explainer
from decision_worker.ranking.model_registry import ModelRegistry
from decision_worker.settings import WorkerSettings
from edge_functions.errors import UnknownPlacement
from edge_functions.redis_client import connect_async
from object_store import from_url


def explain(settings: WorkerSettings, user: str, placement: str | None
            ) -> dict[str, dict[str, Any] | None]:
    """What was decided for USER, per published placement (or the one named)."""
    async def run() -> dict[str, dict[str, Any] | None]:
        assert settings.redis_url is not None
        redis = connect_async(settings.redis_url, timeout_s=10, retries=1)
        try:
            placements = await published_placements(redis)
            if placement is not None:
                if placement not in placements:
                    raise UnknownPlacement(f"no published placement {placement!r}")
                placements = [placement]
            read_back = await read_decisions(redis, settings.key_secret_bytes, user,
                                             placements)
        finally:
            await redis.aclose()
        return await explain_decisions(read_back, Explainer(ModelRegistry(from_url(
            settings.origin))))

    return asyncio.run(run())


def explanation_lines(found: dict[str, dict[str, Any] | None]) -> list[str]:
    lines = []
    for name, decision in found.items():
        if decision is None:
            lines.append(f"{name}: no decision (the edge serves the default)")
        elif "error" in decision:
            lines.append(f"{name}: unreadable decision ({decision['error']})")
        else:
            at = dt.datetime.fromtimestamp(decision["decided_at"], dt.UTC)
            lines.append(f"{name}: {', '.join(decision['ranked'])}  (model "
                         f"{decision['model_version']}, arm {decision['arm']}, decided "
                         f"{at:%Y-%m-%d %H:%M:%S}Z)")
            lines += _why_lines(decision)
    return lines


def _why_lines(decision: dict[str, Any]) -> list[str]:
    exploration = decision.get("exploration")
    lines = []
    if exploration is not None:
        how = "explored: drawn at random" if exploration["explored"] else "the ranker's choice"
        lines.append(f"  first slot: {how}, probability {exploration['propensity']:.4g}")
    contributions = decision.get("contributions")
    if contributions:
        terms = ", ".join(f"{k} {v:+.4g}" for k, v in contributions.items())
        lines.append(f"  moved by ({decision.get('contributions_from')}): {terms}")
    elif "contributions_from" in decision:
        lines.append(f"  no contributions: {decision['contributions_from']}")
    return lines
