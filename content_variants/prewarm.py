"""Pre-warm: fetch each new object through the CDN before the manifest makes it eligible.

A GET through the CDN base URL puts the object in the edge cache, so the first real user
gets a cache hit; and it proves the URL works end to end (origin reachable, object whole:
the body's digest must match its content address).
"""

from __future__ import annotations

import hashlib

import httpx

from content_variants.errors import PrewarmError
from content_variants.object_keys import DIGEST_HEX_CHARS


class Prewarmer:
    def __init__(self, cdn_base: str, timeout_s: float) -> None:
        self.cdn_base = cdn_base.rstrip("/")
        self._client = httpx.Client(timeout=timeout_s, follow_redirects=False)

    def url_for(self, object_key: str) -> str:
        return f"{self.cdn_base}/{object_key}"

    def warm(self, object_key: str, digest: str) -> str:
        """GET the object through the CDN; returns the cache status the CDN reported."""
        url = self.url_for(object_key)
        try:
            response = self._client.get(url)
        except httpx.HTTPError as e:
            raise PrewarmError(f"pre-warm GET {url} failed: {e}") from e
        if response.status_code != 200:
            raise PrewarmError(f"pre-warm GET {url} answered {response.status_code}")
        if hashlib.sha256(response.content).hexdigest()[:DIGEST_HEX_CHARS] != digest:
            raise PrewarmError(f"pre-warm GET {url} returned a body that does not match "
                               f"its digest {digest}")
        return response.headers.get("x-cache-status", "-")

    def close(self) -> None:
        self._client.close()
