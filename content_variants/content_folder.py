"""The content folder format.

    content/
      hero/                      ← a placement (folder name = placement id)
        _template.json.j2        ← jinja2 template rendering one variant to JSON
        _placement.yaml          ← optional: its decision policy (placement_settings.py)
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
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from content_variants import variant_yaml
from content_variants.errors import ContentError, FolderRefused, PublishTimeout
from content_variants.limits import PublishLimits
from content_variants.placement_settings import SETTINGS_NAME, default_policy, parse_settings
from content_variants.safe_files import is_folder, read_text
from content_variants.validation_errors import describe_validation_error, first_key, line_of_key
from edge_functions.errors import InvalidIdentifier
from edge_functions.identifiers import ID_PATTERN, check_id, is_valid_id

TEMPLATE_NAME = "_template.json.j2"
VARIANT_SUFFIXES = (".yaml", ".yml", ".json")


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

    @field_validator("title")
    @classmethod
    def _printable(cls, title: str) -> str:
        # The title travels in the manifest to dashboards and reports: no control or
        # direction-override characters that could disguise it there.
        if not title.isprintable():
            raise ValueError("title contains control or invisible formatting characters")
        return title

    @field_validator("tags", mode="before")
    @classmethod
    def _tags_are_ids(cls, tags: object) -> object:
        if isinstance(tags, list | tuple):
            for tag in tags:
                _check("tag", tag)
        return tags

    @field_validator("fields")
    @classmethod
    def _text(cls, fields: dict[str, Any]) -> dict[str, Any]:
        # Free-form, but its text must be Unicode, as every other field's is: a lone
        # surrogate (an escape in JSON or YAML) can be neither rendered nor stored.
        if not _is_unicode(fields):
            raise ValueError("holds text that is not Unicode (a lone surrogate)")
        return fields

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


def _is_unicode(value: object) -> bool:
    """Whether every string in `value` (keys too, at any depth) encodes as UTF-8."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return True


def _check(kind: str, value: object) -> str:
    try:
        return check_id("variant" if kind == "id" else kind, value)
    except InvalidIdentifier as e:
        raise ValueError(str(e)) from e


@dataclass(frozen=True)
class VariantSource:
    path: Path
    spec: VariantSpec
    line: int = 1  # of its `id`

    @property
    def where(self) -> str:
        """`file:line` that failures of this variant start with."""
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class TemplateSource:
    path: Path  # where errors point
    text: str


@dataclass(frozen=True)
class PlacementSource:
    id: str
    template: TemplateSource
    variants: list[VariantSource]
    policy: dict[str, Any] = field(default_factory=default_policy)  # complete, for the manifest

    @property
    def template_path(self) -> Path:
        return self.template.path


class ReadBudget:
    """What one content folder load may still read: files, bytes and time."""

    def __init__(self, root: Path, limits: PublishLimits, deadline: float | None) -> None:
        self.root, self.limits, self.deadline = root, limits, deadline
        self.files = 0
        self.variants = 0
        self.bytes = 0

    def count_variant(self) -> None:
        self.variants += 1
        if self.variants > self.limits.max_variants:
            raise FolderRefused(self.root, f"more than {self.limits.max_variants} variant "
                                           "files (EDGEPICK_MAX_VARIANTS): nothing published")

    def read(self, path: Path) -> str:
        self.files += 1
        if self.files > self.limits.max_variants + 1000:
            raise FolderRefused(self.root, f"more than {self.limits.max_variants} variant "
                                           "files (EDGEPICK_MAX_VARIANTS): nothing published")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise PublishTimeout(self.limits.publish_timeout_s)
        text = read_text(self.root, path, self.limits.max_source_bytes)
        self.bytes += len(text)
        if self.bytes > self.limits.max_publish_bytes:
            raise FolderRefused(self.root, f"content is larger than "
                                           f"{self.limits.max_publish_bytes} bytes "
                                           "(EDGEPICK_MAX_PUBLISH_BYTES): nothing published")
        return text


