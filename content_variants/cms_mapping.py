"""Which field of a CMS entry becomes which field of a variant (EDGEPICK_CMS_MAPPING).

A JSON or YAML file with a section per CMS; every key is optional (the defaults below fill
in what a section leaves out):

    contentful:
      types: [variant]        # content types (Contentful), _type (Sanity), model (Strapi)
                              # whose entries are variants; others are ignored; [] = all
      fields:                 # variant field → entry field (a dotted path into it)
        placement: placement
        id: slug
        title: title
        category: category
        tags: tags
        locale: locale
        starts_at: startsAt
        ends_at: endsAt
        default: isDefault
      extra: "*"              # entry fields copied into the variant's `fields`: a list of
                              # names, or "*" for every field not mapped above (system
                              # fields excluded)

Contentful fields are keyed by locale: the value of EDGEPICK_CMS_LOCALE is picked before the
rest of the path is followed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from content_variants import variant_yaml
from edge_functions.errors import ConfigError

VARIANT_FIELDS = ("placement", "id", "title", "category", "tags", "locale", "starts_at",
                  "ends_at", "default")
_COMMON_FIELDS = {"placement": "placement", "id": "slug", "title": "title",
                  "category": "category", "tags": "tags", "locale": "locale",
                  "starts_at": "startsAt", "ends_at": "endsAt", "default": "isDefault"}
DEFAULTS: dict[str, dict[str, Any]] = {
    "contentful": {"types": ["variant"], "fields": _COMMON_FIELDS, "extra": "*"},
    "sanity": {"types": ["variant"], "fields": {**_COMMON_FIELDS, "id": "slug.current"},
               "extra": "*"},
    "strapi": {"types": ["variant"], "fields": _COMMON_FIELDS, "extra": "*"},
}
# Bookkeeping fields of each CMS, never copied by "extra": "*".
SYSTEM_FIELDS = {
    "contentful": frozenset(),
    "sanity": frozenset(),  # and every name starting with "_"
    "strapi": frozenset({"id", "documentId", "createdAt", "updatedAt", "publishedAt",
                         "createdBy", "updatedBy", "localizations", "locale"}),
}
_PATH = re.compile(r"[A-Za-z0-9_$-]{1,64}(\.[A-Za-z0-9_$-]{1,64}){0,7}")
MISSING = object()


@dataclass(frozen=True)
class SchemeMapping:
    scheme: str
    types: tuple[str, ...]
    fields: dict[str, str]  # variant field → dotted entry path
    extra: tuple[str, ...] | None  # None: every unmapped, non-system field

    def variant(self, get: Callable[[str], Any], names: list[str]) -> dict[str, Any]:
        """The variant fields of an entry; `get(path)` reads a dotted path (MISSING if
        absent), `names` are the entry's top-level field names."""
        data: dict[str, Any] = {}
        for field, path in self.fields.items():
            if field == "placement":
                continue
            value = get(path)
            if value is not MISSING and value is not None:
                data[field] = value
        used = {path.split(".", 1)[0] for path in self.fields.values()}
        wanted = self.extra if self.extra is not None else [
            n for n in names if n not in used and not self.is_system(n)]
        extra = {name: value for name in wanted if (value := get(name)) is not MISSING}
        if extra:
            data["fields"] = extra
        return data

    def is_system(self, name: str) -> bool:
        return name in SYSTEM_FIELDS[self.scheme] or (self.scheme == "sanity"
                                                      and name.startswith("_"))

    def wants(self, entry_type: object) -> bool:
        return not self.types or entry_type in self.types


@dataclass(frozen=True)
class CmsMapping:
    contentful: SchemeMapping
    sanity: SchemeMapping
    strapi: SchemeMapping

    def for_scheme(self, scheme: str) -> SchemeMapping:
        mapping: SchemeMapping = getattr(self, scheme)
        return mapping

    @classmethod
    def load(cls, path: Path | None) -> CmsMapping:
        """The mapping in `path` over the defaults (the defaults alone when None)."""
        overrides: dict[str, Any] = {}
        if path is not None:
            try:
                text = path.read_text(encoding="utf-8")
                overrides = json.loads(text) if path.suffix == ".json" \
                    else variant_yaml.parse(text)[0] or {}
            except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as e:
                raise ConfigError(f"EDGEPICK_CMS_MAPPING={path}: cannot read it: {e}") from e
        if not isinstance(overrides, dict) or set(overrides) - set(DEFAULTS):
            raise ConfigError(f"EDGEPICK_CMS_MAPPING={path}: use a mapping with sections "
                              f"{', '.join(DEFAULTS)}")
        return cls(**{scheme: _scheme(scheme, overrides.get(scheme) or {}, path)
                      for scheme in DEFAULTS})


def _scheme(scheme: str, section: Any, path: Path | None) -> SchemeMapping:
    where = f"EDGEPICK_CMS_MAPPING={path}: {scheme}"
    if not isinstance(section, dict) or set(section) - {"types", "fields", "extra"}:
        raise ConfigError(f"{where}: use the keys types, fields, extra")
    default = DEFAULTS[scheme]
    types = section.get("types", default["types"])
    fields = {**default["fields"], **section.get("fields", {})}
    extra = section.get("extra", default["extra"])
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise ConfigError(f"{where}.types: use a list of names")
    unknown = set(fields) - set(VARIANT_FIELDS)
    if unknown:
        raise ConfigError(f"{where}.fields: unknown variant field(s) {', '.join(sorted(unknown))}"
                          f" (use {', '.join(VARIANT_FIELDS)})")
    for field, entry_path in fields.items():
        if not isinstance(entry_path, str) or not _PATH.fullmatch(entry_path):
            raise ConfigError(f"{where}.fields.{field}: {entry_path!r} is not a dotted path")
    if extra != "*" and not (isinstance(extra, list)
                             and all(isinstance(e, str) and _PATH.fullmatch(e) for e in extra)):
        raise ConfigError(f"{where}.extra: use \"*\" or a list of field names")
    return SchemeMapping(scheme, tuple(types), fields,
                         None if extra == "*" else tuple(extra))


def follow(value: Any, parts: list[str]) -> Any:
    """`value[a][b]…` for the dotted parts (MISSING where a step does not exist)."""
    for part in parts:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value
