"""What a controller keeps per arm: sums over users, enough for the delta method without
keeping per-user data in the analysis.

Users are the unit of randomisation, and one user's exposures and clicks move together (a
keen user clicks often, every time), so click-through Σclicks / Σexposures is a *ratio
metric*: its variance comes from the per-user pairs (x = exposures, y = clicks), not from
treating exposures as independent coin flips. The delta method needs only n, Σx, Σy, Σx²,
Σy² and Σxy per arm (Deng et al., "Applying the Delta Method in Metric Analytics", 2018; the
method Eppo and Statsig use for ratio metrics)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Counts = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ArmTotals:
    """Sums over the users exposed in one arm, each user contributing x = their exposures and
    y = their clicks (or whatever engagement the metric counts: conversions for a conversion
    rate). A user with no exposure is not counted.

    All fields are additive over disjoint sets of users, so they can be kept as counters.
    Kept incrementally (see `updated`), an exposure of a user who had x exposures and y
    clicks adds 1 to `exposures`, 2x + 1 to `exposures_squared` and y to
    `exposures_times_clicks` (and 1 to `users` when x was 0); a click adds 1 to `clicks`,
    2y + 1 to `clicks_squared` and x to `exposures_times_clicks`. That needs the user's own
    x and y at that moment (a per-experiment hash updated in the same script), not a scan.
    """

    arm: str
    users: int
    exposures: int
    clicks: int
    exposures_squared: int
    clicks_squared: int
    exposures_times_clicks: int

    def __post_init__(self) -> None:
        sums = (self.users, self.exposures, self.clicks, self.exposures_squared,
                self.clicks_squared, self.exposures_times_clicks)
        if min(sums) < 0:
            raise ValueError(f"arm {self.arm!r}: totals cannot be negative")
        if self.exposures < self.users:
            raise ValueError(f"arm {self.arm!r}: {self.users} users but only "
                             f"{self.exposures} exposures (each user counted has one)")

    @classmethod
    def empty(cls, arm: str) -> ArmTotals:
        return cls(arm, 0, 0, 0, 0, 0, 0)

    @classmethod
    def from_users(cls, arm: str, exposures: Counts, clicks: Counts) -> ArmTotals:
        """Totals of per-user counts (users with no exposure are left out)."""
        x = np.asarray(exposures, dtype=np.int64)
        y = np.asarray(clicks, dtype=np.int64)
        seen = x > 0
        x, y = x[seen], y[seen]
        return cls(arm, int(seen.sum()), int(x.sum()), int(y.sum()), int((x * x).sum()),
                   int((y * y).sum()), int((x * y).sum()))

    def updated(self, exposures_before: Counts, clicks_before: Counts,
                new_exposures: Counts, new_clicks: Counts) -> ArmTotals:
        """These totals after a batch: for each user the batch touched, their counts before it
        and what it added. The same arithmetic a counter script does one event at a time."""
        x0 = np.asarray(exposures_before, dtype=np.int64)
        y0 = np.asarray(clicks_before, dtype=np.int64)
        x1 = x0 + np.asarray(new_exposures, dtype=np.int64)
        y1 = y0 + np.asarray(new_clicks, dtype=np.int64)
        return ArmTotals(
            self.arm,
            self.users + int(((x0 == 0) & (x1 > 0)).sum()),
            self.exposures + int((x1 - x0).sum()),
            self.clicks + int((y1 - y0).sum()),
            self.exposures_squared + int((x1 * x1 - x0 * x0).sum()),
            self.clicks_squared + int((y1 * y1 - y0 * y0).sum()),
            self.exposures_times_clicks + int((x1 * y1 - x0 * y0).sum()),
        )


@dataclass(frozen=True)
class Estimate:
    """A point estimate and the variance of its sampling distribution."""

    value: float
    variance: float


def click_through(totals: ArmTotals) -> Estimate | None:
    """Σclicks / Σexposures with its delta-method variance, users as the unit:
    Var(ȳ/x̄) ≈ (s²_y − 2 r s_xy + r² s²_x) / (n x̄²), r = ȳ/x̄. None below 2 users."""
    n = totals.users
    if n < 2 or totals.exposures == 0:
        return None
    # n·Σa·b − Σa·Σb in integers: exact, so the variances cannot come out negative
    # through cancellation, however many users there are.
    sxx = (n * totals.exposures_squared - totals.exposures ** 2) / (n * (n - 1))
    syy = (n * totals.clicks_squared - totals.clicks ** 2) / (n * (n - 1))
    sxy = (n * totals.exposures_times_clicks - totals.exposures * totals.clicks) / (n * (n - 1))
    mean_x = totals.exposures / n
    rate = totals.clicks / totals.exposures
    variance = (syy - 2 * rate * sxy + rate * rate * sxx) / (n * mean_x * mean_x)
    return Estimate(rate, max(variance, 0.0))


def clicks_per_user(totals: ArmTotals) -> Estimate | None:
    """Mean clicks per exposed user (a plain mean over users). None below 2 users."""
    n = totals.users
    if n < 2:
        return None
    syy = (n * totals.clicks_squared - totals.clicks ** 2) / (n * (n - 1))
    return Estimate(totals.clicks / n, syy / n)
