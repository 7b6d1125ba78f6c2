"""Every Redis key the publishing side writes besides the manifest (`edge_functions.keys`).

Each has a TTL: locks expire if their publisher dies, replay markers after twice the
signature tolerance.
"""

from __future__ import annotations

# One hash tag for the publisher's own keys, apart from the manifest's and users'.
PUBLISH_LOCK_PREFIX = "{ep:publish}:lock:"  # + placement; value: a random token; PX
HOOK_SEEN_PREFIX = "{ep:hooks}:seen:"  # + scheme ":" + sha256 of the signature; EX


def publish_lock_key(placement: str) -> str:
    return PUBLISH_LOCK_PREFIX + placement


def hook_seen_key(scheme: str, digest: str) -> str:
    return f"{HOOK_SEEN_PREFIX}{scheme}:{digest}"
