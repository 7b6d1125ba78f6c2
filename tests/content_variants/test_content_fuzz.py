"""Content folders generated hostile (tests/fuzzing.py): placement folders of any name,
variant files in YAML or JSON with mutated fields, YAML's anchors, aliases, merge keys and
Python tags, several documents, deep nesting, oversized or non-UTF-8 files, duplicate ids,
several defaults, links leading out; templates that try the sandbox's walls, loop, repeat,
name what is not there, or output what is not a JSON object.

Each layer in process, with the generated cases of the profile: loading (every problem one
`file[:line]: reason`, clean files load) and rendering, with one long-lived render child
(a JSON object within the limit, content-addressed, or one named failure; no sandbox escape
renders; the child keeps serving). Then a share of the cases through the whole `publish()`
on a real Redis, the folder origin and a served origin for the pre-warm: it never raises,
every problem is a line naming its file, the origin holds only content-addressed JSON
objects the manifest points at, the edge parses the manifest, and clean variants beside
broken ones are published.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from redis import Redis

from content_variants.content_folder import (
    TEMPLATE_NAME,
    TemplateSource,
    VariantSpec,
    load_content_folder,
)
from content_variants.errors import ContentError
from content_variants.limits import PublishLimits
from content_variants.object_keys import DIGEST_HEX_CHARS, MANIFEST_COPY_KEY, VARIANT_KEY
from content_variants.origin import ContentOrigin
from content_variants.prewarm import Prewarmer
from content_variants.publish import Publisher
from content_variants.render import RenderedVariant, Renderer
from edge_functions.identifiers import is_valid_id
from edge_functions.keys import MANIFEST_KEY
from edge_functions.manifest import parse_document
from object_store.folder import FolderStore
from tests.conftest import Settings, free_port
from tests.content_variants.variant_strategies import FIELD_VALUES
from tests.fuzzing import FUZZ, fuzz_share, hostile_text, json_values

# Small limits, so that oversized files and runaway templates cost an example little.
LIMITS = PublishLimits(max_variant_bytes=4096, max_source_bytes=8192, render_cpu_s=0.25)
CLEAN = {"title": "Clean", "category": "promo", "tags": ["seasonal"],
         "fields": {"headline": "H", "image": "/i.jpg", "link": "/l"}}
GOOD_TEMPLATE = """{
  "placement": {{ placement | tojson }},
  "variant": {{ variant.id | tojson }},
  "title": {{ variant.title | tojson }},
  "headline": {{ variant.fields.headline | tojson }},
  "link": {{ variant.fields.link | tojson }},
  "tags": {{ variant.tags | list | tojson }}
}"""
# Templates that reach for what the sandbox keeps out: none may ever render.
ESCAPES = (
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    '{"a": {{ variant.__class__ | string | tojson }}}',
    '{"a": {{ cycler.__init__.__globals__ | string | tojson }}}',
    '{"a": {{ self.__init__.__globals__ | string | tojson }}}',
    '{"a": {{ range.__self__ | string | tojson }}}',
    '{"a": {{ (variant | attr("__class__")) | string | tojson }}}',
    '{"a": {{ placement.__class__.__base__.__subclasses__() | length }}}',
    '{"a": {{ config | string | tojson }}}',
    '{"a": {{ request | string | tojson }}}',
    "{% set x = [] %}{{ x.append(1) }}{\"a\": 1}",
    '{% set d = {} %}{{ d.update({"a": 1}) }}{"a": 1}',
    "{% include '/etc/passwd' %}",
    "{% import '/etc/hosts' as h %}{\"a\": 1}",
    "{% extends '/etc/passwd' %}",
    "{% from 'x' import y %}{\"a\": 1}",
    '{"a": {{ lipsum(3) | tojson }}}',
    '{"a": {{ "{0.__class__}".format(1) | tojson }}}',
    '{"a": {{ "%s" | format(variant.__init__) | tojson }}}',
)
# Templates that run into the render child's CPU or memory limit: the only ones that may.
RUNAWAYS = (
    '{"a": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"}',
    '{"a": "{{ \'x\'.center(10**9) }}"}',
)
HOSTILE_TEMPLATES = ESCAPES + RUNAWAYS + (
    '{"a": "{% for i in range(10**9) %}x{% endfor %}"}',
    '{"a": "{{ \'a\' * 10**9 }}"}', '{"a": {{ [1] * 10**9 }}}', '{"a": {{ 10 ** 10 ** 10 }}}',
    '{"a": "{{ \'x\' * 5000 }}"}',
    '{"a": "{% for i in range(100000) %}yyyyyyyyyy{% endfor %}"}',
    '{% macro r(n) %}{{ r(n) }}{% endmacro %}{"a": "{{ r(1) }}"}',
    '{"a": {{ undefined_name }}}', '{"a": {{ variant.nope.deeper }}}', "{{ 1 / 0 }}",
    "not json at all", "[1, 2]", '"a string"', '{"a": NaN}', '{"a": -Infinity}',
    '{"a": 1e400}', '{"a": "\\ud800"}', '{"a": {{ "\\ud800" | tojson }}}',
    '{"a": ' + "[" * 3000 + "]" * 3000 + "}", '{"a": 1} {"b": 2}', '{"a": 1, "a": 2}',
    "{% if %}", "{{ }}", "{% for %}", "{% raw %}", "{{ variant.title }}", "",
    '{"t": {{ variant.title | tojson }}, "f": {{ variant.fields | tojson }}}',
    '{"p": {{ placement | tojson }}, "x": "\u202e\x00"}', "\ufeff{}",
)


LIMIT_MESSAGES = ("took longer", "hit its limits", "out of memory", "of CPU")


# -- generated content ---------------------------------------------------------------------


@st.composite
def variant_dicts(draw: st.DrawFn, variant_id: str) -> dict[str, Any]:
    """A clean variant with one to three fields hostile or missing; never a default (the
    folders decide their defaults themselves)."""
    variant = {"id": variant_id, **CLEAN}
    names = [name for name in FIELD_VALUES if name != "default"]
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(names))
        if draw(st.integers(0, 5)):
            variant[name] = draw(FIELD_VALUES[name])
        else:
            variant.pop(name, None)
    return variant


# YAML a safe loader must refuse or read as data, never as Python: anchors, aliases and
# merge keys (the "billion laughs"), Python tags, other tags, several documents, directives.
YAML_ATTACKS = (
    "a: &x [1, 2]\nb: *x\n", "base: &b {title: T}\n<<: *b\n",
    "x: &a [*a]\n", "x: !!python/object/apply:os.system ['echo pwned']\n",
    "x: !!python/name:os.system\n", "x: !!python/object:collections.OrderedDict {}\n",
    "x: !!binary aGVsbG8=\n", "x: !!set {a, b}\n", "x: !!omap [a: 1]\n", "x: !custom 1\n",
    "---\nid: second\n", "...\n", "%YAML 1.1\n---\n", "x: " + "[" * 40 + "]" * 40 + "\n",
    "x: " + "9" * 5000 + "\n", "starts_at: 2026-02-30T00:00:00Z\n", "id: 0123\n",
    "tags: [yes, no, on, off]\n", "title: |\n  two\n  lines\n", "\tid: tab\n", "id: a\nid: b\n",
    "fields: {a: .nan, b: -.inf}\n", "x: \"\\ud800\"\n", "x: \"\\x00\"\n", "? [a]\n: b\n",
)


@st.composite
def variant_texts(draw: st.DrawFn, variant: dict[str, Any]) -> tuple[str, bytes]:
    """(suffix, bytes) of a variant file: YAML or JSON of `variant`, maybe with a YAML
    attack appended, cut off, made larger than the limit, or not UTF-8 at all."""
    suffix = draw(st.sampled_from([".yaml", ".yaml", ".yml", ".json"]))
    if suffix == ".json":
        text = json.dumps(variant, ensure_ascii=draw(st.booleans()), default=str)
    else:
        try:
            text = yaml.safe_dump(variant, allow_unicode=draw(st.booleans()))
        except yaml.YAMLError:  # (a lone surrogate, say)
            text = json.dumps(variant, default=str)
    data = text.encode("utf-8", "surrogatepass")
    how = draw(st.sampled_from(["as is"] * 4 + ["attack", "attack", "cut", "large",
                                                "latin-1", "bom", "nul"]))
    if how == "attack":
        data += b"\n" + draw(st.sampled_from(YAML_ATTACKS)).encode("utf-8", "surrogatepass")
    elif how == "cut":
        data = data[:draw(st.integers(0, len(data)))]
    elif how == "large":
        data += b"\n#" + b"x" * (LIMITS.max_source_bytes + draw(st.sampled_from([-64, 0, 10])))
    elif how == "latin-1":
        data += b"\nx: caf\xe9\n"
    elif how == "bom":
        data = b"\xef\xbb\xbf" + data
    else:
        data = data.replace(b"\n", b"\n\x00", 1)
    return suffix, data


@dataclass
class Placement:
    name: str
    template: str | bytes | None  # None: no template; bytes: not UTF-8 or oversized
    good: bool  # the template is GOOD_TEMPLATE: clean variants render
    files: dict[str, bytes] = field(default_factory=dict)
    clean: list[str] = field(default_factory=list)  # ids of clean variants
    defaults: int = 0  # clean variants marked default
    link_out: bool = False  # the folder itself is a link to outside the content folder

    @property
    def loads(self) -> bool:
        """Its clean variants load: a valid name, a readable template, at most one default."""
        return is_valid_id(self.name) and isinstance(self.template, str) \
            and not self.link_out and self.defaults <= 1

    @property
    def publishes(self) -> bool:
        """Its clean variants publish: it loads, renders them, and has its default."""
        return self.loads and self.good and self.defaults == 1


FOLDER_NAMES = ("hero", "cta", "email-header", "p1", "p-2", "a" * 64, "Hero", "hero!", "_x",
                "x" * 65, "h\u00e9ro", "a b", "-lead", "..x")


@st.composite
def placements(draw: st.DrawFn, name: str, publishable: bool = False) -> Placement:
    """A placement folder; `publishable`: a good template, one default and clean variants
    (beside whatever else is generated)."""
    kind = "good" if publishable else draw(st.sampled_from(
        ["good"] * 4 + ["hostile", "hostile", "text", "missing", "large", "latin-1"]))
    template: str | bytes | None = {
        "good": GOOD_TEMPLATE, "missing": None,
        "large": b"{}" + b" " * LIMITS.max_source_bytes, "latin-1": b'{"a": "caf\xe9"}',
    }.get(kind, "")
    if kind == "hostile":
        template = draw(st.sampled_from(HOSTILE_TEMPLATES))
    elif kind == "text":
        template = draw(hostile_text(60).map(lambda t: t.encode("utf-8", "replace").decode()))
    placement = Placement(name, template, kind == "good", link_out=not publishable and draw(
        st.sampled_from([False] * 15 + [True])))
    defaults = 1 if publishable else draw(st.sampled_from([1, 1, 1, 1, 0, 2]))
    for i in range(draw(st.integers(1 if publishable else 0, 3))):
        variant_id = f"clean-{i}"
        variant = {"id": variant_id, **CLEAN, "default": i < defaults}
        suffix = draw(st.sampled_from([".yaml", ".json"]))
        text = yaml.safe_dump(variant) if suffix == ".yaml" else json.dumps(variant)
        placement.files[f"{variant_id}{suffix}"] = text.encode()
        placement.clean.append(variant_id)
        placement.defaults += i < defaults
    for i in range(draw(st.integers(0, 4))):
        suffix, data = draw(variant_dicts(f"mutant-{i}").flatmap(variant_texts))
        prefix = draw(st.sampled_from(["m", "m", "m", "_m", ".m", "M"]))
        placement.files[f"{prefix}{i}{suffix}"] = data
    if draw(st.sampled_from([False] * 9 + [True])):  # files that are not variant files
        placement.files["notes.txt"] = b"\xff not read"
        placement.files["x.YAML"] = b"id: ignored\n"
    return placement


@st.composite
def content_folders(draw: st.DrawFn, publishable: bool = False) -> list[Placement]:
    """One to three placement folders; `publishable`: the first one is."""
    names = draw(st.lists(st.sampled_from(FOLDER_NAMES), min_size=1, max_size=3, unique=True))
    if publishable and not is_valid_id(names[0]):
        names[0] = "pub"
    return [draw(placements(name, publishable and i == 0)) for i, name in enumerate(names)]


def write_folder(root: Path, folder: list[Placement], outside: Path) -> None:
    root.mkdir(parents=True)
    outside.mkdir(parents=True)
    for placement in folder:
        where = outside / placement.name if placement.link_out else root / placement.name
        where.mkdir(parents=True)
        if placement.link_out:
            (root / placement.name).symlink_to(where)
        if isinstance(placement.template, str):
            (where / TEMPLATE_NAME).write_text(placement.template, "utf-8", "surrogatepass")
        elif placement.template is not None:
            (where / TEMPLATE_NAME).write_bytes(placement.template)
        for name, data in placement.files.items():
            (where / name).write_bytes(data)
    (root / "README.md").write_text("not a placement")
    (root / ".git").mkdir()
    secret = outside / "secret.yaml"
    secret.write_text("id: secret\ntitle: S\ncategory: c\n")
    if folder and not folder[0].link_out:  # a variant file that is a link leading out
        (root / folder[0].name / "linked.yaml").symlink_to(secret)


class Scratch:
    """A fresh folder per example (hypothesis replays examples), removed after it."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def __call__(self) -> Path:
        return Path(tempfile.mkdtemp(dir=self.base))


