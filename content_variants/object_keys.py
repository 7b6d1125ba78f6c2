"""The only keys the publisher writes to an origin, checked before every write.

Variant objects are content-addressed: `content/{placement}/variant-{variant}.{digest}.json`,
ids as in `edge_functions.identifiers`, digest the first 16 hex digits of the body's SHA-256.
The durable manifest copy is one fixed key beside them. Anything else (`..`, upper case,
look-alike letters, a trailing newline) is refused, whatever produced it.
"""

from __future__ import annotations

import re

from content_variants.errors import OriginError
from edge_functions.identifiers import ID_PATTERN

DIGEST_HEX_CHARS = 16
MANIFEST_COPY_KEY = "manifest/current.json"

_ID = ID_PATTERN.pattern
VARIANT_KEY = re.compile(
    rf"content/(?P<placement>{_ID})/variant-(?P<variant>{_ID})\.(?P<digest>[0-9a-f]{{16}})\.json",
    re.ASCII)


def variant_object_key(placement: str, variant: str, digest: str) -> str:
    return check_variant_key(f"content/{placement}/variant-{variant}.{digest}.json")


def check_variant_key(key: str) -> str:
    """`key` if it is a content-addressed variant key, else OriginError."""
    if VARIANT_KEY.fullmatch(key) is None:
        raise OriginError(f"origin key {key[:200]!r} is not a content-addressed variant key "
                          "(content/{placement}/variant-{variant}.{16 hex}.json)")
    return key


def check_object_key(key: str) -> str:
    """A key the publisher may read or write: a variant object or the manifest copy."""
    return key if key == MANIFEST_COPY_KEY else check_variant_key(key)
