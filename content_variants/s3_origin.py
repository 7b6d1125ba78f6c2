"""S3 as the origin, through boto3 (which honours AWS_ENDPOINT_URL and the usual AWS_* vars)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from content_variants.errors import OriginError
from content_variants.object_keys import MANIFEST_COPY_KEY, check_object_key
from content_variants.origin import CONTENT_TYPE, IMMUTABLE, MUTABLE


class S3Origin:
    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self._s3 = client if client is not None else boto3.client("s3")

    def _key(self, key: str) -> str:
        return self.prefix + check_object_key(key)

    def exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise OriginError(f"s3://{self.bucket}/{self._key(key)}: {e}") from e
        except BotoCoreError as e:
            raise OriginError(f"s3://{self.bucket}: {e}") from e
        return True

    def get(self, key: str) -> bytes | None:
        try:
            reply = self._s3.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return None
            raise OriginError(f"s3://{self.bucket}/{self._key(key)}: {e}") from e
        except BotoCoreError as e:
            raise OriginError(f"s3://{self.bucket}: {e}") from e
        body: bytes = reply["Body"].read()
        return body

    def put(self, key: str, body: bytes) -> None:
        # A single PUT is atomic in S3: the object appears whole or not at all.
        full_key = self._key(key)
        try:
            self._s3.put_object(
                Bucket=self.bucket, Key=full_key, Body=body, ContentType=CONTENT_TYPE,
                CacheControl=MUTABLE if key == MANIFEST_COPY_KEY else IMMUTABLE,
            )
        except (ClientError, BotoCoreError) as e:
            raise OriginError(f"upload to s3://{self.bucket}/{full_key} failed: {e}") from e

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"
