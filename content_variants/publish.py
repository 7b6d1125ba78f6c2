"""One publish: render every variant of a content folder, upload what is new, pre-warm it,
then make it eligible in a single manifest transaction.

Order matters: an object is in the origin and in the CDN cache before the manifest points at
it, so no user is ever redirected to a URL that is not there yet. A variant that fails at
any step is reported and left out; its neighbours still publish, and nothing of it is
written to the manifest.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis import Redis

from content_variants import manifest_writer
from content_variants.catalog import PlacementSource, load_catalog
from content_variants.errors import ContentError, ManifestError
from content_variants.origin import Origin
from content_variants.prewarm import Prewarmer
from content_variants.render import RenderedVariant, Renderer
from edge_functions.errors import EdgepickError

UPLOAD_THREADS = 8


@dataclass
class PublishReport:
    uploaded: list[str] = field(default_factory=list)  # "placement/variant"
    metadata_updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # one line each, naming the file
    defaults: dict[str, str] = field(default_factory=dict)
    rev: int = 0
    manifest_changed: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class _Placement:
    id: str
    rendered: list[RenderedVariant]
    default: str | None


def publish(content_dir: Path, redis: Redis, origin: Origin, prewarmer: Prewarmer,
            max_variant_bytes: int,
            on_step: Callable[[str, int], None] | None = None) -> PublishReport:
    """Publish `content_dir`. `on_step(description, total)` is called once per variant step."""
    started = time.perf_counter()
    report = PublishReport()
    placements, load_errors = load_catalog(content_dir)
    report.failed.extend(str(e) for e in load_errors)
    current = manifest_writer.read_document(redis)["placements"]

    renderer = Renderer(max_variant_bytes)
    rendered = [_render_placement(p, renderer, current.get(p.id), report) for p in placements]
    planned = [p for p in rendered if p is not None]

    total = sum(len(p.rendered) for p in planned)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    entries: dict[str, dict[str, dict[str, Any]]] = {p.id: {} for p in planned}

    def ship(placement: _Placement, variant: RenderedVariant) -> None:
        name = f"{placement.id}/{variant.spec.id}"
        entry = _manifest_entry(variant, prewarmer.url_for(variant.object_key), now)
        old = current.get(placement.id, {}).get("variants", {}).get(variant.spec.id)
        try:
            if old is not None and old["url"] == entry["url"]:
                if _without_time(old) == _without_time(entry):
                    report.unchanged.append(name)
                    return
                entry["published_at"] = old.get("published_at", now)
                report.metadata_updated.append(name)
            else:
                if not origin.exists(variant.object_key):
                    origin.put(variant.object_key, variant.body)
                prewarmer.warm(variant.object_key, variant.digest)
                report.uploaded.append(name)
            entries[placement.id][variant.spec.id] = entry
        except EdgepickError as e:
            report.failed.append(f"{name}: {e}")
        finally:
            if on_step is not None:
                on_step(name, total)

    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        for _ in pool.map(lambda pv: ship(*pv),
                          [(p, v) for p in planned for v in p.rendered]):
            pass

    left_out: list[str] = []  # filled per attempt: a WATCH retry runs `change` again

    def change(doc: manifest_writer.Document) -> None:
        left_out.clear()
        for placement in planned:
            target = doc["placements"].setdefault(placement.id, {"default": None, "variants": {}})
            target["variants"].update(entries[placement.id])
            if placement.default is not None and placement.default in target["variants"]:
                target["default"] = placement.default
            if target["default"] not in target["variants"]:
                # A new placement whose default failed: publish none of it.
                del doc["placements"][placement.id]
                left_out.append(f"{placement.id}: default variant {placement.default!r} did "
                                "not publish, so the placement was left out")

    try:
        doc, report.manifest_changed = manifest_writer.apply(redis, change)
        report.failed.extend(left_out)
    except ManifestError as e:
        report.failed.append(str(e))
        report.uploaded.clear()
        report.metadata_updated.clear()
    else:
        report.rev = doc["rev"]
        # Objects of a placement left out were uploaded but are not eligible: not "published".
        report.uploaded = [n for n in report.uploaded if n.split("/")[0] in doc["placements"]]
        report.defaults = {p: e["default"] for p, e in doc["placements"].items()}
    report.uploaded.sort()
    report.unchanged.sort()
    report.metadata_updated.sort()
    report.seconds = time.perf_counter() - started
    return report


def _render_placement(source: PlacementSource, renderer: Renderer,
                      published: dict[str, Any] | None, report: PublishReport) -> _Placement | None:
    folder_default = next((v.spec.id for v in source.variants if v.spec.default), None)
    if folder_default is None and published is None:
        report.failed.append(str(ContentError(source.template_path.parent,
                                              "no variant is marked 'default: true' and the "
                                              "placement has no published default")))
        return None
    try:
        template = renderer.compile(source.template_path)
    except ContentError as e:
        report.failed.append(str(e))
        return None
    rendered: list[RenderedVariant] = []
    for variant in source.variants:
        try:
            rendered.append(renderer.render(template, source.template_path, source.id,
                                            variant.path, variant.spec))
        except ContentError as e:
            report.failed.append(str(e))
    return _Placement(source.id, rendered, folder_default)


def _manifest_entry(variant: RenderedVariant, url: str, now: str) -> dict[str, Any]:
    spec = variant.spec
    return {
        "url": url,
        "digest": variant.digest,
        "title": spec.title,
        "category": spec.category,
        "tags": list(spec.tags),
        "locale": spec.locale,
        "starts_at": spec.starts_at.isoformat() if spec.starts_at else None,
        "ends_at": spec.ends_at.isoformat() if spec.ends_at else None,
        "published_at": now,
    }


def _without_time(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "published_at"}
