"""`edgepick explain`: what was decided for a user, read as the edge reads it."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from decision_worker.online.decisions_api import read_decisions
from decision_worker.online.forget import published_placements
from decision_worker.settings import WorkerSettings
from edge_functions.errors import UnknownPlacement
from edge_functions.redis_client import connect_async


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
            return await read_decisions(redis, settings.key_secret_bytes, user, placements)
        finally:
            await redis.aclose()

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
    return lines
