"""One publish: render variants, check the manifest they would make, upload what is new,
pre-warm it, then make it eligible (and remove what is unpublished) in a single manifest
transaction. The CLI (a content folder) and the CMS hook (variants in a request) both come
here: this is the one home of the rule.

Order matters: everything is validated (ids, renderings, object keys, the manifest the edge
would parse) before anything is uploaded, and an object is in the origin and in the CDN
cache before the manifest points at it, so no user is ever redirected to a URL that is not
there yet. A variant that fails at any step is reported (`file:line: reason`) and left out;
its neighbours still publish, and nothing of it is written. A placement is locked while it
is published, and the whole publish is bounded in time (`PublishLimits`).
"""

from __future__ import annotations

import copy
import datetime as dt
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from content_variants import manifest_writer
from content_variants.content_folder import load_content_folder
from content_variants.errors import ContentError, ManifestError, OriginError, PublishTimeout
from content_variants.limits import PublishLimits
from content_variants.manifest_copy import ManifestCopyFailed
from content_variants.origin import ContentOrigin
from content_variants.prewarm import Prewarmer
from content_variants.publish_lock import placement_locks
from content_variants.publish_request import (
    PublishReport,
    PublishRequest,
    UnpublishInput,
    VariantInput,
)
from content_variants.render import RenderedVariant, Renderer
from edge_functions.errors import CorruptRecord, EdgepickError
from edge_functions.manifest import FORMAT, parse_document

UPLOAD_THREADS = 8


@dataclass
class _Placement:
    id: str
    default: str | None  # the variant this publish makes the default, if any
    folder: str  # where placement-level failures point
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)  # variant → entry


@dataclass
class _Shipment:
    placement: str
    where: str
    rendered: RenderedVariant
    entry: dict[str, Any]
    upload: bool  # a new object (else the same URL is already published)


class Publisher:
    """The clients a publish needs, built once by the entry point (CLI or hook app)."""

    def __init__(self, redis: Redis, origin: ContentOrigin, prewarmer: Prewarmer,
                 limits: PublishLimits) -> None:
        self.redis, self.origin, self.prewarmer, self.limits = redis, origin, prewarmer, limits

    def publish_folder(self, content_dir: Path,
                       on_step: Callable[[str, int], None] | None = None) -> PublishReport:
        """Publish every placement folder of `content_dir`."""
        deadline = time.monotonic() + self.limits.publish_timeout_s
        placements, errors = load_content_folder(content_dir, self.limits, deadline)
        request = PublishRequest(
            variants=[VariantInput(p.id, v.spec, v.where) for p in placements
                      for v in p.variants],
            templates={p.id: p.template for p in placements},
            policies={p.id: p.policy for p in placements},
            failed=[str(e) for e in errors])
        return self.run(request, on_step, deadline)

    def run(self, request: PublishRequest, on_step: Callable[[str, int], None] | None = None,
            deadline: float | None = None) -> PublishReport:
        """Publish `request` while holding its placements' locks (PublishBusy if taken)."""
        started = time.perf_counter()
        deadline = deadline or time.monotonic() + self.limits.publish_timeout_s
        with placement_locks(self.redis, request.placements, self.limits.lock_ttl_s):
            report = _Run(self, request, deadline, on_step).execute()
        report.seconds = time.perf_counter() - started
        return report


def publish(content_dir: Path, redis: Redis, origin: ContentOrigin, prewarmer: Prewarmer,
            max_variant_bytes: int, on_step: Callable[[str, int], None] | None = None, *,
            limits: PublishLimits | None = None) -> PublishReport:
    """Publish `content_dir`. `on_step(description, total)` is called once per variant step."""
    limits = limits or PublishLimits(max_variant_bytes=max_variant_bytes)
    return Publisher(redis, origin, prewarmer, limits).publish_folder(content_dir, on_step)


