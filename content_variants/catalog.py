"""The content folder format.

    content/
      hero/                      ← a placement (folder name = placement id)
        _template.json.j2        ← jinja2 template rendering one variant to JSON
        spring-sale.yaml         ← a variant (YAML or JSON), one file each
        evergreen.yaml

A variant file:

    id: spring-sale              # required, [a-z0-9][a-z0-9_-]{0,63}
    title: Spring sale           # required
    category: promo              # required
    tags: [seasonal]
    locale: en-US                # optional: only users of this locale are eligible
    starts_at: 2026-03-01T00:00:00Z   # optional schedule window (UTC if no offset)
    ends_at: 2026-04-01T00:00:00Z
    default: true                # exactly one per placement (here or already published)
    fields: {headline: …}        # free-form, for the template

Unknown top-level keys are refused (a typo must not silently drop a field).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo,
                      field_validator, model_validator)

from content_variants.errors import ContentError
from edge_functions.errors import InvalidIdentifier
from edge_functions.identifiers import ID_PATTERN, check_id, is_valid_id

TEMPLATE_NAME = "_template.json.j2"
VARIANT_SUFFIXES = (".yaml", ".yml", ".json")
MAX_VARIANT_FILE_BYTES = 256 * 1024


class VariantSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Identifiers go through the one rule the edge and the worker use (a full match):
    # pydantic's `Field(pattern=…)` only searches, so "x/../../evil" would have passed.
    id: str
    title: str = Field(min_length=1, max_length=500)
    category: str
    tags: tuple[str, ...] = ()
    locale: str | None = Field(default=None, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    default: bool = False
    fields: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id", "category", mode="before")
    @classmethod
    def _is_id(cls, value: object, info: ValidationInfo) -> str:
        return _check(info.field_name or "id", value)

    @field_validator("tags", mode="before")
    @classmethod
    def _tags_are_ids(cls, tags: object) -> object:
        if isinstance(tags, list | tuple):
            for tag in tags:
                _check("tag", tag)
        return tags

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value

    @model_validator(mode="after")
    def _window(self) -> VariantSpec:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


def _check(kind: str, value: object) -> str:
    try:
        return check_id("variant" if kind == "id" else kind, value)
    except InvalidIdentifier as e:
        raise ValueError(str(e)) from e


@dataclass(frozen=True)
class VariantSource:
    path: Path
    spec: VariantSpec


@dataclass(frozen=True)
class PlacementSource:
    id: str
    template_path: Path
    variants: list[VariantSource]


def load_catalog(root: Path) -> tuple[list[PlacementSource], list[ContentError]]:
    """Every placement folder under `root`, and the errors of files that do not load.

    A bad variant file is an error for that file only; its neighbours still load.
    A folder without a template, or named with an invalid id, is an error for the folder.
    """
    if not root.is_dir():
        raise ContentError(root, "content folder does not exist")
    placements: list[PlacementSource] = []
    errors: list[ContentError] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not is_valid_id(folder.name):
            errors.append(ContentError(folder, f"folder name is not a valid placement id "
                                               f"({ID_PATTERN.pattern})"))
            continue
        template = folder / TEMPLATE_NAME
        if not template.is_file():
            errors.append(ContentError(folder, f"placement has no {TEMPLATE_NAME}"))
            continue
        variants: list[VariantSource] = []
        seen: dict[str, Path] = {}
        for path in sorted(folder.iterdir()):
            if path.name.startswith((".", "_")) or path.suffix not in VARIANT_SUFFIXES:
                continue
            try:
                spec = load_variant(path)
            except ContentError as e:
                errors.append(e)
                continue
            if spec.id in seen:
                errors.append(ContentError(path, f"variant id {spec.id!r} is also used by "
                                                 f"{seen[spec.id].name}"))
                continue
            seen[spec.id] = path
            variants.append(VariantSource(path, spec))
        defaults = [v for v in variants if v.spec.default]
        if len(defaults) > 1:
            errors.append(ContentError(folder, "more than one variant is marked default: "
                                       + ", ".join(v.path.name for v in defaults)))
            continue
        placements.append(PlacementSource(folder.name, template, variants))
    if not placements and not errors:
        raise ContentError(root, f"no placement folders (each needs a {TEMPLATE_NAME})")
    return placements, errors


def load_variant(path: Path) -> VariantSpec:
    try:
        if path.stat().st_size > MAX_VARIANT_FILE_BYTES:
            raise ContentError(path, f"file is larger than {MAX_VARIANT_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ContentError(path, "file is not UTF-8 text") from e
    except OSError as e:
        raise ContentError(path, f"cannot read file: {e.strerror}") from e
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark is not None else None
        raise ContentError(path, f"not valid YAML/JSON: {e.problem}", line) from e
    except yaml.YAMLError as e:
        raise ContentError(path, f"not valid YAML/JSON: {e}") from e
    if not isinstance(data, dict):
        raise ContentError(path, "a variant file must be a mapping of fields", 1)
    try:
        return VariantSpec.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(file)"
        problem = "missing" if first["type"] == "missing" else \
            str(first["msg"]).removeprefix("Value error, ")
        raise ContentError(path, f"field '{field}' {problem}",
                           _line_of_key(node, str(first["loc"][0]) if first["loc"] else "")) from e


def _line_of_key(node: yaml.Node | None, key: str) -> int:
    """1-based line of a top-level key in a YAML mapping node (1 when the key is absent)."""
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            if key_node.value == key:
                return key_node.start_mark.line + 1
    return 1
