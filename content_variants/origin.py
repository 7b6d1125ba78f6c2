"""The content origin: rendered variants and the manifest copy, on the shared object store
(`object_store`, a folder or S3). Only the keys in `object_keys.py` are ever written, checked
here before every call, whatever produced them. Variant objects are immutable
(`Cache-Control: public, max-age=31536000, immutable`), the manifest copy is rewritten."""

from __future__ import annotations

from content_variants.errors import OriginError
from content_variants.object_keys import MANIFEST_COPY_KEY, check_object_key
from object_store import from_url
from object_store.store import ObjectStore, StoreError

CONTENT_TYPE = "application/json; charset=utf-8"
IMMUTABLE = "public, max-age=31536000, immutable"
MUTABLE = "no-cache"  # the manifest copy: the one key that is rewritten


class ContentOrigin:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def exists(self, key: str) -> bool:
        try:
            return self.store.exists(check_object_key(key))
        except StoreError as e:
            raise OriginError(str(e)) from e

    def get(self, key: str) -> bytes | None:
        try:
            return self.store.get(check_object_key(key))
        except StoreError as e:
            raise OriginError(str(e)) from e

    def put(self, key: str, body: bytes) -> None:
        try:
            self.store.put(check_object_key(key), body, content_type=CONTENT_TYPE,
                           cache_control=MUTABLE if key == MANIFEST_COPY_KEY else IMMUTABLE)
        except StoreError as e:
            raise OriginError(str(e)) from e

    def describe(self) -> str:
        return self.store.describe()


def origin_from_url(url: str) -> ContentOrigin:
    return ContentOrigin(from_url(url))
