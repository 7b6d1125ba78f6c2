"""Rendering runs in jinja2's sandbox, in a limited child process, and yields compact,
content-addressed JSON; every failure names the template (or variant) line."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from content_variants.content_folder import TemplateSource, VariantSpec
from content_variants.errors import ContentError
from content_variants.limits import PublishLimits
from content_variants.render import Renderer

SPEC = VariantSpec(id="spring", title='Spring "sale" <b>', category="promo",
                   fields={"headline": "Blüten"})


@pytest.fixture
def renderer() -> Iterator[Renderer]:
    with Renderer(PublishLimits(render_cpu_s=1.0)) as r:
        yield r


def render(tmp_path: Path, template: str, max_bytes: int = 65536,
           renderer: Renderer | None = None) -> bytes:
    path = tmp_path / "_template.json.j2"
    if renderer is not None:
        return renderer.render(TemplateSource(path, template), "hero", SPEC,
                               f"{tmp_path / 'spring.yaml'}:1").body
    with Renderer(PublishLimits(max_variant_bytes=max_bytes, render_cpu_s=1.0)) as own:
        return own.render(TemplateSource(path, template), "hero", SPEC,
                          f"{tmp_path / 'spring.yaml'}:1").body


def test_renders_compact_json_with_a_stable_digest(tmp_path: Path, renderer: Renderer) -> None:
    template = ('{\n  "title": {{ variant.title | tojson }},\n'
                '  "h": {{ variant.fields.headline | tojson }}\n}')
    path = tmp_path / "_template.json.j2"
    out = renderer.render(TemplateSource(path, template), "hero", SPEC, "s.yaml:1")
    assert json.loads(out.body) == {"title": 'Spring "sale" <b>', "h": "Blüten"}
    assert b"\n" not in out.body
    assert out.digest == hashlib.sha256(out.body).hexdigest()[:16]
    assert out.object_key == f"content/hero/variant-spring.{out.digest}.json"
    # whitespace only: same object
    again = renderer.render(TemplateSource(path, template.replace("\n", "\n\n")), "hero", SPEC,
                            "s.yaml:1")
    assert again.digest == out.digest


@pytest.mark.parametrize("template", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ variant.__class__ }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{% set x = [] %}{{ x.append(1) }}",
    "{% include '/etc/passwd' %}",
    "{% import '/etc/hosts' as h %}",
    "{{ lipsum(1000000) }}",
])
def test_sandbox_refuses_python_internals(tmp_path: Path, renderer: Renderer,
                                          template: str) -> None:
    with pytest.raises(ContentError) as info:
        render(tmp_path, template, renderer=renderer)
    message = str(info.value)
    assert "_template.json.j2" in message
    assert any(word in message for word in ("sandbox", "unsafe", "undefined", "no loader"))


def test_syntax_error_names_the_template_line(tmp_path: Path, renderer: Renderer) -> None:
    with pytest.raises(ContentError, match=r"_template.json.j2:3: template syntax error"):
        render(tmp_path, '{\n "a": 1,\n "b": {{ variant.title | tojson }\n}', renderer=renderer)


def test_undefined_field_names_the_template_line(tmp_path: Path, renderer: Renderer) -> None:
    with pytest.raises(ContentError, match=r"_template.json.j2:2: rendering spring.yaml failed"):
        render(tmp_path, '{\n "a": {{ variant.fields.missing.deeper }}\n}', renderer=renderer)


def test_output_must_be_a_json_object(tmp_path: Path, renderer: Renderer) -> None:
    with pytest.raises(ContentError, match=r"spring.yaml:1: rendered output is not JSON: "
                                           r".* output line 2"):
        render(tmp_path, '{\n "title": {{ variant.title }}\n}', renderer=renderer)
    with pytest.raises(ContentError, match="must be a JSON object"):
        render(tmp_path, "[1, 2]", renderer=renderer)


@pytest.mark.parametrize("template", ['{"x": NaN}', '{"x": -Infinity}', '{"x": 1e400}'])
def test_output_numbers_must_be_json_numbers(tmp_path: Path, renderer: Renderer,
                                             template: str) -> None:
    # Python's json reads NaN and Infinity (and 1e400 as Infinity); a browser's does not.
    with pytest.raises(ContentError, match=r"spring.yaml:1: rendered output is not JSON: "
                                           r"NaN or Infinity"):
        render(tmp_path, template, renderer=renderer)


def test_text_that_is_not_unicode_fails_its_variant_only(tmp_path: Path,
                                                          renderer: Renderer) -> None:
    # A lone surrogate (JSON's "\\ud800", from a CMS) once made the child look hung: the
    # variant was reported as over its time limit and its template refused for the rest.
    template = TemplateSource(tmp_path / "_template.json.j2",
                              '{"h": {{ variant.fields.headline | tojson }}}')
    broken = SPEC.model_copy(update={"fields": {"headline": "a\ud800b"}})
    with pytest.raises(ContentError, match=r"s.yaml:1: rendered output is not UTF-8 text"):
        renderer.render(template, "hero", broken, "s.yaml:1")
    with pytest.raises(ContentError, match=r"s.yaml:1: rendered output is not UTF-8 text"):
        renderer.render(TemplateSource(template.path, '{"h": "\\ud800"}'), "hero", SPEC,
                        "s.yaml:1")
    assert json.loads(renderer.render(template, "hero", SPEC, "t.yaml:1").body) == \
        {"h": "Blüten"}


def test_output_size_is_limited_while_rendering(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match="larger than 1000 bytes"):
        render(tmp_path, '{"x": "{% for i in range(100000) %}aaaaaaaaaa{% endfor %}"}', 1000)
