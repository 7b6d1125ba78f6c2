"""Where rendered variants are stored: a local folder or S3. Both answer the same calls."""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlsplit

from edge_functions.errors import ConfigError

CONTENT_TYPE = "application/json; charset=utf-8"
IMMUTABLE = "public, max-age=31536000, immutable"
MUTABLE = "no-cache"  # the manifest copy: the one key that is rewritten


class Origin(Protocol):
    """An object store for immutable, content-addressed variant objects.

    `put` must be atomic: a reader sees the whole object or none (objects are fetched by
    the CDN the moment they are pre-warmed). Keys are relative, e.g. `content/hero/…json`,
    and every implementation checks them with `object_keys.check_object_key` first.
    """

    def exists(self, key: str) -> bool: ...

    def put(self, key: str, body: bytes) -> None: ...

    def get(self, key: str) -> bytes | None: ...

    def describe(self) -> str: ...


def origin_from_url(url: str) -> Origin:
    """`file://DIR` → FolderOrigin, `s3://bucket/prefix` → S3Origin (boto3 imported lazily)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        from content_variants.folder_origin import FolderOrigin

        return FolderOrigin(url[len("file://"):])
    if parts.scheme == "s3":
        from content_variants.s3_origin import S3Origin

        return S3Origin(parts.netloc, parts.path.strip("/"))
    raise ConfigError(f"origin {url!r}: use file://DIR or s3://bucket/prefix")
