"""Who may call the CMS hook: four signature schemes, each checked in constant time.

The scheme is chosen by the header that carries its signature; each needs its own secret
(an unset secret refuses the scheme). Every refusal is a HookAuthError (401) naming the
problem: a missing header, a bad signature, a stale timestamp (further than the tolerance
from now, either way), or (checked by the caller, in Redis) a replay.

- edgepick: `X-Edgepick-Timestamp: <unix seconds>`,
  `X-Edgepick-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
- Contentful (request verification, as `@contentful/node-apps-toolkit` signs):
  `x-contentful-signature` = hex HMAC-SHA256(secret, canonical request), where the canonical
  request is `METHOD \\n path \\n headers \\n body`; `headers` joins `name:value` with `;`
  for the headers named in `x-contentful-signed-headers` (names lower-cased, values
  trimmed, sorted by name, the timestamp and signed-headers headers always included, the
  latter's value rewritten as the sorted, comma-joined names); `path` is the request target
  as `encodeURI` leaves it (a query string escaped as by `querystring.escape` first);
  `x-contentful-timestamp` is in milliseconds.
- Sanity (`@sanity/webhook`): `sanity-webhook-signature: t=<unix ms>,v1=<sig>` where
  sig = base64url (no padding) of HMAC-SHA256(secret, "<t>.<body>").
- Strapi: no signature; `Authorization: Bearer <secret>` (compared in constant time); the
  body's `createdAt` must be within the tolerance, and a body is accepted once.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from content_variants.errors import PublishError
from content_variants.settings import PublisherSettings

SCHEMES = ("edgepick", "contentful", "sanity", "strapi")
_SANITY_HEADER = re.compile(r"t=(\d{1,16})[, ]+v1=([^, ]+)")
_EDGEPICK_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")


class HookAuthError(PublishError):
    """The request is not proven to come from the CMS: 401, `error` names the problem."""

    http_status = 401

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


@dataclass(frozen=True)
class HookSecrets:
    edgepick: str | None = None
    contentful: str | None = None
    sanity: str | None = None
    strapi: str | None = None

    @classmethod
    def from_settings(cls, settings: PublisherSettings) -> HookSecrets:
        return cls(settings.hook_secret, settings.contentful_secret, settings.sanity_secret,
                   settings.strapi_secret)


@dataclass(frozen=True)
class Verified:
    scheme: str
    replay_token: str  # SHA-256 hex of what makes this request unique (signature or body)


def detect_scheme(headers: Mapping[str, str]) -> str:
    """The scheme whose signature header is present (edgepick's first)."""
    for scheme, header in (("edgepick", "x-edgepick-signature"),
                           ("contentful", "x-contentful-signature"),
                           ("sanity", "sanity-webhook-signature"),
                           ("strapi", "x-strapi-event")):
        if header in headers:
            return scheme
    raise HookAuthError("missing_header", "no signature header: send X-Edgepick-Signature, "
                                          "x-contentful-signature, sanity-webhook-signature "
                                          "or X-Strapi-Event with Authorization")


def verify(method: str, target: str, headers: Mapping[str, str], body: bytes,
           secrets: HookSecrets, tolerance_s: float, now: float) -> Verified:
    """Check the request's signature and freshness; `headers` has lower-case names and
    `target` is the raw path and query as received. Raises HookAuthError."""
    scheme = detect_scheme(headers)
    secret = getattr(secrets, scheme)
    if not secret:
        raise HookAuthError("scheme_not_configured",
                            f"the {scheme} scheme has no secret configured on this server")
    key = secret.encode("utf-8")
    if scheme == "edgepick":
        token = _edgepick(headers, body, key, tolerance_s, now)
    elif scheme == "contentful":
        token = _contentful(method, target, headers, body, key, tolerance_s, now)
    elif scheme == "sanity":
        token = _sanity(headers, body, key, tolerance_s, now)
    else:
        token = _strapi(headers, body, key, tolerance_s, now)
    return Verified(scheme, hashlib.sha256(token).hexdigest())


def _header(headers: Mapping[str, str], name: str, shown: str) -> str:
    value = headers.get(name)
    if value is None:
        raise HookAuthError("missing_header", f"header {shown} is missing")
    return value


def _same(expected: str, given: str) -> bool:
    # Headers arrive as latin-1 text; compare bytes so any character is a mismatch, not an error.
    return hmac.compare_digest(expected.encode("latin-1", "replace"),
                               given.encode("latin-1", "replace"))


def _fresh(timestamp_s: float, tolerance_s: float, now: float, shown: str) -> None:
    if abs(now - timestamp_s) > tolerance_s:
        raise HookAuthError("stale_timestamp", f"{shown} is more than {tolerance_s:g} s away "
                                               "from the server's clock")


def _unix(value: str, shown: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 16:
        raise HookAuthError("bad_timestamp", f"{shown} is not a unix timestamp")
    return int(value)


def _edgepick(headers: Mapping[str, str], body: bytes, key: bytes, tolerance_s: float,
              now: float) -> bytes:
    signature = _header(headers, "x-edgepick-signature", "X-Edgepick-Signature")
    timestamp = _header(headers, "x-edgepick-timestamp", "X-Edgepick-Timestamp").strip()
    seconds = _unix(timestamp, "X-Edgepick-Timestamp")
    match = _EDGEPICK_SIGNATURE.fullmatch(signature.strip())
    expected = hmac.new(key, timestamp.encode("ascii") + b"." + body, "sha256").hexdigest()
    if match is None or not _same(expected, match.group(1).lower()):
        raise HookAuthError("bad_signature", "X-Edgepick-Signature does not match the body "
                                             "and timestamp (sha256=<hex HMAC-SHA256 of "
                                             "\"<timestamp>.<body>\">)")
    _fresh(seconds, tolerance_s, now, "X-Edgepick-Timestamp")
    return expected.encode("ascii")


def _contentful(method: str, target: str, headers: Mapping[str, str], body: bytes, key: bytes,
                tolerance_s: float, now: float) -> bytes:
    signature = _header(headers, "x-contentful-signature", "x-contentful-signature").strip()
    signed = _header(headers, "x-contentful-signed-headers", "x-contentful-signed-headers")
    raw_ms = _header(headers, "x-contentful-timestamp", "x-contentful-timestamp").strip()
    millis = _unix(raw_ms, "x-contentful-timestamp")
    normalized = {name.strip().lower(): value.strip() for name, value in headers.items()}
    picked = {name: value for name, value in normalized.items()
              if name in signed.split(",")}
    names = sorted({*picked, "x-contentful-signed-headers", "x-contentful-timestamp"})
    picked["x-contentful-timestamp"] = str(millis)
    picked["x-contentful-signed-headers"] = ",".join(names)
    canonical = "\n".join([method.upper(), contentful_path(target),
                           ";".join(f"{name}:{picked[name]}" for name in names), ""])
    expected = hmac.new(key, canonical.encode("utf-8") + body, "sha256").hexdigest()
    if not _same(expected, signature):
        raise HookAuthError("bad_signature", "x-contentful-signature does not match the "
                                             "canonical request (method, path, signed "
                                             "headers, body)")
    _fresh(millis / 1000, tolerance_s, now, "x-contentful-timestamp")
    return expected.encode("ascii")


def contentful_path(target: str) -> str:
    """The path as Contentful's signer normalizes it: the query string escaped as a whole
    (`querystring.escape`), then everything through `encodeURI`."""
    path, _, query = target.partition("?")
    if query:
        path = path + "?" + quote(query, safe="-_.!~*'()")
    return quote(path, safe=";,/?:@&=+$-_.!~*'()#")


def _sanity(headers: Mapping[str, str], body: bytes, key: bytes, tolerance_s: float,
            now: float) -> bytes:
    header = _header(headers, "sanity-webhook-signature", "sanity-webhook-signature").strip()
    match = _SANITY_HEADER.fullmatch(header)
    if match is None:
        raise HookAuthError("bad_signature", "sanity-webhook-signature is not "
                                             "t=<timestamp>,v1=<signature>")
    millis, given = match.group(1), match.group(2)
    digest = hmac.new(key, millis.encode("ascii") + b"." + body, "sha256").digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    if not _same(expected, given):
        raise HookAuthError("bad_signature", "sanity-webhook-signature does not match the "
                                             "body and timestamp")
    _fresh(int(millis) / 1000, tolerance_s, now, "the sanity-webhook-signature timestamp")
    return expected.encode("ascii")


def _strapi(headers: Mapping[str, str], body: bytes, key: bytes, tolerance_s: float,
            now: float) -> bytes:
    authorization = _header(headers, "authorization", "Authorization").strip()
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or \
            not hmac.compare_digest(key, token.strip().encode("latin-1", "replace")):
        raise HookAuthError("bad_signature", "Authorization is not Bearer <the Strapi secret>")
    try:
        payload = json.loads(body)
        created = payload.get("createdAt", payload.get("created_at"))
        when = dt.datetime.fromisoformat(str(created))
    except (ValueError, AttributeError, TypeError, RecursionError) as e:  # (deep nesting)
        raise HookAuthError("bad_timestamp", "the Strapi body has no createdAt time") from e
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    _fresh(when.timestamp(), tolerance_s, now, "createdAt")
    return body
