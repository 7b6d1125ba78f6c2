"""What one publish is asked to do, and what it reports having done."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from content_variants.content_folder import TemplateSource, VariantSpec


@dataclass(frozen=True)
class VariantInput:
    placement: str
    spec: VariantSpec
    where: str  # "file:line" (or "publish[3]" in a hook body): prefix of its failures
    source: str | None = None  # the CMS entry it came from ("contentful:<id>"), if any


@dataclass(frozen=True)
class UnpublishInput:
    placement: str
    variant: str
    replace_default: str | None = None
    where: str = ""


@dataclass
class PublishRequest:
    """What one publish does: variants to publish (with their placements' templates) and
    variants to remove, and the problems already found while reading them."""

    variants: list[VariantInput] = field(default_factory=list)
    templates: dict[str, TemplateSource] = field(default_factory=dict)
    # placement → its complete decision policy, from a content folder (a CMS hook leaves
    # the published policy as it is)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    unpublish: list[UnpublishInput] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def placements(self) -> set[str]:
        return {v.placement for v in self.variants} | {u.placement for u in self.unpublish}


@dataclass
class PublishReport:
    uploaded: list[str] = field(default_factory=list)  # "placement/variant"
    metadata_updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    unpublished: list[str] = field(default_factory=list)
    not_eligible: list[str] = field(default_factory=list)  # uploaded, manifest not written
    failed: list[str] = field(default_factory=list)  # one line each, "file:line: reason"
    defaults: dict[str, str] = field(default_factory=dict)
    rev: int | None = 0  # the manifest's revision after the publish (None: unknown)
    manifest_changed: bool = False
    manifest_error: str | None = None  # why the manifest was not written, if it was not
    manifest_source: str = "redis"  # what the publish built on: redis, origin copy or empty
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def changed(self) -> list[str]:
        return self.uploaded + self.metadata_updated + self.unpublished