def load_content_folder(root: Path, limits: PublishLimits | None = None,
                        deadline: float | None = None
                        ) -> tuple[list[PlacementSource], list[ContentError]]:
    """Every placement folder under `root`, and the errors of files that do not load.

    A bad variant file is an error for that file only; its neighbours still load.
    A folder without a template, or named with an invalid id, is an error for the folder.
    Only regular files inside `root` are read (`safe_files`); more variant files or bytes
    than the limits allow refuse the whole folder.
    """
    limits = limits or PublishLimits()
    if not root.is_dir():
        raise ContentError(root, "content folder does not exist")
    budget = ReadBudget(root, limits, deadline)
    placements: list[PlacementSource] = []
    errors: list[ContentError] = []
    for folder in sorted(p for p in root.iterdir() if not p.name.startswith(".")):
        try:
            placement = _load_placement(root, folder, budget, errors)
        except FolderRefused:
            raise
        except ContentError as e:
            errors.append(e)
            continue
        if placement is not None:
            placements.append(placement)
    if not placements and not errors:
        raise ContentError(root, f"no placement folders (each needs a {TEMPLATE_NAME})")
    return placements, errors


def _load_placement(root: Path, folder: Path, budget: ReadBudget,
                    errors: list[ContentError]) -> PlacementSource | None:
    """One placement folder (None: not one); its bad variant files go to `errors`."""
    if not is_folder(root, folder):
        if folder.is_symlink():
            raise ContentError(folder, "not read: a link that leads outside the content folder")
        return None
    if not is_valid_id(folder.name):
        raise ContentError(folder, f"folder name is not a valid placement id "
                                   f"({ID_PATTERN.pattern})")
    template = load_template(root, folder.name, budget)
    settings = folder / SETTINGS_NAME
    policy = parse_settings(settings, budget.read(settings)) if os.path.lexists(settings) \
        else default_policy()
    variants: list[VariantSource] = []
    seen: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith((".", "_")) or path.suffix not in VARIANT_SUFFIXES:
            continue
        budget.count_variant()
        try:
            source = load_variant(path, budget)
        except FolderRefused:
            raise
        except ContentError as e:
            errors.append(e)
            continue
        if source.spec.id in seen:
            errors.append(ContentError(path, f"variant id {source.spec.id!r} is also used by "
                                             f"{seen[source.spec.id].name}", source.line))
            continue
        seen[source.spec.id] = path
        variants.append(source)
    defaults = [v for v in variants if v.spec.default]
    if len(defaults) > 1:
        raise ContentError(folder, "more than one variant is marked default: "
                                   + ", ".join(v.path.name for v in defaults))
    return PlacementSource(folder.name, template, variants, policy)


def load_template(root: Path, placement: str,
                  budget: ReadBudget | None = None) -> TemplateSource:
    """The template of `placement` (a folder of `root`), read as safely as variant files."""
    folder = root / placement
    path = folder / TEMPLATE_NAME
    if not os.path.lexists(path):
        raise ContentError(folder, f"placement has no {TEMPLATE_NAME}")
    if budget is None:
        budget = ReadBudget(root, PublishLimits(), None)
    return TemplateSource(path, budget.read(path))


def load_variant(path: Path, budget: ReadBudget | None = None) -> VariantSource:
    """One variant file, validated; every error names the file and line."""
    if budget is None:
        budget = ReadBudget(path.parent, PublishLimits(), None)
    return parse_variant(path, budget.read(path))


def parse_variant(path: Path, text: str) -> VariantSource:
    try:
        data, node = variant_yaml.parse(text)
    except yaml.MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark is not None else None
        raise ContentError(path, f"not valid YAML/JSON: {e.problem}", line) from e
    except yaml.YAMLError as e:
        raise ContentError(path, f"not valid YAML/JSON: {e}") from e
    except ValueError as e:
        raise ContentError(path, f"not valid YAML/JSON: {e}") from e
    if not isinstance(data, dict):
        raise ContentError(path, "a variant file must be a mapping of fields", 1)
    try:
        spec = VariantSpec.model_validate(data)
    except ValidationError as e:
        raise ContentError(path, describe_validation_error(e),
                           line_of_key(node, first_key(e))) from e
    return VariantSource(path, spec, line_of_key(node, "id"))
