"""What a CMS hook request asks for: variants to publish and to unpublish.

edgepick's own body (see docs/cms-hook.md):

    {"publish": [{"placement": "hero", "variant": {<the fields of a variant file>}}, …],
     "unpublish": [{"placement": "hero", "variant": "old-id", "replace_default": null}, …]}

A CMS sends one entry per request; `cms_mapping` says which of its fields make the variant:
- Contentful: the entry (`sys`, locale-keyed `fields`); `X-Contentful-Topic`
  `ContentManagement.Entry.publish` publishes, `.unpublish`, `.archive` and `.delete`
  unpublish, anything else is ignored.
- Sanity: the webhook's projection (the document by default); header `sanity-operation`
  `delete` unpublishes, `create`/`update` (or none) publish; drafts (`drafts.` ids) ignored.
- Strapi: `{"event", "createdAt", "model", "entry"}`; `entry.publish` publishes,
  `entry.unpublish` and `entry.delete` unpublish, `entry.create`/`entry.update` publish
  only entries that are not drafts (`publishedAt` absent or set).
An unpublish whose payload no longer carries the placement or id (Contentful sends only
`sys`) is found by the entry id recorded in the manifest when it was published (`source`).
Shapes are checked here; values (ids, fields) by the same validation as variant files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from content_variants.cms_mapping import MISSING, CmsMapping, SchemeMapping, follow
from content_variants.errors import PublishError

MAX_DEPTH = 32
MAX_SOURCE_CHARS = 200


class HookPayloadError(PublishError):
    http_status = 400
    error_code = "invalid_payload"


@dataclass(frozen=True)
class PublishItem:
    placement: Any  # checked later, like everything a request carries
    variant: Any
    where: str  # how failures name it: "publish[0]", "contentful entry 5KsD…"
    source: str | None = None  # "<scheme>:<entry id>", kept in the manifest


@dataclass(frozen=True)
class UnpublishItem:
    placement: Any
    variant: Any
    replace_default: Any = None
    where: str = ""
    source: str | None = None  # to find placement and id when the payload lacks them


@dataclass
class HookItems:
    publish: list[PublishItem] = field(default_factory=list)
    unpublish: list[UnpublishItem] = field(default_factory=list)
    ignored: str | None = None  # why a CMS event asks for nothing

    def __len__(self) -> int:
        return len(self.publish) + len(self.unpublish)


def parse(scheme: str, headers: Mapping[str, str], body: bytes, mapping: CmsMapping,
          locale: str, max_items: int) -> HookItems:
    payload = _json(body)
    if scheme == "edgepick":
        items = _edgepick(payload)
    elif scheme == "contentful":
        items = _contentful(payload, headers, mapping.contentful, locale)
    elif scheme == "sanity":
        items = _sanity(payload, headers, mapping.sanity)
    else:
        items = _strapi(payload, headers, mapping.strapi)
    if len(items) > max_items:
        raise HookPayloadError(f"{len(items)} items in one request; at most {max_items} "
                               "(EDGEPICK_HOOK_MAX_ITEMS)")
    if not len(items) and items.ignored is None:
        raise HookPayloadError("nothing to publish or unpublish")
    return items


def _json(body: bytes) -> Any:
    try:
        payload = json.loads(body)
    except RecursionError as e:
        raise HookPayloadError("body is nested too deeply") from e
    except (ValueError, UnicodeDecodeError) as e:
        raise HookPayloadError(f"body is not JSON: {e}") from e
    _check_depth(payload)
    return payload


def _check_depth(value: Any) -> None:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise HookPayloadError(f"body is nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def _edgepick(payload: Any) -> HookItems:
    if not isinstance(payload, dict) or not payload or set(payload) - {"publish", "unpublish"}:
        raise HookPayloadError('body must be {"publish": [...], "unpublish": [...]}')
    items = HookItems()
    for i, entry in enumerate(_list(payload, "publish")):
        where = f"publish[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"placement", "variant"}:
            raise HookPayloadError(f'{where} must be {{"placement": …, "variant": {{…}}}}')
        items.publish.append(PublishItem(entry["placement"], entry["variant"], where))
    for i, entry in enumerate(_list(payload, "unpublish")):
        where = f"unpublish[{i}]"
        if not isinstance(entry, dict) or not {"placement", "variant"} <= set(entry) \
                or set(entry) - {"placement", "variant", "replace_default"}:
            raise HookPayloadError(f'{where} must be {{"placement": …, "variant": …, '
                                   '"replace_default": null}}')
        items.unpublish.append(UnpublishItem(entry["placement"], entry["variant"],
                                             entry.get("replace_default"), where))
    return items


def _list(payload: dict[str, Any], key: str) -> list[Any]:
    value = payload.get(key, [])
    if not isinstance(value, list):
        raise HookPayloadError(f"'{key}' must be a list")
    return value


def _source(scheme: str, entry_id: Any) -> str:
    if not isinstance(entry_id, str | int) or isinstance(entry_id, bool):
        raise HookPayloadError(f"the {scheme} entry has no id")
    text = str(entry_id)
    if not text or len(text) > MAX_SOURCE_CHARS or not text.isprintable():
        raise HookPayloadError(f"the {scheme} entry id is not a short printable string")
    return f"{scheme}:{text}"


def _entry_items(mapping: SchemeMapping, action: str, source: str, entry: Any,
                 get: Any, names: list[str]) -> HookItems:
    where = f"{mapping.scheme} entry {source.split(':', 1)[1]}"
    placement_path = mapping.fields.get("placement", "placement")
    placement = get(placement_path) if entry is not None else MISSING
    if action == "publish":
        if placement is MISSING:
            raise HookPayloadError(f"{where}: field '{placement_path}' (the placement) is "
                                   "missing")
        return HookItems(publish=[PublishItem(placement, mapping.variant(get, names), where,
                                              source)])
    variant_id = get(mapping.fields.get("id", "id")) if entry is not None else MISSING
    return HookItems(unpublish=[UnpublishItem(
        None if placement is MISSING else placement,
        None if variant_id is MISSING else variant_id, None, where, source)])


def _contentful(payload: Any, headers: Mapping[str, str], mapping: SchemeMapping,
                locale: str) -> HookItems:
    sys = payload.get("sys") if isinstance(payload, dict) else None
    if not isinstance(sys, dict):
        raise HookPayloadError("a Contentful body is an entry with 'sys'")
    topic = headers.get("x-contentful-topic", "")
    kind = topic.rsplit(".", 1)[-1] if topic else \
        ("unpublish" if sys.get("type") == "DeletedEntry" else "publish")
    action = {"publish": "publish", "unpublish": "unpublish", "archive": "unpublish",
              "delete": "unpublish"}.get(kind)
    if action is None or (topic and ".Entry." not in topic):
        return HookItems(ignored=f"Contentful topic {topic!r} publishes nothing")
    content_type = follow(sys, ["contentType", "sys", "id"])
    if content_type is not MISSING and not mapping.wants(content_type):
        return HookItems(ignored=f"content type {content_type!r} is not a variant type")
    fields = payload.get("fields")
    source = _source("contentful", sys.get("id"))

    def get(path: str) -> Any:
        name, *rest = path.split(".")
        by_locale = fields.get(name, MISSING) if isinstance(fields, dict) else MISSING
        if not isinstance(by_locale, dict) or locale not in by_locale:
            return MISSING
        return follow(by_locale[locale], rest)

    names = list(fields) if isinstance(fields, dict) else []
    return _entry_items(mapping, action, source, fields, get, names)


def _sanity(payload: Any, headers: Mapping[str, str], mapping: SchemeMapping) -> HookItems:
    if not isinstance(payload, dict):
        raise HookPayloadError("a Sanity body is the webhook's projection: a JSON object")
    document_id = payload.get("_id")
    if isinstance(document_id, str) and document_id.startswith("drafts."):
        return HookItems(ignored="a draft document publishes nothing")
    if "_type" in payload and not mapping.wants(payload["_type"]):
        return HookItems(ignored=f"document type {payload['_type']!r} is not a variant type")
    operation = headers.get("sanity-operation", "update").strip().lower()
    if operation not in ("create", "update", "delete"):
        return HookItems(ignored=f"Sanity operation {operation!r} publishes nothing")
    action = "unpublish" if operation == "delete" else "publish"
    return _entry_items(mapping, action, _source("sanity", document_id), payload,
                        lambda path: follow(payload, path.split(".")), list(payload))


def _strapi(payload: Any, headers: Mapping[str, str], mapping: SchemeMapping) -> HookItems:
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), dict):
        raise HookPayloadError('a Strapi body is {"event", "createdAt", "model", "entry"}')
    event = headers.get("x-strapi-event", "").strip() or str(payload.get("event", ""))
    entry: dict[str, Any] = payload["entry"]
    if not mapping.wants(payload.get("model")):
        return HookItems(ignored=f"model {payload.get('model')!r} is not a variant model")
    if event in ("entry.publish",):
        action = "publish"
    elif event in ("entry.unpublish", "entry.delete"):
        action = "unpublish"
    elif event in ("entry.create", "entry.update"):
        if entry.get("publishedAt", True) is None:
            return HookItems(ignored=f"{event} of a draft publishes nothing")
        action = "publish"
    else:
        return HookItems(ignored=f"Strapi event {event!r} publishes nothing")
    entry_id = entry.get("documentId", entry.get("id"))
    return _entry_items(mapping, action, _source("strapi", entry_id), entry,
                        lambda path: follow(entry, path.split(".")), list(entry))
