"""A small run of the rollout benchmark's simulation (the 50-seed figures are in
docs/benchmarks.md): the ramp rule rolls back a much worse treatment within its first two
steps and ramps an equal one to 100 %."""

from __future__ import annotations

from benchmarks.rollout_simulation import Traffic, simulate_rollout
from decision_worker.learning.experiments.guardrail import Guardrail

SMALL = Traffic(exposures_per_minute=4_000, minutes_per_look=5, pool_users=60_000,
                min_exposures=3_000)
CTR = Guardrail("click_through", max_drop=0.02)


def test_a_much_worse_treatment_is_rolled_back_early() -> None:
    for seed in range(2):
        run = simulate_rollout(seed, -0.5, CTR, SMALL)
        assert run.outcome == "rolled back"
        assert run.share_at_end <= 5.0
        assert "BREACHED" in run.reasons[-1]


def test_an_equal_treatment_is_ramped_to_100_percent() -> None:
    for seed in range(2):
        run = simulate_rollout(seed, 0.0, CTR, SMALL)
        assert (run.outcome, run.share_at_end) == ("complete", 100.0)
        assert [r.split(" → ")[1].split(" ")[0] for r in run.reasons[:-1]] == [
            "5", "20", "50", "100"]