# -- what must hold ------------------------------------------------------------------------


def check_problem(line: str, root: Path) -> None:
    """`file[:line]: reason`, the file inside the content folder."""
    assert line.startswith((str(root) + "/", str(root) + ":")), line
    where, _, reason = line.partition(": ")
    assert reason.strip(), line
    number = where.removeprefix(str(root)).partition(":")[2]
    assert not number or number.isdigit(), line


def check_spec(spec: VariantSpec) -> None:
    assert is_valid_id(spec.id) and is_valid_id(spec.category)
    assert all(is_valid_id(tag) for tag in spec.tags)
    assert spec.title.isprintable() and 1 <= len(spec.title) <= 500
    json.dumps(spec.model_dump(mode="json"), allow_nan=False).encode("utf-8")


def strict_json(data: bytes) -> Any:
    """`data` read as RFC 8259 JSON, as a browser reads it: UTF-8, no NaN or Infinity."""
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(data.decode("utf-8"), parse_constant=refuse)


def check_rendered(rendered: RenderedVariant) -> None:
    assert len(rendered.body) <= LIMITS.max_variant_bytes
    assert isinstance(strict_json(rendered.body), dict)
    assert hashlib.sha256(rendered.body).hexdigest()[:DIGEST_HEX_CHARS] == rendered.digest
    assert VARIANT_KEY.fullmatch(rendered.object_key)


