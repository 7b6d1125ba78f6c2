"""Publishing: upload what is new, pre-warm it, then make it eligible in one manifest change."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import httpx
import pytest
from redis import Redis

from content_variants import manifest_writer
from content_variants.errors import ManifestError
from edge_functions.keys import MANIFEST_KEY, MANIFEST_REV_KEY
from edge_functions.manifest import parse_bytes
from tests.conftest import free_port


def objects(settings) -> dict[str, float]:
    """Variant objects on the folder origin (the manifest copy lives beside them)."""
    root = settings.origin_dir
    return {str(p.relative_to(root)): p.stat().st_mtime_ns
            for p in (root / "content").rglob("*.json")}


def test_publish_uploads_prewarms_and_makes_eligible(origin_server, redis: Redis,
                                                     publish_content, content: Path) -> None:
    report = publish_content(origin_server, content)
    assert report.ok, report.failed
    assert len(report.uploaded) == 10 and report.rev == 1
    manifest = parse_bytes(redis.get(MANIFEST_KEY))
    assert int(redis.get(MANIFEST_REV_KEY)) == manifest.rev == 1
    hero = manifest.placements["hero"]
    assert hero.default == "evergreen"
    for url in hero.urls.values():
        assert url.startswith(origin_server.cdn_base + "/content/hero/variant-")
        assert httpx.get(url).status_code == 200
    assert len(objects(origin_server)) == 10


def test_republishing_unchanged_content_uploads_nothing(origin_server, redis: Redis,
                                                        publish_content, content: Path) -> None:
    publish_content(origin_server, content)
    before = objects(origin_server)
    again = publish_content(origin_server, content)
    assert again.ok and again.uploaded == [] and len(again.unchanged) == 10
    assert not again.manifest_changed and again.rev == 1
    assert objects(origin_server) == before


def test_changed_variant_gets_a_new_immutable_url(origin_server, redis: Redis, publish_content,
                                                  content: Path) -> None:
    publish_content(origin_server, content)
    old_url = parse_bytes(redis.get(MANIFEST_KEY)).placements["cta"].urls["join"]
    path = content / "cta" / "join.yaml"
    path.write_text(path.read_text().replace("Join the club, link", "Become a member, link"))
    report = publish_content(origin_server, content)
    assert report.uploaded == ["cta/join"] and report.rev == 2
    new_url = parse_bytes(redis.get(MANIFEST_KEY)).placements["cta"].urls["join"]
    assert new_url != old_url
    assert httpx.get(old_url).json()["label"] == "Join the club"  # old object untouched
    assert httpx.get(new_url).json()["label"] == "Become a member"


def test_metadata_only_change_updates_manifest_without_upload(
        origin_server, redis: Redis, publish_content, content: Path) -> None:
    publish_content(origin_server, content)
    path = content / "cta" / "join.yaml"
    path.write_text(path.read_text().replace("category: membership", "category: loyalty"))
    before = objects(origin_server)
    report = publish_content(origin_server, content)
    assert report.metadata_updated == ["cta/join"] and report.uploaded == []
    assert objects(origin_server) == before
    doc = json.loads(redis.get(MANIFEST_KEY))
    assert doc["placements"]["cta"]["variants"]["join"]["category"] == "loyalty"


def test_a_broken_variant_is_reported_and_its_neighbours_publish(
        origin_server, redis: Redis, publish_content, content: Path, write) -> None:
    write("hero/broken.yaml", "id: broken\ntitle: Broken\ncategory: c\nfields: {}\n")
    report = publish_content(origin_server, content)
    assert len(report.uploaded) == 10
    assert len(report.failed) == 1
    assert "hero/_template.json.j2:5: rendering broken.yaml failed" in report.failed[0]
    hero = parse_bytes(redis.get(MANIFEST_KEY)).placements["hero"]
    assert "broken" not in hero.urls
    assert not any("broken" in key for key in objects(origin_server))


def test_new_placement_whose_default_fails_is_not_published(
        origin_server, redis: Redis, publish_content, content: Path, write) -> None:
    write("promo/_template.json.j2", '{"v": {{ variant.fields.text | tojson }}}')
    write("promo/base.yaml", "id: base\ntitle: B\ncategory: c\ndefault: true\n")  # no fields.text
    write("promo/extra.yaml", "id: extra\ntitle: E\ncategory: c\nfields: {text: hi}\n")
    report = publish_content(origin_server, content)
    assert any("promo: default variant 'base' did not publish" in f for f in report.failed)
    assert not any(name.startswith("promo/") for name in report.uploaded)
    assert "promo" not in parse_bytes(redis.get(MANIFEST_KEY)).placements


def test_placement_without_any_default_is_refused(origin_server, redis: Redis, publish_content,
                                                  content: Path, write) -> None:
    write("promo/_template.json.j2", "{}")
    write("promo/a.yaml", "id: a\ntitle: A\ncategory: c\n")
    report = publish_content(origin_server, content)
    assert any("promo: no variant is marked 'default: true'" in f for f in report.failed)


def test_prewarm_failure_keeps_the_variant_out_of_the_manifest(
        settings, redis: Redis, publish_content, content: Path) -> None:
    dead_cdn = f"http://127.0.0.1:{free_port()}"
    report = publish_content(dataclasses.replace(settings, cdn_base=dead_cdn), content)
    assert len(report.failed) >= 10 and report.uploaded == []
    assert all("pre-warm GET" in line for line in report.failed[:10])
    assert redis.get(MANIFEST_KEY) is None


def test_unpublish_removes_a_variant_but_not_the_default_without_replacement(
        origin_server, redis: Redis, publish_content, content: Path) -> None:
    publish_content(origin_server, content)
    doc = manifest_writer.unpublish(redis, "hero", "trail-running")
    assert "trail-running" not in doc["placements"]["hero"]["variants"] and doc["rev"] == 2
    with pytest.raises(ManifestError, match="is the default of 'hero'"):
        manifest_writer.unpublish(redis, "hero", "evergreen")
    with pytest.raises(ManifestError, match="not published"):
        manifest_writer.unpublish(redis, "hero", "trail-running")
    with pytest.raises(ManifestError, match="replacement default"):
        manifest_writer.unpublish(redis, "hero", "evergreen", replace_default="nope")
    doc = manifest_writer.unpublish(redis, "hero", "evergreen", replace_default="winter-camping")
    assert doc["placements"]["hero"]["default"] == "winter-camping"
    assert int(redis.get(MANIFEST_REV_KEY)) == 3


def test_concurrent_manifest_changes_are_not_lost(redis: Redis) -> None:
    """A change whose WATCHed document moved underneath is retried on the new document."""
    url = "http://cdn.test/content/p/variant-{}.0.json"
    manifest_writer.apply(redis, lambda d: d["placements"].update(
        {"a": {"default": "x", "variants": {"x": {"url": url.format("x")}}}}))
    interfered = []

    def change(doc: manifest_writer.Document) -> None:
        if not interfered:  # another publisher commits between our read and our write
            interfered.append(True)
            manifest_writer.apply(redis, lambda d: d["placements"].update(
                {"b": {"default": "y", "variants": {"y": {"url": url.format("y")}}}}))
        doc["placements"]["a"]["variants"]["z"] = {"url": url.format("z")}

    doc, changed = manifest_writer.apply(redis, change)
    assert changed and set(doc["placements"]) == {"a", "b"}
    assert set(doc["placements"]["a"]["variants"]) == {"x", "z"}
    assert doc["rev"] == 3


def test_corrupt_manifest_in_redis_is_not_built_upon(redis: Redis) -> None:
    redis.set(MANIFEST_KEY, b"{not json")
    with pytest.raises(ManifestError, match="corrupt"):
        manifest_writer.apply(redis, lambda d: None)


def test_invalid_ids_are_reported_and_left_out_before_any_upload(
        origin_server, redis: Redis, publish_content, content: Path, write) -> None:
    """Fuzzing found ids that were searched, not matched: one wrote outside content/, others
    uploaded objects and then made the whole manifest write fail."""
    write("hero/escape.yaml", 'id: "x/../../../events/evil"\ntitle: E\ncategory: c\n'
          "fields: {headline: h, image: i, link: l}\n")
    write("hero/upper.yaml", "title: U\nid: Evil-Variant\ncategory: c\n"
          "fields: {headline: h, image: i, link: l}\n")
    write("hero/cyrillic.yaml", "id: \u0435vergreen\ntitle: C\ncategory: c\n"
          "fields: {headline: h, image: i, link: l}\n")
    write("hero/badcat.yaml", "id: fine-id\ntitle: B\ncategory: Promo\n"
          "fields: {headline: h, image: i, link: l}\n")
    report = publish_content(origin_server, content)
    failed = "\n".join(report.failed)
    assert len(report.failed) == 4, failed
    assert re.search(r"hero/escape\.yaml:1: field 'id' .*invalid", failed)
    assert re.search(r"hero/upper\.yaml:2: field 'id' .*invalid", failed)
    assert re.search(r"hero/cyrillic\.yaml:1: field 'id' .*invalid", failed)
    assert re.search(r"hero/badcat\.yaml:3: field 'category' .*invalid", failed)
    assert len(report.uploaded) == 10 and report.manifest_changed and report.rev == 1
    assert set(parse_bytes(redis.get(MANIFEST_KEY)).placements["hero"].urls) == {
        "evergreen", "trail-running", "winter-camping", "climbing-es"}
    root = origin_server.origin_dir
    everything = [p.relative_to(root) for p in root.rglob("*") if p.is_file()]
    assert all(str(p).startswith("content/") or str(p) == "manifest/current.json"
               for p in everything), everything
    assert len(objects(origin_server)) == 10  # nothing of the refused variants


def test_failed_manifest_write_reports_the_real_state(
        origin_server, redis: Redis, publish_content, content: Path, monkeypatch) -> None:
    from rich.console import Console

    from content_variants.origin import ContentOrigin
    from edgepick.reporting import print_report
    from object_store.folder import FolderStore

    assert publish_content(origin_server, content).rev == 1
    path = content / "cta" / "join.yaml"
    path.write_text(path.read_text().replace("Join the club, link", "Become a member, link"))

    def refuse(*args, **kwargs):
        raise ManifestError("manifest kept changing under 20 attempts; try again")

    monkeypatch.setattr(manifest_writer, "apply", refuse)
    report = publish_content(origin_server, content)
    assert not report.ok and not report.manifest_changed
    assert report.rev == 1  # what Redis still holds, not 0
    console = Console(record=True, width=300)
    print_report(report, ContentOrigin(FolderStore(origin_server.origin_dir)), console)
    text = console.export_text()
    assert "manifest not written (still rev 1)" in text and "rev 0" not in text
