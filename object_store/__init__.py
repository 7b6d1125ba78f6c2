"""One object store for everything edgepick keeps on `EDGEPICK_ORIGIN`: rendered variants
(`content/`), the manifest copy (`manifest/`), the event log (`events/`) and the model
registry (`models/`). A folder or S3, side by side behind one interface (store.py); the
packages that use it (content_variants, decision_worker) add their own rules on top, such as
which keys may be written. The serving path never imports it."""

from __future__ import annotations

from urllib.parse import urlsplit

from edge_functions.errors import ConfigError
from object_store.store import ObjectStore


def from_url(url: str) -> ObjectStore:
    """`file://DIR` → FolderStore, `s3://bucket/prefix` → S3Store (boto3 imported only
    then)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        from object_store.folder import FolderStore

        return FolderStore(url[len("file://"):])
    if parts.scheme == "s3" and parts.netloc:
        from object_store.s3 import S3Store

        return S3Store(parts.netloc, parts.path.strip("/"))
    raise ConfigError(f"origin {url!r}: use file://DIR or s3://bucket/prefix")