# -- loading -------------------------------------------------------------------------------


def test_any_content_folder_loads_its_clean_variants_and_names_every_problem(
        tmp_path: Path) -> None:
    scratch = Scratch(tmp_path)

    @FUZZ
    @given(folder=st.booleans().flatmap(content_folders))
    def load(folder: list[Placement]) -> None:
        base = scratch()
        root = base / "content"
        try:
            write_folder(root, folder, base / "outside")
            try:
                loaded, errors = load_content_folder(root, LIMITS)
            except ContentError as e:  # the catalog as a whole: nothing in it is usable
                check_problem(str(e), root)
                assert not any(p.loads and p.clean for p in folder), e
                return
            for error in errors:
                check_problem(str(error), root)
            by_name = {p.id: p for p in loaded}
            for placement in folder:
                if placement.loads:
                    assert placement.name in by_name, [str(e) for e in errors]
                    ids = {v.spec.id for v in by_name[placement.name].variants}
                    assert set(placement.clean) <= ids, [str(e) for e in errors]
            for source in loaded:
                assert is_valid_id(source.id)
                for variant in source.variants:
                    check_spec(variant.spec)
                    assert variant.path.resolve().is_relative_to(root.resolve())
                    assert variant.spec.id != "secret"
        finally:
            shutil.rmtree(base)

    load()


