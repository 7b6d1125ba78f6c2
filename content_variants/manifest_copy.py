"""The durable copy of the manifest on the origin (`manifest/current.json`).

Redis may lose its data (a restart without persistence, a failover to an empty replica).
The manifest is the one piece of publishing state that cannot be rebuilt from a content
folder alone (other folders, the CMS hook and `unpublish` all changed it), so every document
the publisher writes is also kept on the origin, the same JSON, after each successful
change. A publish that finds no manifest in Redis starts from this copy and says so.

Two publishers can finish in either order; after writing, the copy is compared with Redis's
revision and rewritten from Redis until it holds the latest document.
"""

from __future__ import annotations

import json
from typing import Any

from redis import Redis

from content_variants.errors import ManifestError, OriginError
from content_variants.object_keys import MANIFEST_COPY_KEY
from content_variants.origin import ContentOrigin
from edge_functions.errors import CorruptRecord
from edge_functions.keys import MANIFEST_KEY
from edge_functions.manifest import parse_document

Document = dict[str, Any]
MAX_REWRITES = 3


class ManifestCopyFailed(OriginError):
    """The manifest was written to Redis, but its durable copy could not be."""

    def __init__(self, doc: Document, error: Exception) -> None:
        super().__init__(f"manifest rev {doc['rev']} was written, but its durable copy "
                         f"({MANIFEST_COPY_KEY}) was not: {error}")
        self.doc = doc


def read(origin: ContentOrigin) -> Document | None:
    """The copy on the origin, None if there is none; ManifestError if it is corrupt."""
    raw = origin.get(MANIFEST_COPY_KEY)
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
        parse_document(doc)
    except (ValueError, CorruptRecord) as e:
        raise ManifestError(f"the manifest copy {origin.describe()}/{MANIFEST_COPY_KEY} is "
                            f"corrupt ({e}); refusing to build on it") from e
    result: Document = doc
    return result


def write(origin: ContentOrigin, redis: Redis, doc: Document) -> None:
    """Copy `doc` to the origin; then make sure no newer document in Redis was overtaken."""
    try:
        for _ in range(MAX_REWRITES):
            origin.put(MANIFEST_COPY_KEY, json.dumps(doc, separators=(",", ":")).encode())
            raw = redis.get(MANIFEST_KEY)
            latest = json.loads(raw) if raw is not None else None
            if latest is None or latest.get("rev", 0) <= doc["rev"]:
                return
            doc = latest
    except (OriginError, ValueError) as e:
        raise ManifestCopyFailed(doc, e) from e
