"""`edgepick rollout status` as text: a few lines per rollout, from the same documents the
dashboard reads (decision_worker/learning/experiments/status.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from redis import Redis


def rollout_documents(redis: Redis, experiment_id: str | None) -> list[dict[str, Any]]:
    from decision_worker.learning.experiments.status import rollout_documents as documents

    return documents(redis, experiment_id)


def personalization_document(redis: Redis) -> dict[str, Any]:
    from decision_worker.learning.experiments.status import personalization_document as doc

    return doc(redis)


def personalization_lines(doc: dict[str, Any]) -> Iterator[str]:
    """The lift of personalization itself: users served as usual against the holdout."""
    yield "personalization vs the persistent holdout:"
    yield from _figure_lines(doc)
    yield from _placement_lines(doc)


def _figure_lines(figures: dict[str, Any], indent: str = "  ") -> Iterator[str]:
    """Each arm's counts and both rates (95 % intervals), and the lifts."""
    for arm, arm_figures in figures["arms"].items():
        yield (f"{indent}{arm:9s} {arm_figures['users']:,} users, "
               f"{arm_figures['exposures']:,} exposures, {arm_figures['clicks']:,} clicks, "
               f"click-through {_rate(arm_figures, 'click_through', 'low', 'high')}, "
               f"{arm_figures['conversions']:,} conversions, conversion rate "
               f"{_rate(arm_figures, 'conversion_rate', 'conversion_low', 'conversion_high')}")
    for label, key, name in (("lift", "lift_now", "click-through"),
                             ("", "conversion_lift_now", "conversion rate")):
        lift = figures[key]
        yield f"{indent}{label:9s} " + (f"{name}: not yet measurable" if lift is None
                                        else lift["describe"])


def _placement_lines(figures: dict[str, Any]) -> Iterator[str]:
    """The same figures for each placement, indented under it."""
    for placement, placed in figures.get("placements", {}).items():
        yield f"  placement {placement}:"
        yield from _figure_lines(placed, "    ")


def _rate(figures: dict[str, Any], rate: str, low: str, high: str) -> str:
    value = figures[rate]
    return "n/a" if value is None else f"{value:.3%} [{figures[low]:.3%}, {figures[high]:.3%}]"


def rollout_lines(docs: list[dict[str, Any]], history: int = 5) -> Iterator[str]:
    """A few lines per rollout, its latest `history` audit entries last."""
    if not docs:
        yield "no rollouts: start one with `edgepick rollout start MODEL`"
    for doc in docs:
        steps = ",".join(f"{s:g}" for s in doc["steps"])
        share = ("100 %" if doc["status"] == "complete" else f"{doc['share']:g} %") + \
            f" of {steps}" + (": production now" if doc["status"] == "complete" else "")
        yield (f"{doc['id']}: {doc['treatment_model']} vs {doc['control_model'] or 'baseline'}"
               f", {doc['status']}, step {doc['step_index'] + 1}/{len(doc['steps'])} "
               f"({share})")
        figures = doc["analysis"]
        yield from _figure_lines(figures)
        if figures["srm"] is not None:
            yield f"  {figures['srm']['describe']}"
        for check in figures["guardrails"]:
            yield f"  guardrail {check['describe']}"
        yield from _placement_lines(figures)
        for entry in figures["history"][-history:]:
            yield f"  {entry['at']} {entry['action']}: {entry['reason']}"
