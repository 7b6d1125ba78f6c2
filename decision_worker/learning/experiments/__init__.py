"""Rollouts' analysis: pure statistics over per-arm totals a controller keeps (no Redis, no
I/O). `arm_totals` (what is kept per arm, the delta method), `lift` (lift against control
with intervals), `sample_ratio` (sample-ratio mismatch), `confidence_sequence` and
`guardrail` (always-valid tests, safe to peek at), `ramp` (the one rule that advances, holds
or rolls back a rollout)."""
