"""The serving layer's settings (`edgepick serve`), read from the environment once."""

from __future__ import annotations

from dataclasses import dataclass

from edge_functions.env import CommonSettings, HttpServerSettings, setting


@dataclass(frozen=True)
class ServingSettings(CommonSettings, HttpServerSettings):
    store_budget_ms: float = setting(15.0, above=0)  # per request; slower → the default
    breaker_failures: int = setting(5, low=1)  # consecutive store faults open the circuit
    breaker_cooldown_s: float = setting(2.0, above=0)
    manifest_refresh_s: float = setting(1.0, above=0)  # how often the revision is polled
    exposure_buffer: int = setting(10_000, low=1)  # exposures queued at most; more: dropped
    exposure_flush_s: float = setting(1.0, above=0)  # sent alone after this when no lookup
    serve_origin: bool = False  # also serve the folder origin under /content/ (local mode)
