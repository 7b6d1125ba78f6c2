"""The ramp rule: the one place that decides whether a rollout advances, holds or rolls
back. The controller calls it on every look and applies what it returns; the simulation
benchmark calls it too, so what is measured is what runs.

In order:
1. any guardrail breached (always-valid test) → roll back to 0 %, at any step;
2. at the last step (100 %) → complete: nothing is left to ramp, nor a control to compare;
3. a sample-ratio mismatch in this step → hold: the figures cannot be trusted, an operator
   must look (GrowthBook, Statsig and Eppo flag SRM rather than act on it);
4. fewer than the minimum exposures in either arm in this step → hold, gathering evidence;
5. otherwise → advance to the next step's share.
Advancing asks for enough exposures and no breach, not for a significant win: a guardrail
protects against harm; whether the model is better is the lift's question, read apart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from decision_worker.learning.experiments.guardrail import GuardrailCheck
from decision_worker.learning.experiments.sample_ratio import SampleRatioCheck

DEFAULT_STEPS = (1.0, 5.0, 20.0, 50.0, 100.0)

RampAction = Literal["advance", "hold", "roll_back", "complete"]


@dataclass(frozen=True)
class RolloutState:
    """Where a rollout stands at one look.

    steps: the treatment's share of traffic at each step, in per cent, increasing, ending at
    100; step_index: the current step; treatment_exposures / control_exposures: exposures
    of each arm since this step began; min_exposures: what each arm needs in a step before
    it may advance; guardrails: each guardrail's check on the totals so far; sample_ratio:
    the check of this step's users per arm against this step's shares."""

    steps: tuple[float, ...]
    step_index: int
    treatment_exposures: int
    control_exposures: int
    min_exposures: int
    guardrails: tuple[GuardrailCheck, ...]
    sample_ratio: SampleRatioCheck

    def __post_init__(self) -> None:
        if not self.steps or self.steps[-1] != 100 or self.steps[0] <= 0 or any(
                a >= b for a, b in zip(self.steps, self.steps[1:], strict=False)):
            raise ValueError(f"steps must increase from above 0 to 100 %, got {self.steps}")
        if not 0 <= self.step_index < len(self.steps):
            raise ValueError(f"step index {self.step_index} outside {len(self.steps)} steps")
        if min(self.treatment_exposures, self.control_exposures, self.min_exposures) < 0:
            raise ValueError("exposures cannot be negative")

    @property
    def share(self) -> float:
        return self.steps[self.step_index]


@dataclass(frozen=True)
class RampDecision:
    """share: the treatment's share of traffic to serve from now on, in per cent."""

    action: RampAction
    share: float
    reason: str


def decide_ramp(state: RolloutState) -> RampDecision:
    """What to do with the rollout now (see the module docstring for the order)."""
    here = f"step {state.step_index + 1}/{len(state.steps)} ({state.share:g} %)"
    breached = [check for check in state.guardrails if check.breached]
    if breached:
        why = "; ".join(check.describe() for check in breached)
        return RampDecision("roll_back", 0.0, f"{here}: guardrail breached, rolling back: {why}")
    if state.step_index == len(state.steps) - 1:
        return RampDecision("complete", state.share, f"{here}: rollout complete")
    if state.sample_ratio.mismatch:
        return RampDecision("hold", state.share, f"{here}: holding, "
                            f"{state.sample_ratio.describe()}; check assignment and exposure "
                            "logging")
    short = {arm: n for arm, n in (("treatment", state.treatment_exposures),
                                   ("control", state.control_exposures))
             if n < state.min_exposures}
    if short:
        counts = ", ".join(f"{arm} {n:,}" for arm, n in short.items())
        return RampDecision("hold", state.share, f"{here}: gathering exposures ({counts} of "
                            f"{state.min_exposures:,} per arm)")
    following = state.steps[state.step_index + 1]
    checks = "; ".join(check.describe() for check in state.guardrails) or "no guardrails set"
    return RampDecision("advance", following, f"{here} → {following:g} %: "
                        f"{state.treatment_exposures:,} treatment and "
                        f"{state.control_exposures:,} control exposures, "
                        f"{state.sample_ratio.describe()}; {checks}")
