"""Turn what a hook request asks for into a publish request: the same validation as files.

Ids go through `check_id`, variants through `VariantSpec`, templates are read from the
content folder as the CLI reads them. A bad item is reported (`<where>: <reason>`) and left
out; the rest of the request still publishes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from content_variants.content_folder import ReadBudget, VariantSpec, load_template
from content_variants.errors import ContentError
from content_variants.hook_payload import HookItems, PublishItem, UnpublishItem
from content_variants.limits import PublishLimits
from content_variants.publish_request import PublishRequest, UnpublishInput, VariantInput
from content_variants.validation_errors import describe_validation_error
from edge_functions.errors import InvalidIdentifier
from edge_functions.identifiers import check_id


def build_request(items: HookItems, content_dir: Path, limits: PublishLimits,
                  deadline: float | None, current: dict[str, Any]) -> PublishRequest:
    """`current` is the manifest document, to find what a CMS entry published before."""
    request = PublishRequest()
    budget = ReadBudget(content_dir, limits, deadline)
    for item in items.publish:
        variant = _variant(item, request)
        if variant is None:
            continue
        if variant.placement not in request.templates:
            try:
                request.templates[variant.placement] = load_template(content_dir,
                                                                     variant.placement, budget)
            except ContentError as e:
                request.failed.append(f"{item.where}: {e}")
                continue
        request.variants.append(variant)
    published = {(v.placement, v.spec.id) for v in request.variants}
    for unpublish in items.unpublish:
        resolved = _unpublish(unpublish, current, request)
        if resolved is None:
            continue
        if (resolved.placement, resolved.variant) in published:
            request.failed.append(f"{unpublish.where}: {resolved.placement}/{resolved.variant}"
                                  " is also published by this request")
            continue
        request.unpublish.append(resolved)
    return request


def _variant(item: PublishItem, request: PublishRequest) -> VariantInput | None:
    try:
        placement = check_id("placement", item.placement)
    except InvalidIdentifier as e:
        request.failed.append(f"{item.where}: {e}")
        return None
    if not isinstance(item.variant, dict):
        request.failed.append(f"{item.where}: 'variant' must be an object of variant fields")
        return None
    try:
        spec = VariantSpec.model_validate(item.variant)
    except ValidationError as e:
        shown = item.variant.get("id")
        name = f" ({placement}/{shown[:64]})" if isinstance(shown, str) else ""
        request.failed.append(f"{item.where}{name}: {describe_validation_error(e)}")
        return None
    return VariantInput(placement, spec, item.where, item.source)


def _unpublish(item: UnpublishItem, current: dict[str, Any],
               request: PublishRequest) -> UnpublishInput | None:
    placement, variant = item.placement, item.variant
    if (placement is None or variant is None) and item.source is not None:
        found = [(p, v) for p, entry in current["placements"].items()
                 for v, meta in entry["variants"].items() if meta.get("source") == item.source]
        if not found:
            request.failed.append(f"{item.where}: nothing published came from this entry")
            return None
        placement, variant = found[0]
    try:
        return UnpublishInput(check_id("placement", placement), check_id("variant", variant),
                              None if item.replace_default is None
                              else check_id("variant", item.replace_default), item.where)
    except InvalidIdentifier as e:
        request.failed.append(f"{item.where}: {e}")
        return None
