"""Hostile content found by fuzzing `edgepick publish`: every case ends, within its limits,
as one `file:line: reason`, and nothing of a failing variant is published."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from redis import Redis

from edge_functions.keys import MANIFEST_KEY
from edge_functions.manifest import parse_bytes

HERO_FIELDS = "fields: {headline: h, image: i, link: l}\n"


def variant_objects(settings) -> list[str]:
    root = settings.origin_dir / "content"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.json")) if root.exists() else []


def hostile_placement(write, template: str) -> None:
    write("promo/_template.json.j2", template)
    write("promo/base.yaml", "id: base\ntitle: B\ncategory: c\ndefault: true\n")


@pytest.mark.parametrize("template,line,reason", [
    (('{\n"a": 1\n{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}'
      '{% endfor %}\n}'), 3, r"used more than 2 s of CPU"),
    ('{\n\n"a": {{ 10 ** 100000000 }}\n}', 3, r"refused by the sandbox: .*too large"),
    ('{"a": "\n{{ \'a\' * 10**12 }}"}', 2, r"refused by the sandbox: repeating a str"),
    ('{"a": [\n{{ [1, 2] * 10**9 }}\n]}', 2, r"refused by the sandbox: repeating a list"),
    ('{\n"a": "{{ \'a\' | center(10**9) }}"}', 2, r"ran out of memory"),
    ('{% macro m() %}{{ m() }}{% endmacro %}\n{"a": "{{ m() }}"}', 1, r"recursion"),
])
def test_hostile_templates_fail_with_the_template_line(
        origin_server, redis: Redis, publish_content, content: Path, write,
        template: str, line: int, reason: str) -> None:
    hostile_placement(write, template)
    started = time.monotonic()
    report = publish_content(origin_server, content)
    assert time.monotonic() - started < 30
    failed = [f for f in report.failed if "promo" in f]
    assert re.search(rf"promo/_template\.json\.j2:{line}: rendering base\.yaml .*{reason}",
                     failed[0]), report.failed
    assert len(report.uploaded) == 10  # the example catalog still publishes
    assert not any("promo" in key for key in variant_objects(origin_server))
    assert "promo" not in parse_bytes(redis.get(MANIFEST_KEY)).placements


def test_yaml_alias_bomb_is_refused_at_its_line(origin_server, redis: Redis, publish_content,
                                                 content: Path, write) -> None:
    """Nine levels of nine aliases: a billion strings once the template walks `fields`."""
    laughs = ['  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        laughs.append(f"  {name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    write("hero/_template.json.j2", '{"t": {{ variant.title | tojson }}, '
          '"f": {{ variant.fields | tojson }}}')
    write("hero/bomb.yaml", "id: bomb\ntitle: Boom\ncategory: c\nfields:\n"
          + "\n".join(laughs) + "\n")
    report = publish_content(origin_server, content)
    assert len(report.failed) == 1, report.failed
    assert re.search(r"hero/bomb\.yaml:5: not valid YAML/JSON: anchors and aliases",
                     report.failed[0]), report.failed
    assert len(report.uploaded) == 10


def test_fifo_and_links_out_of_the_folder_are_not_read(origin_server, redis: Redis,
                                                       publish_content, content: Path,
                                                       tmp_path: Path) -> None:
    os.mkfifo(content / "hero" / "pipe.yaml")  # opening it for reading would block forever
    (content / "hero" / "zero.yaml").symlink_to("/dev/zero")
    (content / "cta" / "passwd.yaml").symlink_to("/etc/passwd")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "_template.json.j2").write_text("{}")
    (content / "linked").symlink_to(outside)
    started = time.monotonic()
    report = publish_content(origin_server, content)
    assert time.monotonic() - started < 30
    failed = "\n".join(report.failed)
    assert re.search(r"hero/pipe\.yaml: not read: not a regular file", failed), failed
    assert re.search(r"hero/zero\.yaml: not read: a link that leads outside", failed), failed
    assert re.search(r"cta/passwd\.yaml: not read: a link that leads outside", failed), failed
    assert re.search(r"content/linked: not read: a link that leads outside", failed), failed
    assert len(report.failed) == 4 and len(report.uploaded) == 10


def test_a_link_inside_the_content_folder_is_read(origin_server, redis: Redis, publish_content,
                                                  content: Path, write) -> None:
    write("shared/extra.yaml", "id: extra\ntitle: E\ncategory: c\n" + HERO_FIELDS)
    (content / "hero" / "extra.yaml").symlink_to(content / "shared" / "extra.yaml")
    report = publish_content(origin_server, content)
    assert "hero/extra" in report.uploaded


def test_a_variant_file_larger_than_the_limit_is_refused(origin_server, redis: Redis,
                                                         publish_content, content: Path,
                                                         write) -> None:
    write("hero/huge.yaml", "id: huge\ntitle: H\ncategory: c\n" + HERO_FIELDS
          + "# " + "x" * 300_000 + "\n")
    report = publish_content(origin_server, content)
    assert any(re.search(r"hero/huge\.yaml: file is larger than 262144 bytes", f)
               for f in report.failed), report.failed


def publish_with(settings, redis: Redis, content: Path, limits):
    from content_variants.origin import ContentOrigin
    from content_variants.prewarm import Prewarmer
    from content_variants.publish import publish
    from object_store.folder import FolderStore

    prewarmer = Prewarmer(settings.cdn_base, 5.0)
    try:
        return publish(content, redis, ContentOrigin(FolderStore(settings.origin_dir)), prewarmer,
                       limits.max_variant_bytes, limits=limits)
    finally:
        prewarmer.close()


def test_whole_publish_time_limit_publishes_nothing(origin_server, redis: Redis,
                                                    content: Path, write) -> None:
    from content_variants.limits import PublishLimits

    # Each of the 6 renders takes about 0.3 s of CPU here: well under the per-render limit
    # (1 s), together well over the whole publish's (0.5 s), on a fast machine or a slow one.
    slow = ('{"a": 1{% for i in range(100000) %}{% for j in range(45) %}{% endfor %}'
            '{% endfor %}}')
    for name in ("cta", "email-header"):
        write(f"{name}/_template.json.j2", slow)
    limits = PublishLimits(render_cpu_s=1.0, publish_timeout_s=0.5)
    started = time.monotonic()
    report = publish_with(origin_server, redis, content, limits)
    assert time.monotonic() - started < 15
    assert any("publish stopped: it took longer than EDGEPICK_PUBLISH_TIMEOUT_S=0.5 s"
               in f for f in report.failed), report.failed
    assert report.uploaded == [] and variant_objects(origin_server) == []
    assert redis.get(MANIFEST_KEY) is None


def test_too_many_variant_files_refuse_the_whole_publish(origin_server, redis: Redis,
                                                         content: Path) -> None:
    from content_variants.errors import ContentError
    from content_variants.limits import PublishLimits

    with pytest.raises(ContentError, match=r"more than 5 variant files"):
        publish_with(origin_server, redis, content, PublishLimits(max_variants=5))
    assert redis.get(MANIFEST_KEY) is None


def test_a_render_child_that_stops_answering_is_killed_and_replaced(tmp_path: Path) -> None:
    from content_variants.content_folder import TemplateSource, VariantSpec
    from content_variants.errors import ContentError
    from content_variants.limits import PublishLimits
    from content_variants.render import Renderer

    spec = VariantSpec(id="v", title="T", category="c")
    template = TemplateSource(tmp_path / "_template.json.j2", '{"t": {{ variant.title|tojson }}}')
    with Renderer(PublishLimits(render_cpu_s=0.2)) as renderer:
        renderer.render(template, "p", spec, "v.yaml:1")
        child = renderer._child
        assert child is not None
        os.kill(child.process.pid, signal.SIGSTOP)  # as stuck as a process can be
        with pytest.raises(ContentError, match=r"_template\.json\.j2: rendering v\.yaml took "
                                               r"longer than 1\.6 s \(stopped\)"):
            renderer.render(template, "p", spec, "v.yaml:1")
        assert child.process.poll() is not None  # killed
        # A template that hit a limit is not tried again; others render in a new child.
        with pytest.raises(ContentError, match=r"not rendered: the template hit its limits"):
            renderer.render(template, "p", spec, "w.yaml:1")
        other = TemplateSource(tmp_path / "other.j2", '{"o": {{ variant.id|tojson }}}')
        assert renderer.render(other, "p", spec, "v.yaml:1").body == b'{"o":"v"}'


def test_a_runaway_template_is_stopped_once_not_once_per_variant(
        origin_server, redis: Redis, publish_content, content: Path, write) -> None:
    write("cta/_template.json.j2", '{\n{% for i in range(100000) %}{% for j in range(100000) %}'
          '{% endfor %}{% endfor %}}')
    started = time.monotonic()
    report = publish_content(origin_server, content)
    assert time.monotonic() - started < 15  # one CPU limit (2 s), not three
    cta = [f for f in report.failed if "cta/" in f]
    assert len([f for f in cta if "used more than 2 s of CPU" in f]) == 1
    assert len([f for f in cta if "not rendered: the template hit its limits" in f]) == 2
    assert len(report.uploaded) == 7


def test_publishing_the_example_catalog_stays_fast(origin_server, redis: Redis,
                                                   publish_content, content: Path) -> None:
    report = publish_content(origin_server, content)
    assert report.ok and report.seconds < 3.0, report.seconds
