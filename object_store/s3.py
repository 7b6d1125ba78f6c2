"""S3 as the object store, through boto3 (which honours AWS_ENDPOINT_URL and the usual
AWS_* variables). A single PUT is atomic in S3; S3 cannot append. Calls are bounded in time
(connect and read timeouts, three attempts), so an unreachable store is a `StoreError`, not
a hang."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from object_store.store import StoreError

CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=30,
                       retries={"max_attempts": 3, "mode": "standard"})
MISSING = ("404", "NoSuchKey", "NotFound")


class S3Store:
    supports_append = False

    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self._s3 = client if client is not None else boto3.client("s3", config=CLIENT_CONFIG)

    def _fail(self, what: str, key: str, error: Exception) -> StoreError:
        return StoreError(f"{what} s3://{self.bucket}/{self.prefix}{key} failed: {error}")

    def get(self, key: str) -> bytes | None:
        try:
            body: bytes = self._s3.get_object(Bucket=self.bucket,
                                              Key=self.prefix + key)["Body"].read()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in MISSING:
                return None
            raise self._fail("read of", key, e) from e
        except BotoCoreError as e:
            raise self._fail("read of", key, e) from e
        return body

    def put(self, key: str, data: bytes, *, content_type: str | None = None,
            cache_control: str | None = None) -> None:
        extra = {name: value for name, value in (("ContentType", content_type),
                                                 ("CacheControl", cache_control)) if value}
        try:
            self._s3.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data, **extra)
        except (ClientError, BotoCoreError) as e:
            raise self._fail("write to", key, e) from e

    def exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self.bucket, Key=self.prefix + key)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in MISSING:
                return False
            raise self._fail("lookup of", key, e) from e
        except BotoCoreError as e:
            raise self._fail("lookup of", key, e) from e
        return True

    def keys(self, prefix: str) -> list[str]:
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix)
            found = [obj["Key"][len(self.prefix):] for page in pages
                     for obj in page.get("Contents", [])]
        except (ClientError, BotoCoreError) as e:
            raise self._fail("listing of", prefix, e) from e
        return sorted(found)

    def append(self, key: str, data: bytes) -> None:
        raise NotImplementedError("S3 objects cannot be appended to: write one per batch")

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"
