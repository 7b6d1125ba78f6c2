"""The decision worker's settings (`edgepick worker`, `api`, `train`, `forget`, `pin`)."""

from __future__ import annotations

from dataclasses import dataclass

from edge_functions.env import (
    PREFIX,
    CommonSettings,
    HttpServerSettings,
    check_http_url,
    setting,
)
from edge_functions.errors import ConfigError

KINDS = frozenset({"view", "click", "conversion"})


@dataclass(frozen=True)
class WorkerSettings(CommonSettings, HttpServerSettings):
    decision_ttl_s: int = setting(86_400, low=1)
    # events API
    api_timeout_s: float = setting(2.0, above=0)  # a request waits on Redis, then 503
    clock_skew_s: float = setting(300.0, low=0, high=86_400)  # later event times: clamped
    traits: str | None = None  # identify traits kept (comma list); unset: privacy defaults
    admin_token: str | None = setting(None, secret=True)  # bearer of the operator routes
    dedupe_window_s: int = setting(86_400, low=1)  # a messageId seen within it: duplicate
    # deciding
    holdout_share: float = setting(0.10, low=0.0, high=1.0)  # always get the default
    ranked_size: int = setting(3, low=1, high=8)  # variants ranked per decision
    rank_limit: int = setting(500, low=1)  # larger placements: narrowed by retrieval first
    redecide_on: str = "click,conversion"  # engagement kinds that re-decide a user at once
    profile_ttl_s: int = setting(30 * 86_400, low=1)  # forgotten this long after its last write
    lateness_s: int = setting(3 * 86_400, low=1)  # events further behind: not applied
    # the stream worker
    worker_batch: int = setting(200, low=1)  # stream entries read per batch
    claim_idle_s: float = setting(30.0, above=0)  # pending this long: taken from its consumer
    max_attempts: int = setting(5, low=1)  # deliveries before a failing entry: dead letter
    redecide_share: float = setting(0.1, above=0.0, high=0.99)  # re-decide when this much TTL left
    redecide_interval_s: float = setting(60.0, above=0)  # how often the schedule is looked at
    active_window_s: int = setting(7 * 86_400, low=1)  # "active": an event within this window
    recovery_window_s: int = setting(3600, low=1)  # Redis lost its data: re-stream since
    stats_reload_s: float = setting(5.0, low=0.0)  # how stale the copy of popularity may get
    # the operator dashboard (GET /dashboard on the events API)
    edge_metrics_url: str | None = None  # the edge's /metrics (comma list: summed); unset: none
    worker_metrics_url: str | None = None  # a worker's --metrics-port URL (comma list: summed)
    dashboard_refresh_s: float = setting(3.0, low=0.2, high=300)  # how often the page polls

    @property
    def redecide_margin_s(self) -> float:
        return self.decision_ttl_s * self.redecide_share

    @property
    def redecide_kinds(self) -> frozenset[str]:
        return frozenset(k.strip() for k in self.redecide_on.split(",") if k.strip())

    def check(self) -> None:
        super().check()
        unknown = self.redecide_kinds - KINDS
        if unknown:
            raise ConfigError(f"{PREFIX}REDECIDE_ON: unknown kind(s) "
                              f"{', '.join(sorted(unknown))} (use view, click, conversion)")
        for name in ("edge_metrics_url", "worker_metrics_url"):
            for url in (getattr(self, name) or "").split(","):
                if url.strip():
                    check_http_url(name.upper(), url.strip())
        if self.admin_token is not None and len(self.admin_token) < 16:
            raise ConfigError(f"{PREFIX}ADMIN_TOKEN must be at least 16 characters")
