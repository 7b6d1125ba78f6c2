"""Publishing to S3 through boto3, against moto's S3 server reached via AWS_ENDPOINT_URL."""

from __future__ import annotations

from pathlib import Path

import boto3
from redis import Redis

from content_variants.origin import origin_from_url
from content_variants.prewarm import Prewarmer
from content_variants.publish import publish
from edge_functions.keys import MANIFEST_KEY
from edge_functions.manifest import parse_bytes
from object_store.s3 import S3Store
from tests.conftest import BUCKET


def test_publish_to_s3_writes_content_addressed_objects_with_cache_headers(
        s3_endpoint: str, redis: Redis, content: Path) -> None:
    origin = origin_from_url(f"s3://{BUCKET}/site-a")
    assert isinstance(origin.store, S3Store)
    # moto serves objects path-style without auth, so it can stand in for the CDN here.
    prewarmer = Prewarmer(f"{s3_endpoint}/{BUCKET}/site-a", 5)
    report = publish(content, redis, origin, prewarmer, 65536)
    prewarmer.close()
    assert report.ok, report.failed
    s3 = boto3.client("s3")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert "site-a/manifest/current.json" in keys  # the durable copy, rewritten on change
    copy = s3.head_object(Bucket=BUCKET, Key="site-a/manifest/current.json")
    assert copy["CacheControl"] == "no-cache"
    keys.remove("site-a/manifest/current.json")
    assert len(keys) == 10
    assert all(k.startswith("site-a/content/") and k.endswith(".json") for k in keys)
    url = parse_bytes(redis.get(MANIFEST_KEY)).placements["hero"].urls["evergreen"]
    key = "site-a/" + url.split("/site-a/", 1)[1]
    assert key in keys
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentType"] == "application/json; charset=utf-8"
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert b'"variant":"evergreen"' in body

    # Republishing unchanged content touches no object.
    versions_before = {o["Key"]: o["LastModified"] for o in
                       s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    prewarmer = Prewarmer(f"{s3_endpoint}/{BUCKET}/site-a", 5)
    again = publish(content, redis, origin, prewarmer, 65536)
    prewarmer.close()
    assert again.uploaded == [] and len(again.unchanged) == 10
    assert {o["Key"]: o["LastModified"] for o in
            s3.list_objects_v2(Bucket=BUCKET)["Contents"]} == versions_before


def test_missing_bucket_is_a_clear_error(s3_endpoint: str, redis: Redis, content: Path) -> None:
    origin = origin_from_url("s3://no-such-bucket")
    prewarmer = Prewarmer(f"{s3_endpoint}/no-such-bucket", 5)
    report = publish(content, redis, origin, prewarmer, 65536)
    prewarmer.close()
    assert not report.ok
    assert any("s3://no-such-bucket" in line for line in report.failed)
    assert redis.get(MANIFEST_KEY) is None
