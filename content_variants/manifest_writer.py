"""The manifest, write side: atomic read-modify-write of the document in Redis.

Each change is one optimistic transaction (WATCH the document, compute the new one, MULTI
SET document + revision, EXEC; retry if another publisher got there first), so concurrent
publishes of different placements never lose each other's work and readers never see a
half-applied publish. Every new document is checked with the edge's own parser before it
is written: the publisher cannot write a manifest the edge would refuse.

Given the origin, a change also keeps the durable copy there (`manifest_copy`), and builds
on that copy when Redis has lost the manifest.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from redis import Redis
from redis.exceptions import RedisError, WatchError

from content_variants import manifest_copy
from content_variants.errors import ManifestError
from content_variants.origin import ContentOrigin
from content_variants.render import RenderedVariant
from edge_functions.errors import CorruptRecord
from edge_functions.keys import MANIFEST_KEY, MANIFEST_REV_KEY
from edge_functions.manifest import FORMAT, parse_document

Document = dict[str, Any]
MAX_ATTEMPTS = 20


def empty_document() -> Document:
    return {"format": FORMAT, "rev": 0, "placements": {}}


def read_document(redis: Redis) -> Document:
    raw = redis.get(MANIFEST_KEY)
    return empty_document() if raw is None else _decode(raw)


def read_current(redis: Redis, origin: ContentOrigin | None) -> tuple[Document, str]:
    """The document a change builds on, and where it came from: "redis", "origin copy"
    (Redis has none, the origin keeps one) or "empty"."""
    raw = redis.get(MANIFEST_KEY)
    if raw is not None:
        return _decode(raw), "redis"
    kept = manifest_copy.read(origin) if origin is not None else None
    return (kept, "origin copy") if kept is not None else (empty_document(), "empty")


def apply(redis: Redis, change: Callable[[Document], None],
          origin: ContentOrigin | None = None) -> tuple[Document, bool]:
    """Apply `change` (which mutates a copy and may raise ManifestError) atomically.

    Returns the resulting document and whether anything changed (no change → no write,
    no new revision). With `origin`, an empty Redis is restored from the origin's copy
    (even when `change` changes nothing) and the copy is rewritten after each change
    (ManifestCopyFailed if that fails: the Redis write stands).
    """
    with redis.pipeline() as pipe:
        for _ in range(MAX_ATTEMPTS):
            try:
                pipe.watch(MANIFEST_KEY)  # type: ignore[no-untyped-call]
                raw = pipe.get(MANIFEST_KEY)
                if raw is not None:
                    current = _decode(raw)
                else:
                    kept = manifest_copy.read(origin) if origin is not None else None
                    current = kept if kept is not None else empty_document()
                new = copy.deepcopy(current)
                change(new)
                if new == current and (raw is not None or current["rev"] == 0):
                    pipe.unwatch()
                    return current, False
                new["rev"] = current["rev"] + 1
                try:
                    parse_document(new)
                except CorruptRecord as e:
                    raise ManifestError(f"refusing to write an invalid manifest: {e}") from e
                pipe.multi()
                pipe.set(MANIFEST_KEY, json.dumps(new, separators=(",", ":")))
                pipe.set(MANIFEST_REV_KEY, new["rev"])
                pipe.execute()
            except WatchError:
                continue
            if origin is not None:
                manifest_copy.write(origin, redis, new)
            return new, True
    raise ManifestError(f"manifest kept changing under {MAX_ATTEMPTS} attempts; try again")


def _decode(raw: bytes | str) -> Document:
    try:
        doc = json.loads(raw)
        parse_document(doc)
    except (ValueError, RecursionError, CorruptRecord) as e:  # JSON, UTF-8, nesting
        raise ManifestError(f"the manifest in Redis is corrupt ({e}); refusing to build on "
                            "it") from e
    result: Document = doc
    return result


def remove_variant(doc: Document, placement: str, variant: str,
                   replace_default: str | None = None) -> None:
    """Remove a variant from `doc`; the default only goes when `replace_default` names its
    successor. The one rule for the CLI's `unpublish` and the CMS hook."""
    entry = doc["placements"].get(placement)
    if entry is None:
        raise ManifestError(f"placement {placement!r} is not published")
    if variant not in entry["variants"]:
        raise ManifestError(f"variant {variant!r} is not published in {placement!r}")
    if replace_default is not None:
        if replace_default == variant or replace_default not in entry["variants"]:
            raise ManifestError(f"replacement default {replace_default!r} must be another "
                                f"published variant of {placement!r}")
        entry["default"] = replace_default
    if entry["default"] == variant:
        raise ManifestError(f"{variant!r} is the default of {placement!r}: name a "
                            "replacement default to unpublish it")
    del entry["variants"][variant]


def unpublish(redis: Redis, placement: str, variant: str,
              replace_default: str | None = None, origin: ContentOrigin | None = None) -> Document:
    """Remove a variant in one manifest transaction (see `remove_variant`)."""
    doc, _ = apply(redis, lambda d: remove_variant(d, placement, variant, replace_default),
                   origin)
    return doc


def current_rev(redis: Redis) -> int | None:
    """The manifest's revision in Redis now (None when Redis cannot say)."""
    try:
        raw = redis.get(MANIFEST_REV_KEY)
    except RedisError:
        return None
    return int(raw) if raw is not None else 0


def variant_entry(variant: RenderedVariant, url: str, now: str,
                  source: str | None) -> dict[str, Any]:
    """A published variant's entry in the manifest document (format in docs/contracts.md)."""
    spec = variant.spec
    entry: dict[str, Any] = {
        "url": url,
        "digest": variant.digest,
        "title": spec.title,
        "category": spec.category,
        "tags": list(spec.tags),
        "locale": spec.locale,
        "starts_at": spec.starts_at.isoformat() if spec.starts_at else None,
        "ends_at": spec.ends_at.isoformat() if spec.ends_at else None,
        "published_at": now,
    }
    if source is not None:
        entry["source"] = source
    return entry