# -- rendering -----------------------------------------------------------------------------


@st.composite
def variant_specs(draw: st.DrawFn) -> VariantSpec:
    """Variants that pass validation, their free-form fields anything JSON can hold."""
    fields = draw(st.sampled_from([CLEAN["fields"], CLEAN["fields"]]) | json_values().map(
        lambda v: v if isinstance(v, dict) else {"headline": v, "link": v}))
    variant = {"id": "spring", **CLEAN, "fields": fields,
               "title": draw(st.sampled_from(["Clean", "Zoë 🙂", "\u202eevil\u202c"])
                             | hostile_text(20).map(lambda t: "".join(
                                 c for c in t if c.isprintable()) or "T")),
               "tags": draw(st.lists(st.sampled_from(["a", "b-c", "d_e"]), max_size=3))}
    try:
        return VariantSpec.model_validate(variant)
    except ValueError:  # (a title or fields validation refuses)
        return VariantSpec.model_validate({**variant, "title": "Clean", "fields": {}})


@st.composite
def template_texts(draw: st.DrawFn) -> str:
    """A hostile template, the good one, or pieces of template syntax put together."""
    pieces = st.sampled_from(["{{", "}}", "{%", "%}", "{#", "#}", "variant", ".fields",
                              "|tojson", "|list", "{", "}", '"a": ', ",", "range(9)",
                              " for x in ", "endfor", "if", "endif", "*", "**", "9" * 30,
                              "'x'", "__class__", "\n"])
    return draw(st.one_of(st.sampled_from(HOSTILE_TEMPLATES), st.just(GOOD_TEMPLATE),
                          st.lists(pieces, max_size=12).map("".join)))


