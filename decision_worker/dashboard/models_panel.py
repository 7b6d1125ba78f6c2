"""The models panel: production and shadow from the registry's pointers, each with the
offline evaluation its card recorded at training time (its metrics, those of the production
model it was evaluated against, and the difference on the metric promotion decides on — the
offline primary metric, or the off-policy click-through `dr_ctr@1` — with its 95 % interval),
and the pointer log's latest moves (registrations, promotions, rollbacks). Also the variants
a card flagged for review (learning/content_flags.py), shown with the placements."""

from __future__ import annotations

import asyncio
from typing import Any

from decision_worker.errors import ModelError, RegistryError
from decision_worker.ranking.model_registry import ModelRegistry

SHOWN = ("ndcg@1", "ndcg@3", "auc", "coverage", "diversity")
LOG_ENTRIES = 12


class ModelsPanel:
    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self._cards: dict[str, dict[str, Any]] = {}  # artifacts never change: kept

    async def read(self) -> dict[str, Any]:
        return await asyncio.to_thread(self._read)

    def _read(self) -> dict[str, Any]:
        try:
            pointers = self.registry.pointers()
        except RegistryError as e:
            return {"error": str(e), "production": None, "shadow": None, "log": []}
        log = [{"at": e.get("at"), "pointer": e.get("pointer"), "version": e.get("version"),
                "why": e.get("why")} for e in reversed(pointers["log"][-LOG_ENTRIES:])]
        return {"error": None, "production": self._model(pointers.get("production")),
                "shadow": self._model(pointers.get("shadow")), "log": log}

    def _model(self, version: str | None) -> dict[str, Any] | None:
        if not version:
            return None
        try:
            card = self._cards.get(version) or self.registry.card(version)
        except (ModelError, RegistryError) as e:
            return {"version": version, "error": str(e)}
        self._cards[version] = card
        return summary(version, card)


def summary(version: str, card: dict[str, Any]) -> dict[str, Any]:
    """What the dashboard shows of a model card."""
    metrics = card.get("metrics") or {}
    primary = str(card.get("primary", "ndcg@1"))
    shown = (primary, *(m for m in SHOWN if m != primary))
    comparison = card.get("comparison") or None
    return {
        "version": version, "error": None, "trained_at": card.get("trained_at"),
        "window": card.get("window"), "primary": primary,
        "evaluated_against": card.get("production_version"),
        "metrics": {m: (metrics.get("candidate") or {}).get(m) for m in shown},
        "against": {m: (metrics.get("production") or {}).get(m) for m in shown}
        if metrics.get("production") else None,
        "comparison": None if comparison is None else {
            k: comparison.get(k) for k in ("value", "low", "high", "groups", "users")},
        "content_flags": list(card.get("content_flags") or [])}


def flagged(models: dict[str, Any]) -> dict[str, Any] | None:
    """Variants flagged for review by the production model's card, else the shadow's (as
    `edgepick flags` picks): {"version", "items": [ContentFlag as JSON, …]}."""
    for role in ("production", "shadow"):
        model = models.get(role)
        if model and not model.get("error"):
            return {"version": model["version"], "items": model["content_flags"]}
    return None
