"""Rollout statistics bars (issue 11), on simulated traffic, through the product's own
functions (decision_worker.learning.experiments): lift intervals, the ramp rule with its
always-valid guardrail, and the sample-ratio check.

(a) Coverage: two arms of `--users-per-arm` users (click-through 0.2 · Beta(1, 3), mean
    5 %; exposures 1 + Poisson(gamma activity), mean 4, heavy-tailed), treatment's
    click-through × (1 + `--true-lift`); share of seeds whose 95 % interval on the relative
    lift covers the true lift. Bar ≥ 90 %. The naive interval (exposures as independent
    coin flips) is shown beside it.
(b) Ramps 1, 5, 20, 50, 100 % (rollout_simulation.py): `--exposures-per-minute` across the
    site, the treatment's users hashed below its share, control a fixed half of users; a look
    every `--minutes-per-look`, guardrail "click-through drops by more than `--max-drop`" at
    alpha `--alpha`, `--min-exposures` per arm and step. A treatment 10 % worse: share of
    seeds rolled back before its share exceeds 20 % (bar ≥ 95 %); a treatment with no
    difference: share of seeds rolled back (bar ≤ 5 %).
(c) Sample-ratio mismatch at p < 0.001, 50/50 configured, `--srm-units` units: a correct
    split must not alarm in ≥ 99 % of seeds; a "1 % imbalance" must be flagged (three
    readings of it, each measured).

    flock /tmp/edgepick-bench.lock python benchmarks/rollout_statistics.py [--seeds 50]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import brentq
from scipy.stats import chi2, ncx2, norm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.rollout_simulation import (  # noqa: E402
    RolloutRun,
    Traffic,
    population,
    simulate_rollout,
    user_counts,
)
from decision_worker.learning.experiments.arm_totals import ArmTotals  # noqa: E402
from decision_worker.learning.experiments.guardrail import Guardrail  # noqa: E402
from decision_worker.learning.experiments.lift import lift_against_control  # noqa: E402
from decision_worker.learning.experiments.sample_ratio import (  # noqa: E402
    SRM_P_VALUE,
    check_sample_ratio,
)

Row = tuple[str, str, str, str]


def naive_interval(control: ArmTotals, arm: ArmTotals) -> tuple[float, float]:
    """The binomial interval that treats every exposure as independent (what not to do)."""
    rates = [t.clicks / t.exposures for t in (arm, control)]
    variance = sum((1 - r) / (r * t.exposures) for r, t in zip(rates, (arm, control),
                                                                  strict=True))
    log_lift = math.log(rates[0] / rates[1])
    spread = float(norm.ppf(0.975)) * math.sqrt(variance)
    return math.expm1(log_lift - spread), math.expm1(log_lift + spread)


def coverage(args: argparse.Namespace) -> list[Row]:
    covered = naive = 0
    widths = []
    for seed in range(args.seeds):
        rng = np.random.default_rng([1, seed])
        totals = []
        for arm, lift in (("control", 0.0), ("treatment", args.true_lift)):
            people = population(rng, args.users_per_arm)
            totals.append(ArmTotals.from_users(arm, *user_counts(rng, people, 4.0, lift)))
        estimate = lift_against_control(totals[0], totals[1])
        assert estimate is not None
        covered += estimate.relative_low <= args.true_lift <= estimate.relative_high
        low, high = naive_interval(totals[0], totals[1])
        naive += low <= args.true_lift <= high
        widths.append((estimate.relative_high - estimate.relative_low) / (high - low))
    what = (f"(a) 95 % interval covers true lift {args.true_lift:+.0%}, "
            f"{args.users_per_arm:,} users/arm")
    return [(what + " (delta method)", share(covered, args.seeds), "≥ 90 %",
             verdict(covered >= 0.9 * args.seeds)),
            ("    same, naive interval (exposures independent)", share(naive, args.seeds),
             "", ""),
            ("    delta-method width / naive width (mean)", f"{np.mean(widths):.2f}", "", "")]


def ramps(args: argparse.Namespace) -> list[Row]:
    guardrail = Guardrail("click_through", args.max_drop, args.alpha)
    traffic = Traffic(args.exposures_per_minute, args.minutes_per_look, args.pool_users,
                      args.min_exposures)
    rows: list[Row] = []
    for label, lift in (("10 % worse", -0.10), ("no difference", 0.0)):
        runs = [simulate_rollout(seed, lift, guardrail, traffic) for seed in range(args.seeds)]
        back = [r for r in runs if r.outcome == "rolled back"]
        early = sum(r.share_at_end <= 20 for r in back)
        if lift < 0:
            rows.append(("(b) 10 % worse: rolled back at a share ≤ 20 %",
                         share(early, args.seeds), "≥ 95 %", verdict(early >= 0.95 * args.seeds)))
        else:
            rows.append(("(b) no difference: rolled back", share(len(back), args.seeds),
                         "≤ 5 %", verdict(len(back) <= 0.05 * args.seeds)))
        rows.extend(ramp_details(label, runs))
    return rows


def ramp_details(label: str, runs: list[RolloutRun]) -> list[Row]:
    at_share: dict[float, int] = {}
    for run in runs:
        if run.outcome == "rolled back":
            at_share[run.share_at_end] = at_share.get(run.share_at_end, 0) + 1
    where = ", ".join(f"{k:g} %: {v}" for k, v in sorted(at_share.items())) or "none"
    ends = {o: sum(r.outcome == o for r in runs) for o in ("rolled back", "complete",
                                                           "timed out")}
    hours = np.median([r.minutes for r in runs]) / 60
    exposures = np.median([r.treatment_exposures for r in runs])
    missed = sum(r.interval_missed_truth for r in runs)
    holds = sum(r.srm_holds > 0 for r in runs)
    return [(f"    {label}: outcomes", ", ".join(f"{k} {v}" for k, v in ends.items()), "", ""),
            (f"    {label}: rolled back at share", where, "", ""),
            (f"    {label}: median hours, treatment exposures",
             f"{hours:.1f} h, {exposures:,.0f}", "", ""),
            (f"    {label}: always-valid interval ever missed truth", share(missed, len(runs)),
             "", ""),
            (f"    {label}: runs with an SRM hold", share(holds, len(runs)), "", "")]


def srm(args: argparse.Namespace) -> list[Row]:
    n = args.srm_units
    readings = (("correct split 50/50", (0.5, 0.5)),
                ("51/49 (one arm +1 point)", (0.51, 0.49)),
                ("50.5/49.5 (arms differ by 1 % of all)", (0.505, 0.495)),
                ("50/49.5 (one arm loses 1 % of its users)", (0.5 / 0.995, 0.495 / 0.995)))
    rows: list[Row] = []
    for label, truth in readings:
        draws = [np.random.default_rng([2, s]).multinomial(n, truth).tolist()
                 for s in range(args.seeds)]
        seeds = sum(check_sample_ratio(c, (1, 1)).mismatch for c in draws)
        many = np.random.default_rng(3).multinomial(n, truth, size=args.srm_draws)
        rate = np.mean([check_sample_ratio(c.tolist(), (1, 1)).mismatch for c in many])
        correct = truth == (0.5, 0.5)
        figure = f"{share(seeds, args.seeds)}; {rate:.2%} of {args.srm_draws:,} draws"
        if correct:
            rows.append((f"(c) {label}, {n:,} users: no flag", share(args.seeds - seeds,
                         args.seeds), "≥ 99 %", verdict(seeds <= 0.01 * args.seeds)))
            rows.append(("    flagged", figure, "", ""))
        else:
            needed = units_for_power(truth)
            rows.append((f"(c) {label}, {n:,} users: flagged", figure, "flagged",
                         verdict(seeds == args.seeds)))
            rows.append(("    units for 95 % power at p < 0.001", f"{needed:,.0f}", "", ""))
    rows.append(exposures_counted(args))
    return rows


def units_for_power(truth: tuple[float, float]) -> float:
    """Units at which the chi-square flags this imbalance in 95 % of draws (noncentral
    chi-square power)."""
    critical = chi2.isf(SRM_P_VALUE, 1)
    per_unit = sum((p - 0.5) ** 2 / 0.5 for p in truth)
    effect = brentq(lambda lam: ncx2.sf(critical, 1, lam) - 0.95, 1e-6, 1e4)
    return float(effect / per_unit)


def exposures_counted(args: argparse.Namespace) -> Row:
    """Correct split counted in exposures (users hashed, each with several exposures)."""
    flags = 0
    draws = min(args.srm_draws, 1000)
    for s in range(draws):
        rng = np.random.default_rng([4, s])
        people = population(rng, args.srm_units)
        exposures, _ = user_counts(rng, people, 4.0, 0.0)
        kept = np.cumsum(exposures) <= args.srm_units
        arm = people.bucket[kept] < 0.5
        counts = [int(exposures[kept][arm].sum()), int(exposures[kept][~arm].sum())]
        flags += check_sample_ratio(counts, (1, 1)).mismatch
    return (f"    correct split counted in exposures ({args.srm_units:,}): flagged",
            f"{flags / draws:.2%} of {draws:,} draws", "", "")


def share(count: int, total: int) -> str:
    return f"{count}/{total} = {count / total:.0%}"


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--users-per-arm", type=int, default=20_000)
    parser.add_argument("--true-lift", type=float, default=0.03)
    parser.add_argument("--max-drop", type=float, default=0.02)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--exposures-per-minute", type=float, default=10_000)
    parser.add_argument("--minutes-per-look", type=float, default=5)
    parser.add_argument("--min-exposures", type=int, default=40_000)
    parser.add_argument("--pool-users", type=int, default=1_000_000)
    parser.add_argument("--srm-units", type=int, default=100_000)
    parser.add_argument("--srm-draws", type=int, default=10_000)
    args = parser.parse_args()
    started = time.perf_counter()
    rows = [*coverage(args), *srm(args), *ramps(args)]
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}}  {'figure':<34}  {'bar':<8}  result")
    for what, figure, bar, result in rows:
        print(f"{what:<{width}}  {figure:<34}  {bar:<8}  {result}")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