@pytest.fixture
def renderer() -> Iterator[Renderer]:
    with Renderer(LIMITS) as r:
        yield r


def test_any_template_renders_a_json_object_or_fails_naming_its_line(
        tmp_path: Path, renderer: Renderer) -> None:
    good = TemplateSource(tmp_path / "good" / TEMPLATE_NAME, GOOD_TEMPLATE)
    clean = VariantSpec.model_validate({"id": "clean", **CLEAN})

    @FUZZ
    @given(text=template_texts(), specs=st.lists(variant_specs(), min_size=1, max_size=3))
    def render(text: str, specs: list[VariantSpec]) -> None:
        template = TemplateSource(tmp_path / "hero" / TEMPLATE_NAME, text)
        for i, spec in enumerate(specs):
            where = f"{tmp_path / 'hero'}/v{i}.yaml:{i + 1}"
            try:
                rendered = renderer.render(template, "hero", spec, where)
            except ContentError as e:
                assert str(e).startswith((f"{template.path}: ", f"{template.path}:",
                                          f"{where}: ")), e
                if text not in RUNAWAYS:  # no variant's data may make a template look runaway
                    assert not any(limit in str(e) for limit in LIMIT_MESSAGES), e
                continue
            assert text not in ESCAPES, rendered.body
            check_rendered(rendered)
        check_rendered(renderer.render(good, "good", clean, "clean.yaml:1"))  # still serving

    render()


# -- publishing, end to end ----------------------------------------------------------------


