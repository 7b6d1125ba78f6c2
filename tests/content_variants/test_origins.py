"""Both origins write only keys of the exact content-addressed format (and the manifest copy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from content_variants.errors import OriginError
from content_variants.origin import ContentOrigin, origin_from_url
from object_store.folder import FolderStore
from tests.conftest import BUCKET

GOOD = "content/hero/variant-spring.0123456789abcdef.json"
BAD = [
    "content/hero/../../events/evil.json",
    "content/hero/variant-x/../../../events/evil.0123456789abcdef.json",
    "content/Hero/variant-spring.0123456789abcdef.json",
    "content/hero/variant-Evil.0123456789abcdef.json",
    "content/hero/variant-spring.0123456789ABCDEF.json",
    "content/hero/variant-spring.0123456789abcde.json",
    "content/hero/variant-spring.0123456789abcdef.json\n",
    "content/hero/variant-\u0435vergreen.0123456789abcdef.json",
    "/etc/passwd",
    "events/dt=2026-01-01/x.jsonl",
]


@pytest.mark.parametrize("key", BAD)
def test_folder_origin_refuses_keys_that_are_not_content_addressed(tmp_path: Path,
                                                                   key: str) -> None:
    origin = ContentOrigin(FolderStore(tmp_path / "origin"))
    with pytest.raises(OriginError, match="not a content-addressed"):
        origin.put(key, b"{}")
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_folder_origin_writes_a_content_addressed_key(tmp_path: Path) -> None:
    origin = ContentOrigin(FolderStore(tmp_path / "origin"))
    origin.put(GOOD, b"{}")
    assert origin.exists(GOOD) and origin.get(GOOD) == b"{}"


def test_s3_origin_refuses_keys_that_are_not_content_addressed(s3_endpoint: str) -> None:
    import boto3

    origin = origin_from_url(f"s3://{BUCKET}/site-a")
    for key in BAD:
        with pytest.raises(OriginError, match="not a content-addressed"):
            origin.put(key, b"{}")
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=BUCKET)
    origin.put(GOOD, b"{}")
    assert origin.get(GOOD) == b"{}"
