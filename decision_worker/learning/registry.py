"""The model registry, write side: registering candidates, promotion with its rules, and
rollback (the read side, which the worker uses, is ranking/model_registry.py).

`promote` moves production only when the candidate beat the production model it was
evaluated against (on the same later window, at training time) on the primary metric (the
card's `primary`: offline, or off-policy from the decision log, pipeline.py) and
no guardrail dropped beyond its tolerance, unless forced with a reason, which is logged.
`rollback` returns to the previous production version. One operator at a time is assumed:
the pointer document is read, changed and written whole.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from decision_worker.errors import RegistryError
from decision_worker.ranking.model_registry import POINTERS, ModelRegistry
from object_store import from_url
from object_store.store import StoreError

PRIMARY = "ndcg@1"


@dataclass(frozen=True)
class Guardrails:
    auc_drop: float = 0.02  # absolute
    # Candidate coverage at least this share of production's: a model that is right more
    # often may concentrate on what is liked; a collapse onto what trends is what this
    # stops. On MovieLens trending's distinct first choices are a sixth of the baseline
    # ranker's and the learned ranker's 0.46 of them: a third sits between the two.
    coverage_ratio: float = 1 / 3
    diversity_ratio: float = 0.8  # candidate entropy at least this share of production's


def registry_from_url(origin: str) -> Registry:
    return Registry(from_url(origin))


class Registry(ModelRegistry):
    def _put(self, key: str, data: bytes) -> None:
        try:
            self.store.put(key, data, content_type="application/json")
        except StoreError as e:
            raise RegistryError(str(e)) from e

    def register(self, version: str, model_text: str, card: dict[str, Any]) -> None:
        """Store a candidate's artifacts and make it the shadow model."""
        card = {**card, "version": version,
                "model_sha256": hashlib.sha256(model_text.encode()).hexdigest()}
        self._put(f"models/{version}/model.txt", model_text.encode())
        self._put(f"models/{version}/card.json", json.dumps(card, indent=1).encode())
        self._move("shadow", version, "registered")

    def promotable(self, version: str | None = None, force_reason: str | None = None,
                   guardrails: Guardrails = Guardrails()) -> str:
        """`version` (default: the shadow model) if it may replace production: it won
        offline, or is forced with a reason. Otherwise RegistryError with every reason."""
        pointers = self.pointers()
        version = version or pointers.get("shadow")
        if not version:
            raise RegistryError("no candidate: train one first (edgepick train)")
        if version == pointers.get("production"):
            raise RegistryError(f"{version} is already the production model")
        _, card = self.load(version)
        if force_reason is None:
            refusals = promotion_refusals(card, pointers.get("production"), guardrails)
            if refusals:
                raise RegistryError(f"promotion of {version} refused: " + "; ".join(refusals))
        return str(version)

    def promote(self, version: str | None = None, force_reason: str | None = None,
                guardrails: Guardrails = Guardrails()) -> str:
        """Move production to `version` (default: the shadow model) at once, if it wins
        (`edgepick promote --now`; without it, promotion starts a rollout)."""
        version = self.promotable(version, force_reason, guardrails)
        self._move("production", version, f"forced: {force_reason}" if force_reason else
                   self.won_on(version))
        return version

    def won_on(self, version: str) -> str:
        """Why a model that passed `promotable` may serve: the metric its card decided on."""
        return f"won on {self.card(version).get('primary', PRIMARY)}"

    def promote_rolled_out(self, version: str, why: str) -> None:
        """Production becomes `version` at the end of its rollout (a no-op when it is)."""
        if self.pointers().get("production") == version:
            return
        self.load(version)  # still there and intact
        self._move("production", version, why)

    def rollback(self) -> str | None:
        pointers = self.pointers()
        if not pointers["history"]:
            raise RegistryError("nothing to roll back to: production has no earlier version")
        previous = pointers["history"][-1]
        self._move("production", previous, "rollback", pop_history=True)
        return str(previous) if previous else None

    def _move(self, pointer: str, version: str | None, why: str,
              pop_history: bool = False) -> None:
        doc = self.pointers()
        if pointer == "production":
            if pop_history:
                doc["history"].pop()
            else:
                doc["history"].append(doc.get("production"))
        doc[pointer] = version
        doc["log"].append({"at": dt.datetime.now(dt.UTC).isoformat(), "pointer": pointer,
                           "version": version, "why": why})
        doc["log"] = doc["log"][-200:]
        self._put(POINTERS, json.dumps(doc, indent=1).encode())


def promotion_refusals(card: dict[str, Any], production: str | None,
                       guardrails: Guardrails) -> list[str]:
    """Why the candidate of `card` may not replace `production` (empty: it may)."""
    metrics = card.get("metrics", {})
    mine, theirs = metrics.get("candidate"), metrics.get("production")
    if not mine or not theirs:
        return ["its card has no evaluation against production"]
    evaluated_against = card.get("production_version")
    if evaluated_against != production:
        return [f"it was evaluated against {evaluated_against or 'the baseline'}, but "
                f"production is now {production or 'the baseline'}: train again"]
    refusals = []
    primary = card.get("primary", PRIMARY)
    comparison = card.get("comparison") or {}
    low = comparison.get("low")
    if not isinstance(low, (int, float)) or math.isnan(low):
        refusals.append(f"its card has no interval for {primary}: train again")
    elif primary not in mine or primary not in theirs:
        refusals.append(f"its card has no {primary} of both models: train again")
    elif not low > 0:
        refusals.append(f"{primary} {mine[primary]:.4f} vs production's {theirs[primary]:.4f}: "
                        f"the difference's 95 % interval [{low:+.4f}, "
                        f"{comparison['high']:+.4f}] does not exclude zero or worse")
    # AUC of click prediction among the logged slates guards a model evaluated on slates;
    # one evaluated on session starts may have few slates in its test window (31 on
    # MovieLens), too few for an AUC to mean anything: there it is reported, not a gate.
    evaluated_on = card.get("evaluated_on", primary)
    if evaluated_on == "ndcg@1" and mine["auc"] < theirs["auc"] - guardrails.auc_drop:
        refusals.append(f"AUC {mine['auc']:.4f} dropped more than {guardrails.auc_drop} "
                        f"below {theirs['auc']:.4f}")
    if mine["coverage"] < theirs["coverage"] * guardrails.coverage_ratio:
        refusals.append(f"coverage {mine['coverage']:.4f} is under "
                        f"{guardrails.coverage_ratio:.0%} of {theirs['coverage']:.4f}")
    if mine["diversity"] < theirs["diversity"] * guardrails.diversity_ratio:
        refusals.append(f"diversity {mine['diversity']:.2f} bits is under "
                        f"{guardrails.diversity_ratio:.0%} of {theirs['diversity']:.2f}")
    return refusals