class _Run:
    """One execution of a request; kept apart so each step reads as one method."""

    def __init__(self, publisher: Publisher, request: PublishRequest, deadline: float,
                 on_step: Callable[[str, int], None] | None) -> None:
        self.p, self.request, self.deadline, self.on_step = publisher, request, deadline, on_step
        self.report = PublishReport(failed=list(request.failed))
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        self.left_out: list[str] = []  # refilled by every `change` attempt
        self.removed: list[str] = []

    def execute(self) -> PublishReport:
        report = self.report
        try:
            current, report.manifest_source = manifest_writer.read_current(self.p.redis,
                                                                          self.p.origin)
        except OriginError as e:  # Redis has no manifest and the origin cannot say either
            report.manifest_error = f"cannot read the manifest copy: {e}"
            report.failed.append(f"nothing published: {report.manifest_error}")
            report.rev = 0
            return report
        try:
            placements = self._plan(current)
            shipments = self._render(placements, current)
        except PublishTimeout as e:
            report.failed.append(str(e))
            report.rev = current["rev"]
            return report
        self._check_manifest(current, placements, shipments)
        if report.manifest_error is not None:
            report.rev = current["rev"]
            return report
        self._ship(shipments, placements)
        self._write_manifest(placements)
        for names in (report.uploaded, report.unchanged, report.metadata_updated,
                      report.unpublished):
            names.sort()
        return report

    def _plan(self, current: manifest_writer.Document) -> dict[str, _Placement]:
        """Group variants by placement, applying the default rule; drop what cannot go."""
        placements: dict[str, _Placement] = {}
        by_placement: dict[str, list[VariantInput]] = {}
        for variant in self.request.variants:
            by_placement.setdefault(variant.placement, []).append(variant)
        for placement_id, variants in by_placement.items():
            template = self.request.templates.get(placement_id)
            folder = str(template.path.parent) if template is not None else placement_id
            defaults = [v for v in variants if v.spec.default]
            published = current["placements"].get(placement_id)
            if len(defaults) > 1:
                self.report.failed.append(f"{folder}: more than one variant is marked "
                                          "default: " + ", ".join(v.spec.id for v in defaults))
                continue
            if not defaults and published is None:
                self.report.failed.append(str(ContentError(
                    folder, "no variant is marked 'default: true' and the placement has no "
                            "published default")))
                continue
            placements[placement_id] = _Placement(
                placement_id, defaults[0].spec.id if defaults else None, folder)
        return placements

    def _render(self, placements: dict[str, _Placement],
                current: manifest_writer.Document) -> list[_Shipment]:
        """Render every variant of a planned placement (in the render child)."""
        shipments: list[_Shipment] = []
        seen: set[tuple[str, str]] = set()
        with Renderer(self.p.limits) as renderer:
            for variant in self.request.variants:
                placement = placements.get(variant.placement)
                if placement is None:
                    continue
                key = (variant.placement, variant.spec.id)
                if key in seen:
                    self.report.failed.append(f"{variant.where}: variant "
                                              f"{variant.placement}/{variant.spec.id} appears "
                                              "twice in this publish")
                    continue
                seen.add(key)
                template = self.request.templates.get(variant.placement)
                if template is None:
                    self.report.failed.append(f"{variant.where}: placement "
                                              f"{variant.placement!r} has no template")
                    continue
                try:
                    rendered = renderer.render(template, variant.placement, variant.spec,
                                               variant.where, self.deadline)
                    url = self.p.prewarmer.url_for(rendered.object_key)
                except ContentError as e:
                    self.report.failed.append(str(e))
                    continue
                except EdgepickError as e:
                    if isinstance(e, PublishTimeout):
                        raise
                    self.report.failed.append(f"{variant.where}: {e}")
                    continue
                shipments.append(self._classify(variant, rendered, url, current))
        return shipments

    def _classify(self, variant: VariantInput, rendered: RenderedVariant, url: str,
                  current: manifest_writer.Document) -> _Shipment:
        """Unchanged, metadata only (same object), or a new object to upload."""
        name = f"{variant.placement}/{variant.spec.id}"
        entry = manifest_writer.variant_entry(rendered, url, self.now, variant.source)
        old = current["placements"].get(variant.placement, {}).get("variants", {}).get(
            variant.spec.id)
        upload = old is None or old.get("url") != url
        if not upload:
            assert old is not None
            entry["published_at"] = old.get("published_at", self.now)
            if entry == old:
                self.report.unchanged.append(name)
            else:
                self.report.metadata_updated.append(name)
        return _Shipment(variant.placement, variant.where, rendered, entry, upload)

    def _check_manifest(self, current: manifest_writer.Document,
                        placements: dict[str, _Placement], shipments: list[_Shipment]) -> None:
        """Run the edge's own parser on the manifest this publish would write, before any
        upload. A placement it refuses is left out whole; if the document is still refused,
        nothing is published."""
        for shipment in shipments:
            placements[shipment.placement].entries[shipment.rendered.spec.id] = shipment.entry
        for placement in list(placements.values()):
            planned = copy.deepcopy(current)
            self._change(planned, {placement.id: placement}, [])
            entry = planned["placements"].get(placement.id)
            if entry is None:
                continue
            try:
                parse_document({"format": FORMAT, "rev": 0,
                                "placements": {placement.id: entry}})
            except CorruptRecord as e:
                self.report.failed.append(f"{placement.folder}: the edge would refuse this "
                                          f"placement's manifest entry ({e}); left out")
                del placements[placement.id]
        planned = copy.deepcopy(current)
        self._change(planned, placements, self.request.unpublish)
        try:
            parse_document(planned)
        except CorruptRecord as e:
            self.report.manifest_error = f"the edge would refuse the new manifest: {e}"
            self.report.failed.append(f"nothing published: {self.report.manifest_error}")

    def _ship(self, shipments: list[_Shipment], placements: dict[str, _Placement]) -> None:
        """Upload and pre-warm new objects; a variant whose step fails leaves the plan."""
        wanted = [s for s in shipments if s.upload and s.placement in placements]
        total = len(wanted)
        report = self.report

        def ship(shipment: _Shipment) -> None:
            rendered = shipment.rendered
            name = f"{shipment.placement}/{rendered.spec.id}"
            try:
                if time.monotonic() > self.deadline:
                    raise PublishTimeout(self.p.limits.publish_timeout_s)
                if not self.p.origin.exists(rendered.object_key):
                    self.p.origin.put(rendered.object_key, rendered.body)
                self.p.prewarmer.warm(rendered.object_key, rendered.digest)
                report.uploaded.append(name)
            except EdgepickError as e:
                report.failed.append(f"{shipment.where}: {e}")
                del placements[shipment.placement].entries[rendered.spec.id]
            finally:
                if self.on_step is not None:
                    self.on_step(name, total)

        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            for _ in pool.map(ship, wanted):
                pass

    def _change(self, doc: manifest_writer.Document, placements: dict[str, _Placement],
                unpublish: list[UnpublishInput]) -> None:
        """The manifest change: run again on the fresh document by every WATCH retry."""
        self.left_out.clear()
        self.removed.clear()
        for placement in placements.values():
            target = doc["placements"].setdefault(placement.id,
                                                  {"default": None, "variants": {}})
            target["variants"].update(placement.entries)
            policy = self.request.policies.get(placement.id)
            if policy is not None:
                target["policy"] = policy
            if placement.default is not None and placement.default in target["variants"]:
                target["default"] = placement.default
            if target["default"] not in target["variants"]:
                # A new placement whose default failed: publish none of it.
                del doc["placements"][placement.id]
                self.left_out.append(f"{placement.folder}: default variant "
                                     f"{placement.default!r} did not publish, so the "
                                     "placement was left out")
        for item in unpublish:
            try:
                manifest_writer.remove_variant(doc, item.placement, item.variant,
                                               item.replace_default)
                self.removed.append(f"{item.placement}/{item.variant}")
            except ManifestError as e:
                self.left_out.append(f"{item.where}: {e}" if item.where else str(e))

    def _write_manifest(self, placements: dict[str, _Placement]) -> None:
        report = self.report
        try:
            doc, report.manifest_changed = manifest_writer.apply(
                self.p.redis, lambda d: self._change(d, placements, self.request.unpublish),
                self.p.origin)
        except ManifestCopyFailed as e:
            doc, report.manifest_changed = e.doc, True
            report.failed.append(str(e))
        except (ManifestError, RedisError) as e:
            report.manifest_error = str(e) if isinstance(e, ManifestError) else f"Redis: {e}"
            report.failed.append(f"manifest not written: {report.manifest_error}")
            report.rev = manifest_writer.current_rev(self.p.redis)
            report.not_eligible = sorted(report.uploaded)
            report.uploaded.clear()
            report.metadata_updated.clear()
            return
        report.failed.extend(self.left_out)
        report.unpublished = list(self.removed)
        report.rev = doc["rev"]
        # Objects of a placement left out were uploaded but are not eligible: not "published".
        report.uploaded = [n for n in report.uploaded if n.split("/")[0] in doc["placements"]]
        report.defaults = {p: e["default"] for p, e in doc["placements"].items()}
