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

MAX_BODY_BYTES = 1024 * 1024  # variants are at most EDGEPICK_MAX_VARIANT_BYTES


class Prewarmer:
    def __init__(self, cdn_base: str, timeout_s: float,
                 max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.cdn_base = cdn_base.rstrip("/")
        self._client = httpx.Client(timeout=timeout_s, follow_redirects=False)
        self._max_body_bytes = max_body_bytes

    def url_for(self, object_key: str) -> str:
        return f"{self.cdn_base}/{object_key}"

    def warm(self, object_key: str, digest: str) -> str:
        """GET the object through the CDN; returns the cache status the CDN reported."""
        url = self.url_for(object_key)
        body = bytearray()
        try:
            with self._client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise PrewarmError(f"pre-warm GET {url} answered {response.status_code}")
                # Read no more than a variant can be: a misbehaving CDN cannot flood memory.
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > self._max_body_bytes:
                        raise PrewarmError(f"pre-warm GET {url} returned more than "
                                           f"{self._max_body_bytes} bytes")
        except httpx.HTTPError as e:
            raise PrewarmError(f"pre-warm GET {url} failed: {e}") from e
        if hashlib.sha256(body).hexdigest()[:DIGEST_HEX_CHARS] != digest:
            raise PrewarmError(f"pre-warm GET {url} returned a body that does not match "
                               f"its digest {digest}")
        return str(response.headers.get("x-cache-status", "-"))

    def close(self) -> None:
        self._client.close()
