"""Rendering runs in jinja2's sandbox and yields compact, content-addressed JSON."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from content_variants.catalog import VariantSpec
from content_variants.errors import ContentError
from content_variants.render import Renderer

SPEC = VariantSpec(id="spring", title='Spring "sale" <b>', category="promo",
                   fields={"headline": "Blüten"})


def render(tmp_path: Path, template: str, max_bytes: int = 65536) -> bytes:
    path = tmp_path / "_template.json.j2"
    path.write_text(template)
    renderer = Renderer(max_bytes)
    return renderer.render(renderer.compile(path), path, "hero", tmp_path / "spring.yaml",
                           SPEC).body


def test_renders_compact_json_with_a_stable_digest(tmp_path: Path) -> None:
    template = '{\n  "title": {{ variant.title | tojson }},\n  "h": {{ variant.fields.headline | tojson }}\n}'
    path = tmp_path / "_template.json.j2"
    path.write_text(template)
    renderer = Renderer(65536)
    out = renderer.render(renderer.compile(path), path, "hero", tmp_path / "s.yaml", SPEC)
    assert json.loads(out.body) == {"title": 'Spring "sale" <b>', "h": "Blüten"}
    assert b"\n" not in out.body
    assert out.digest == hashlib.sha256(out.body).hexdigest()[:16]
    assert out.object_key == f"content/hero/variant-spring.{out.digest}.json"
    path.write_text(template.replace("\n", "\n\n"))  # whitespace only: same object
    again = renderer.render(renderer.compile(path), path, "hero", tmp_path / "s.yaml", SPEC)
    assert again.digest == out.digest


@pytest.mark.parametrize("template", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ variant.__class__ }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{% set x = [] %}{{ x.append(1) }}",
])
def test_sandbox_refuses_python_internals(tmp_path: Path, template: str) -> None:
    with pytest.raises(ContentError) as info:
        render(tmp_path, template)
    message = str(info.value)
    assert "_template.json.j2" in message
    assert "sandbox" in message or "unsafe" in message or "undefined" in message


def test_syntax_error_names_the_template_line(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match=r"_template.json.j2:3: template syntax error"):
        render(tmp_path, '{\n "a": 1,\n "b": {{ variant.title | tojson }\n}')


def test_undefined_field_names_the_template_line(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match=r"_template.json.j2:2: rendering spring.yaml failed"):
        render(tmp_path, '{\n "a": {{ variant.fields.missing.deeper }}\n}')


def test_output_must_be_a_json_object(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match="not JSON: .* output line 2"):
        render(tmp_path, '{\n "title": {{ variant.title }}\n}')
    with pytest.raises(ContentError, match="must be a JSON object"):
        render(tmp_path, "[1, 2]")


def test_output_size_is_limited_while_rendering(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match="larger than 1000 bytes"):
        render(tmp_path, '{"x": "{% for i in range(100000) %}aaaaaaaaaa{% endfor %}"}', 1000)
