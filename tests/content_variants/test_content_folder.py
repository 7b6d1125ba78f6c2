"""Content files are validated, and every error names the file (and line) to fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from content_variants.content_folder import load_content_folder, load_variant
from content_variants.errors import ContentError


def test_example_catalog_loads(content: Path) -> None:
    placements, errors = load_content_folder(content)
    assert errors == []
    assert {p.id for p in placements} == {"hero", "cta", "email-header"}
    hero = next(p for p in placements if p.id == "hero")
    assert [v.spec.id for v in hero.variants if v.spec.default] == ["evergreen"]


@pytest.mark.parametrize("text,expected", [
    ("id: x\ncategory: c\n", r"x\.yaml:1: field 'title' missing"),
    ("id: x\ntitle: T\ncategory: c\ncolour: red\n", r"x\.yaml:4: field 'colour' Extra inputs"),
    ("id: X\ntitle: T\ncategory: c\n", r"x\.yaml:1: field 'id'"),
    ("id: x\ntitle: T\ncategory: c\ntags: [Bad Tag]\n", r"x\.yaml:4: field 'tags'"),
    ("id: x\ntitle: T\ncategory: c\nstarts_at: 2026-02-01\nends_at: 2026-01-01\n", "ends_at"),
    ("id: x\ntitle: T\ncategory: c\nstarts_at: yesterday\n", r"x\.yaml:4: field 'starts_at'"),
    ("id: x\ntitle: [unclosed\n", r"x\.yaml:\d: not valid YAML"),
    ("- just\n- a list\n", r"x\.yaml:1: a variant file must be a mapping"),
    ('id: x\ntitle: "Sale \\u202egnp.exe"\ncategory: c\n', r"x\.yaml:2: field 'title' .*control"),
    ("id: x\ntitle: T\ncategory: c\nfields: {n: " + "9" * 5000 + "}\n", r"x\.yaml: not valid YAML"),
    ("id: x\ntitle: T\ncategory: c\nstarts_at: 2026-13-45T00:00:00Z\n", r"x\.yaml: not valid YAML"),
    ("id: x\ntitle: T\ncategory: c\nfields: " + "[" * 40 + "]" * 40 + "\n",
     r"x\.yaml:4: not valid YAML/JSON: nested deeper than 32"),
    # A lone surrogate (an escape in JSON or YAML) is not text: once a crash of the publish
    # (nested), or a key silently rendered as replacement characters (at the top).
    ('{"id": "x", "title": "T", "category": "c", "fields": {"a": [{"\\ud800": 1}]}}',
     r"x\.yaml:1: field 'fields' holds text that is not Unicode \(a lone surrogate\)"),
    ('{"id": "x", "title": "T", "category": "c", "fields": {"\\udfff": 1}}',
     r"x\.yaml:1: field 'fields' holds text that is not Unicode"),
    ('id: x\ntitle: T\ncategory: c\nfields: {a: "b\\ud800"}\n',
     r"x\.yaml:4: field 'fields' holds text that is not Unicode"),
])
def test_bad_variant_files_name_file_line_and_field(tmp_path: Path, text: str,
                                                    expected: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(ContentError, match=expected):
        load_variant(path)


def test_a_bad_file_does_not_stop_its_neighbours(content: Path, write) -> None:
    write("hero/broken.yaml", "id: broken\n")
    write("hero/dup.yaml", "id: evergreen\ntitle: Again\ncategory: c\n")
    placements, errors = load_content_folder(content)
    messages = [str(e) for e in errors]
    assert any("broken.yaml:1: field 'title' missing" in m for m in messages)
    assert any("variant id 'evergreen' is also used by" in m and "dup.yaml" in m
               and "evergreen.yaml" in m for m in messages)
    hero = next(p for p in placements if p.id == "hero")
    assert {v.spec.id for v in hero.variants} == {"evergreen", "trail-running",
                                                  "winter-camping", "climbing-es"}
    assert len(hero.variants) == 4


def test_folder_rules(content: Path, write) -> None:
    write("Bad Name/_template.json.j2", "{}")
    write("no-template/a.yaml", "id: a\ntitle: A\ncategory: c\n")
    write("cta/second-default.yaml", "id: second\ntitle: S\ncategory: c\ndefault: true\n")
    placements, errors = load_content_folder(content)
    messages = " | ".join(str(e) for e in errors)
    assert "Bad Name: folder name is not a valid placement id" in messages
    assert "no-template: placement has no _template.json.j2" in messages
    assert "more than one variant is marked default" in messages
    assert {p.id for p in placements} == {"hero", "email-header"}


def test_missing_or_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match="does not exist"):
        load_content_folder(tmp_path / "nope")
    with pytest.raises(ContentError, match="no placement folders"):
        load_content_folder(tmp_path)


@pytest.mark.parametrize("field,value", [
    ("id", "x/../../../events/evil"),
    ("id", "Evil-Variant"),
    ("id", "\u0435vergreen"),  # Cyrillic "е": looks like "evergreen"
    ("id", "ok\n"),
    ("category", "promo/../../x"),
    ("category", "Promo"),
])
def test_identifiers_must_match_whole(tmp_path: Path, field: str, value: str) -> None:
    """A pattern that is searched rather than fully matched let these through."""
    path = tmp_path / "x.yaml"
    fields = {"id": "x", "title": "T", "category": "c", field: value}
    path.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in fields.items()))
    line = list(fields).index(field) + 1
    with pytest.raises(ContentError, match=rf"x\.yaml:{line}: field '{field}'.*invalid"):
        load_variant(path)
