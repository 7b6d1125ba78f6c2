"""Every Redis key edgepick uses, and the pseudonymization of user ids.

Decision keys are `ep:d:{<user tag>}:<placement>`: the user tag is a Redis Cluster hash tag,
so all placements of one user live in one slot and a page's lookups are one MGET.
The tag is HMAC-SHA256(deployment secret, user id), truncated to 128 bits and base64url
encoded: the clear user id never reaches the store, and without the secret it cannot be
recovered or even tested for.
"""

from __future__ import annotations

import base64
import hmac

DECISION_PREFIX = "ep:d:"
# Both manifest keys share the hash tag "{ep:manifest}" so one MULTI can write them on a cluster.
MANIFEST_KEY = "{ep:manifest}:doc"
MANIFEST_REV_KEY = "{ep:manifest}:rev"

# Exposures of experiment arms, as served: the edge appends them in batches in the same round
# trip as its decision lookups; the worker consumes them (its own hash tag, "{ep:exp}").
EXPOSURES_STREAM = "{ep:exp}:exposures"

USER_TAG_BYTES = 16


def user_tag(secret: bytes, user_id: str) -> str:
    digest = hmac.digest(secret, user_id.encode("utf-8", "surrogatepass"), "sha256")
    return base64.urlsafe_b64encode(digest[:USER_TAG_BYTES]).rstrip(b"=").decode("ascii")


def decision_key(tag: str, placement: str) -> str:
    return f"{DECISION_PREFIX}{{{tag}}}:{placement}"
