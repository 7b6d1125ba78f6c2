"""The manifest, read side: placement → default variant and variant → CDN URL.

The publisher (content_variants) writes one JSON document under MANIFEST_KEY and bumps
MANIFEST_REV_KEY in the same MULTI. The edge keeps the parsed document per process and a
background task polls the revision (one small GET a second); requests never wait on a
refresh, so there is no stampede when the manifest changes.

A store that has no manifest document at all (restarted empty, a failover to a fresh
replica, a FLUSHALL) has lost it; nobody published an empty one. The edge then keeps
serving the last good manifest (from memory, or its local snapshot at start-up), reports
`missing`, and takes the next document written, whatever its revision: after a wipe the
publisher counts again from 1. A document that really drops a placement is a publish, and
is installed like any other.

Document shape (format 1):
    {"format": 1, "rev": 7, "placements": {
        "hero": {"default": "spring", "variants": {
            "spring": {"url": "https://cdn/…/variant-spring.3f2a….json", "digest": "3f2a…",
                       "title": "…", "category": "…", "tags": [], "locale": null,
                       "starts_at": null, "ends_at": null}}}}}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from redis.asyncio import Redis
from redis.exceptions import RedisError

from edge_functions.errors import CorruptRecord
from edge_functions.identifiers import is_valid_id
from edge_functions.keys import MANIFEST_KEY, MANIFEST_REV_KEY

FORMAT = 1
log = logging.getLogger("edgepick.manifest")


@dataclass(frozen=True, slots=True)
class PlacementUrls:
    default: str
    default_url: str
    urls: dict[str, str]  # variant id → URL, the default included
    # The same URLs encoded once, as the hot path puts them in a Location header.
    default_location: bytes
    locations: dict[str, bytes]


@dataclass(frozen=True, slots=True)
class Manifest:
    rev: int
    placements: dict[str, PlacementUrls]


EMPTY = Manifest(rev=0, placements={})


def parse_document(doc: Any) -> Manifest:
    """Validate a manifest document and reduce it to what serving needs."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CorruptRecord(f"manifest is not a format-{FORMAT} document")
    rev = doc.get("rev")
    raw_placements = doc.get("placements")
    if not isinstance(rev, int) or not isinstance(raw_placements, dict):
        raise CorruptRecord("manifest lacks 'rev' or 'placements'")
    placements: dict[str, PlacementUrls] = {}
    for placement, entry in raw_placements.items():
        if not is_valid_id(placement) or not isinstance(entry, dict):
            raise CorruptRecord(f"manifest placement {placement!r} is invalid")
        variants = entry.get("variants")
        default = entry.get("default")
        if not isinstance(variants, dict) or not isinstance(default, str) \
                or default not in variants:
            raise CorruptRecord(f"manifest placement {placement!r} has no published default")
        urls: dict[str, str] = {}
        for variant, meta in variants.items():
            url = meta.get("url") if isinstance(meta, dict) else None
            if not is_valid_id(variant) or not _is_location(url):
                raise CorruptRecord(f"manifest variant {placement}/{variant} is invalid")
            urls[variant] = url
        locations = {variant: url.encode("latin-1") for variant, url in urls.items()}
        placements[placement] = PlacementUrls(default, urls[default], urls, locations[default],
                                              locations)
    return Manifest(rev, placements)


def _is_location(url: object) -> TypeGuard[str]:
    """An http(s) URL that can go into a Location header as it is: printable ASCII, no
    spaces (a CR or LF would split the header; uvicorn refuses to send it at all)."""
    return isinstance(url, str) and url.isascii() and url.isprintable() and " " not in url \
        and url.startswith(("http://", "https://"))


def parse_bytes(raw: bytes | str) -> Manifest:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as e:  # JSON, UTF-8 and nesting errors alike
        raise CorruptRecord(f"manifest is not JSON: {e}") from e
    return parse_document(doc)


