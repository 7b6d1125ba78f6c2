"""The publisher's settings (`edgepick publish`, `unpublish`, `hooks`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from edge_functions.env import (
    PREFIX,
    CommonSettings,
    HttpServerSettings,
    check_http_url,
    setting,
)
from edge_functions.errors import ConfigError

SECRETS = ("hook_secret", "contentful_secret", "sanity_secret", "strapi_secret")


@dataclass(frozen=True)
class PublisherSettings(CommonSettings, HttpServerSettings):
    cdn_base: str = "http://127.0.0.1:8000"  # where browsers (and pre-warm) fetch variants
    max_variant_bytes: int = setting(64 * 1024, low=1)  # a rendered variant
    prewarm_timeout_s: float = setting(5.0, above=0)
    # limits (content comes from a CMS: every dimension is bounded)
    max_source_bytes: int = setting(256 * 1024, low=1)  # one variant file or template
    max_variants: int = setting(10_000, low=1)  # variant files or hook items in one publish
    max_publish_bytes: int = setting(64 * 1024 * 1024, low=1)  # all files one publish reads
    render_cpu_s: float = setting(2.0, above=0)  # CPU time of one rendering
    render_memory_mb: int = setting(256, low=64, high=65_536)  # the render child's memory
    publish_timeout_s: float = setting(300.0, above=0)  # one publish, to its manifest write
    # CMS publish hook (POST /v1/hooks/cms); a scheme whose secret is unset is refused
    content_dir: Path | None = None  # templates the hook renders with (one folder a placement)
    hook_secret: str | None = setting(None, secret=True)  # X-Edgepick-Signature
    contentful_secret: str | None = setting(None, secret=True)  # its signing secret
    sanity_secret: str | None = setting(None, secret=True)  # its webhook secret
    strapi_secret: str | None = setting(None, secret=True)  # Authorization: Bearer …
    hook_tolerance_s: int = setting(300, low=1)  # signed timestamps further off: refused
    hook_max_body_bytes: int = setting(1024 * 1024, low=1)
    hook_max_items: int = setting(100, low=1)  # variants one request publishes or unpublishes
    hook_concurrency: int = setting(4, low=1)  # publishes the hook runs at once; more: 503
    cms_mapping: Path | None = None  # JSON/YAML file: CMS entry fields → variant fields
    cms_locale: str = "en-US"  # the locale picked from Contentful's locale-keyed fields

    def check(self) -> None:
        super().check()
        check_http_url("CDN_BASE", self.cdn_base)
        for name in SECRETS:
            secret = getattr(self, name)
            if secret is not None and len(secret.encode("utf-8")) < 16:
                raise ConfigError(f"{PREFIX}{name.upper()} must be at least 16 bytes")
        if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*", self.cms_locale):
            raise ConfigError(f"{PREFIX}CMS_LOCALE={self.cms_locale!r} is not a locale such "
                              "as en-US")