@dataclass
class Origin:
    settings: Settings
    publisher: Publisher
    redis: Redis

    @property
    def root(self) -> Path:
        assert self.settings.origin_dir is not None
        return self.settings.origin_dir

    def reset(self) -> None:
        self.redis.flushall()
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir()


@pytest.fixture
def origin(settings: Settings, serve: Callable[..., str], redis: Redis) -> Iterator[Origin]:
    """The folder origin, served (by the edge app) for the pre-warm."""
    port = free_port()
    settings = dataclasses.replace(settings, cdn_base=f"http://127.0.0.1:{port}")
    serve(settings, port)
    assert settings.origin_dir is not None
    settings.origin_dir.mkdir(parents=True, exist_ok=True)
    prewarmer = Prewarmer(settings.cdn_base, 5.0)
    try:
        content_origin = ContentOrigin(FolderStore(settings.origin_dir))
        yield Origin(settings, Publisher(redis, content_origin, prewarmer, LIMITS), redis)
    finally:
        prewarmer.close()


def check_origin(origin: Origin, doc: dict[str, Any]) -> None:
    """Only content-addressed JSON objects, each one a manifest entry points at."""
    referenced = {entry["url"].removeprefix(origin.settings.cdn_base + "/")
                  for placement in doc["placements"].values()
                  for entry in placement["variants"].values()}
    for path in origin.root.rglob("*"):
        key = str(path.relative_to(origin.root))
        if path.is_dir() or key == MANIFEST_COPY_KEY:
            continue
        match = VARIANT_KEY.fullmatch(key)
        assert match is not None and key in referenced, key
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest()[:DIGEST_HEX_CHARS] == match["digest"], key
        assert isinstance(strict_json(data), dict) and len(data) <= LIMITS.max_variant_bytes


def check_manifest(origin: Origin) -> dict[str, Any]:
    raw = origin.redis.get(MANIFEST_KEY)
    doc: dict[str, Any] = json.loads(raw) if raw is not None else {"format": 1, "rev": 0,
                                                                   "placements": {}}
    parse_document(doc)  # the edge's own parser
    if raw is not None:
        assert json.loads((origin.root / MANIFEST_COPY_KEY).read_bytes()) == doc
    for placement, entry in doc["placements"].items():
        for variant, meta in entry["variants"].items():
            match = VARIANT_KEY.fullmatch(meta["url"].removeprefix(
                origin.settings.cdn_base + "/"))
            assert match is not None and match["placement"] == placement
            assert match["variant"] == variant and match["digest"] == meta["digest"]
            assert isinstance(meta["title"], str) and meta["title"].isprintable()
            assert is_valid_id(meta["category"]) and all(is_valid_id(t) for t in meta["tags"])
    return doc


def test_publishing_any_content_folder_publishes_its_clean_variants_and_nothing_invalid(
        origin: Origin, tmp_path: Path) -> None:
    scratch = Scratch(tmp_path)

    @fuzz_share(0.1)
    @given(folder=content_folders(publishable=True))
    def publish(folder: list[Placement]) -> None:
        origin.reset()
        base = scratch()
        root = base / "content"
        try:
            write_folder(root, folder, base / "outside")
            report = origin.publisher.publish_folder(root)
        except ContentError as e:
            # The catalog refused as a whole (no placement folder; over a limit): one line
            # naming the folder, as the CLI prints it, and nothing published.
            check_problem(str(e), root)
            assert not any(p.loads and p.clean for p in folder), e
            assert origin.redis.get(MANIFEST_KEY) is None and not any(origin.root.iterdir())
            return
        finally:
            shutil.rmtree(base)
        for line in report.failed:
            check_problem(line, root)
        doc = check_manifest(origin)
        check_origin(origin, doc)
        published = set(report.uploaded + report.unchanged + report.metadata_updated)
        for placement in folder:
            if placement.publishes:
                assert {f"{placement.name}/{v}" for v in placement.clean} <= published, \
                    report.failed
        assert set(report.uploaded) <= {f"{p}/{v}" for p, e in doc["placements"].items()
                                        for v in e["variants"]}

    publish()

