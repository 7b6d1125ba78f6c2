"""The manifest survives Redis losing its data: a durable copy on the origin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from redis import Redis

from content_variants import manifest_writer
from content_variants.errors import ManifestError
from content_variants.origin import ContentOrigin
from content_variants.prewarm import Prewarmer
from content_variants.publish import publish
from edge_functions.keys import MANIFEST_KEY, MANIFEST_REV_KEY
from edge_functions.manifest import parse_bytes
from object_store.folder import FolderStore
from tests.conftest import EXAMPLE_CONTENT


def only(content: Path, tmp_path: Path, placement: str) -> Path:
    """A content folder holding one placement of the example catalog."""
    import shutil

    target = tmp_path / f"only-{placement}"
    shutil.copytree(EXAMPLE_CONTENT / placement, target / placement)
    return target


def publish_folder(settings, redis: Redis, folder: Path):
    prewarmer = Prewarmer(settings.cdn_base, 5.0)
    try:
        return publish(folder, redis, ContentOrigin(FolderStore(settings.origin_dir)),
                       prewarmer, 65536)
    finally:
        prewarmer.close()


def test_every_manifest_change_is_copied_to_the_origin(origin_server, redis: Redis,
                                                       content: Path) -> None:
    report = publish_folder(origin_server, redis, content)
    copy_path = origin_server.origin_dir / "manifest" / "current.json"
    assert json.loads(copy_path.read_bytes()) == json.loads(redis.get(MANIFEST_KEY))
    manifest_writer.unpublish(redis, "hero", "trail-running",
                              origin=ContentOrigin(FolderStore(origin_server.origin_dir)))
    kept = json.loads(copy_path.read_bytes())
    assert kept["rev"] == report.rev + 1
    assert "trail-running" not in kept["placements"]["hero"]["variants"]


def test_after_redis_loses_its_data_a_publish_starts_from_the_origin_copy(
        origin_server, redis: Redis, content: Path, tmp_path: Path) -> None:
    """Before: the next publish started from an empty manifest and dropped every placement
    that was not in the folder being published."""
    first = publish_folder(origin_server, redis, content)
    assert set(first.defaults) == {"hero", "cta", "email-header"}
    redis.flushall()  # a restart without persistence
    report = publish_folder(origin_server, redis, only(content, tmp_path, "cta"))
    assert report.ok, report.failed
    manifest = parse_bytes(redis.get(MANIFEST_KEY))
    assert set(manifest.placements) == {"hero", "cta", "email-header"}
    assert manifest.rev == first.rev + 1 == int(redis.get(MANIFEST_REV_KEY))
    assert report.manifest_source == "origin copy"
    assert report.unchanged == ["cta/app-download", "cta/free-shipping", "cta/join"]


def test_an_unchanged_publish_after_data_loss_still_restores_redis(
        origin_server, redis: Redis, content: Path) -> None:
    publish_folder(origin_server, redis, content)
    redis.flushall()
    report = publish_folder(origin_server, redis, content)
    assert redis.get(MANIFEST_KEY) is not None
    assert set(parse_bytes(redis.get(MANIFEST_KEY)).placements) == {"hero", "cta",
                                                                     "email-header"}
    assert report.manifest_source == "origin copy" and report.uploaded == []


def test_the_cli_says_it_started_from_the_copy(origin_server, redis: Redis,
                                               content: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "EDGEPICK_REDIS_URL": origin_server.redis_url,
           "EDGEPICK_ORIGIN": origin_server.origin, "EDGEPICK_CDN_BASE": origin_server.cdn_base,
           "EDGEPICK_DATA_DIR": str(origin_server.data_dir)}
    publish_folder(origin_server, redis, content)
    redis.flushall()
    result = subprocess.run([sys.executable, "-m", "edgepick", "publish", str(content)],
                            check=False, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Redis had no manifest: started from the durable copy" in result.stderr
    assert "manifest rev 2" in result.stderr


def test_a_corrupt_copy_is_not_built_upon(origin_server, redis: Redis, content: Path) -> None:
    copy_path = origin_server.origin_dir / "manifest" / "current.json"
    copy_path.parent.mkdir(parents=True)
    copy_path.write_text("{not json")
    with pytest.raises(ManifestError, match="manifest copy .* is corrupt"):
        publish_folder(origin_server, redis, content)
    assert redis.get(MANIFEST_KEY) is None


def test_a_manifest_that_is_not_utf8_is_refused_with_a_message(redis) -> None:
    import pytest

    from content_variants import manifest_writer
    from content_variants.errors import ManifestError
    from edge_functions.keys import MANIFEST_KEY

    redis.set(MANIFEST_KEY, b'{"format": 1, "rev": 1, "placements": {"\xff": 1}}')
    with pytest.raises(ManifestError, match="corrupt"):
        manifest_writer.read_document(redis)