def parse_rev(raw: bytes | str | None) -> int:
    if raw is None:
        return 0
    try:
        return int(raw)
    except ValueError as e:
        raise CorruptRecord(f"manifest revision {raw[:20]!r} is not an integer") from e


async def load_raw(redis: Redis) -> bytes | None:
    raw = await redis.get(MANIFEST_KEY)
    return raw.encode() if isinstance(raw, str) else raw


class ManifestCache:
    """The process's copy of the manifest, refreshed in the background.

    With a `snapshot_path`, every newly loaded document is also kept on local disk, so a
    process that starts while Redis is down still knows every placement's default.
    """

    def __init__(self, redis: Redis, refresh_s: float, snapshot_path: Path | None = None,
                 on_change: Callable[[Manifest], object] | None = None) -> None:
        self._redis = redis
        self._refresh_s = refresh_s
        self._snapshot_path = snapshot_path
        self._on_change = on_change
        self.current: Manifest = EMPTY
        self.loaded = False  # a manifest (from the store or the snapshot) is being served
        self.missing = False  # the store had no manifest document at the last refresh
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def refresh(self) -> None:
        """One refresh: a GET of the revision, and the document only when it changed (or
        while the store has none)."""
        rev = parse_rev(await self._redis.get(MANIFEST_REV_KEY))
        if self.loaded and not self.missing and rev == self.current.rev:
            return
        raw = await load_raw(self._redis)
        if raw is None:
            self._set_missing(True)
            return
        manifest = parse_bytes(raw)
        self._set_missing(False)
        self._install(manifest)
        if self._snapshot_path is not None:
            _write_atomically(self._snapshot_path, raw)

    def _set_missing(self, missing: bool) -> None:
        if missing and not self.missing and self.loaded:  # (start() reports the other case)
            log.warning("the store has no manifest; serving the last good one (rev %d) until "
                        "a publish writes one", self.current.rev)
        self.missing = missing

    def _install(self, manifest: Manifest) -> None:
        self.current = manifest
        self.loaded = True
        log.info("manifest rev %d loaded: %d placements", manifest.rev, len(manifest.placements))
        if self._on_change is not None:
            self._on_change(manifest)

    def _load_snapshot(self) -> bool:
        if self._snapshot_path is None or not self._snapshot_path.exists():
            return False
        try:
            self._install(parse_bytes(self._snapshot_path.read_bytes()))
        except (OSError, CorruptRecord) as e:
            log.warning("manifest snapshot %s unusable: %s", self._snapshot_path, e)
            return False
        return True

    async def _run(self) -> None:
        while not self._stopping:
            try:
                # Bounded: a frozen store must not stall the poller past its recovery.
                async with asyncio.timeout(max(5.0, 5 * self._refresh_s)):
                    await self.refresh()
            except TimeoutError:
                log.warning("manifest refresh timed out; keeping the manifest loaded")
            except (RedisError, OSError, CorruptRecord) as e:
                # Keep serving the last good manifest; say so once per failed refresh.
                log.warning("manifest refresh failed: %s", e)
            await asyncio.sleep(self._refresh_s)

    async def start(self) -> None:
        reason = "the store has no manifest"
        try:
            await asyncio.wait_for(self.refresh(), timeout=5.0)
        except (RedisError, OSError, CorruptRecord, TimeoutError) as e:
            reason = str(e) or type(e).__name__
        if not self.loaded:
            from_snapshot = self._load_snapshot()
            log.warning("manifest not loaded from Redis at start-up (%s); %s", reason,
                        "serving the local snapshot" if from_snapshot else "retrying")
        self._task = asyncio.create_task(self._run(), name="manifest-refresh")

    async def stop(self) -> None:
        # The flag as well as the cancel: a cancel that lands inside a Redis call can come
        # back as a Redis timeout error (Python 3.11's asyncio.timeout), which the loop
        # survives by design; without the flag, shutdown would wait for it forever.
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
