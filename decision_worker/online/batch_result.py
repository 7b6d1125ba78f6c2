"""What one batch did (batch.py), and the running sums a worker keeps of it."""

from __future__ import annotations

from dataclasses import dataclass, field

from decision_worker.online.experiment_arms import ArmEngagement


@dataclass
class BatchResult:
    applied: int = 0
    duplicates: int = 0
    late: int = 0
    decisions: int = 0  # user × placement records written
    users_decided: int = 0
    holdout: int = 0
    suppressed: int = 0  # events of forgotten users, not applied
    opted_out: int = 0  # events of users who opted out (or the opt-out itself)
    conflicts: int = 0  # compare-and-set retries (another worker wrote a profile first)
    latencies: list[float] = field(default_factory=list)  # received → decision written, s
    # Clicks and conversions of users in an experiment's arm (experiment_arms.py), for the
    # arm counters; per batch only (`add` does not sum them).
    arm_engagement: list[ArmEngagement] = field(default_factory=list)

    def add(self, other: BatchResult, keep_latencies: int = 100_000) -> None:
        """Running sums (the last `keep_latencies` latencies only)."""
        for name in ("applied", "duplicates", "late", "decisions", "users_decided", "holdout",
                     "suppressed", "opted_out", "conflicts"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.latencies.extend(other.latencies)
        del self.latencies[:-keep_latencies]
