"""The hot path: `GET /p/{placement}` and `GET /p?placements=a,b`.

Read top to bottom: parse → key → one lookup → manifest → redirect (→ an exposure queued,
when the decision served belongs to an experiment: exposures.py). Everything that can be
done earlier (manifest parsing, Location bytes, metric children) was done at start-up or
when the manifest changed. The single-placement route is plain ASGI: Starlette's request
and response objects cost more than the rest of the route together (profiled; see
docs/benchmarks.md).
"""

from __future__ import annotations

import time
from urllib.parse import parse_qsl

from starlette.requests import Request, cookie_parser
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from edge_functions.decision_record import HOLDOUT_ARM, decode_for_serving
from edge_functions.decision_store import BatchedDecisionReader
from edge_functions.errors import (
    CorruptRecord,
    EdgepickError,
    InvalidIdentifier,
    MethodNotAllowed,
    UnknownPlacement,
)
from edge_functions.http_errors import NO_STORE, error_body, from_error
from edge_functions.identifiers import check_id, check_user_id
from edge_functions.keys import decision_key, user_tag
from edge_functions.manifest import ManifestCache, PlacementUrls
from edge_functions.metrics import SOURCES, EdgeMetrics

USER_COOKIE = "ep_uid"
OPT_OUT_COOKIE = "ep_optout"
SOURCE_HEADER = "x-edgepick-source"
MAX_BATCH_PLACEMENTS = 32
PLACEMENT_PREFIX = "/p/"

_NO_STORE = (b"cache-control", NO_STORE.encode())
_ALLOW = (b"allow", b"GET, HEAD")
_EMPTY_BODY = {"type": "http.response.body", "body": b""}
_SOURCE_HEADERS = {source: (SOURCE_HEADER.encode(), source.encode()) for source in SOURCES}


class PlacementServer:
    """The serving logic, built once per process with its clients and caches."""

    def __init__(self, secret: bytes, manifest: ManifestCache, reader: BatchedDecisionReader,
                 metrics: EdgeMetrics) -> None:
        self._secret = secret
        self.manifest = manifest
        self.reader = reader
        self.exposures = reader.exposures
        self.metrics = metrics

    async def placement(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI endpoint for GET /p/{placement}: a 302 to the chosen variant."""
        started = time.perf_counter()
        placement = scope["path"][len(PLACEMENT_PREFIX):]
        try:
            if scope["method"] not in ("GET", "HEAD"):
                raise MethodNotAllowed(f"{scope['method']} is not allowed: use GET")
            entry = self._placement_entry(placement)
            user, opted_out = identify(scope)
        except EdgepickError as e:
            await self._reject(e, send)
            return
        if user is None or opted_out:
            location, source = entry.default_location, ("no-user" if user is None else "opted-out")
        else:
            lookup = await self.reader.lookup([decision_key(user_tag(self._secret, user),
                                                            placement)])
            location, source, experiment, arm = choose(entry, lookup.values[0], lookup.fault)
            if experiment:
                self.exposures.add(user, placement, experiment, arm)
        self.metrics.answers[source].inc()
        await send({"type": "http.response.start", "status": 302, "headers": [
            (b"location", location), _NO_STORE, _SOURCE_HEADERS[source],
            (b"content-length", b"0")]})
        await send(_EMPTY_BODY)
        self.metrics.latency_single.observe(time.perf_counter() - started)

    async def placements(self, request: Request) -> Response:
        """GET /p?placements=a,b: JSON map placement → URL, one store round trip."""
        started = time.perf_counter()
        try:
            names = _placement_list(request.query_params.get("placements"))
            entries = [self._placement_entry(name) for name in names]
            user, opted_out = identify(request.scope)
        except EdgepickError as e:
            return self._error_response(e)
        if user is None or opted_out:
            source = "no-user" if user is None else "opted-out"
            chosen = [(entry.default_location, source, "", "") for entry in entries]
        else:
            tag = user_tag(self._secret, user)
            lookup = await self.reader.lookup([decision_key(tag, name) for name in names])
            chosen = [choose(entry, raw, lookup.fault)
                      for entry, raw in zip(entries, lookup.values, strict=True)]
            for name, (_, _, experiment, arm) in zip(names, chosen, strict=True):
                if experiment:
                    self.exposures.add(user, name, experiment, arm)
        for _, source, _, _ in chosen:
            self.metrics.answers[source].inc()
        self.metrics.latency_batch.observe(time.perf_counter() - started)
        return JSONResponse(
            {name: location.decode("latin-1")
             for name, (location, *_) in zip(names, chosen, strict=True)},
            headers={"cache-control": NO_STORE,
                     SOURCE_HEADER: ",".join(f"{n}={s}" for n, (_, s, *_)
                                             in zip(names, chosen, strict=True))},
        )

    def _placement_entry(self, placement: str) -> PlacementUrls:
        entry = self.manifest.current.placements.get(placement)
        if entry is None:
            check_id("placement", placement)  # a malformed id is a 400, not a 404
            raise UnknownPlacement(f"placement {placement!r} is not published")
        return entry

    def _error_response(self, error: EdgepickError) -> Response:
        self.metrics.rejected.labels(error.error_code).inc()
        return from_error(error)

    async def _reject(self, error: EdgepickError, send: Send) -> None:
        self.metrics.rejected.labels(error.error_code).inc()
        body = error_body(error.error_code, error.message, error.field)
        headers = [(b"content-type", b"application/json"), _NO_STORE,
                   (b"content-length", str(len(body)).encode())]
        if isinstance(error, MethodNotAllowed):
            headers.append(_ALLOW)  # RFC 9110: a 405 lists the methods that are allowed
        await send({"type": "http.response.start", "status": error.http_status,
                    "headers": headers})
        await send({"type": "http.response.body", "body": body})



def choose(entry: PlacementUrls, raw: bytes | None,
           fault: str | None) -> tuple[bytes, str, str, str]:
    """The first ranked variant still published, else the default, with the reason; and the
    experiment and arm to log an exposure for: experiment "" unless a decision of an
    experiment was served, its variant or, for the `holdout` arm (of the comparison of
    personalization with the holdout), the default it gets by rule. A fallback exposes
    nothing."""
    if fault is not None:
        return entry.default_location, fault, "", ""
    if raw is None:
        return entry.default_location, "no-decision", "", ""
    try:
        ranked, arm, experiment = decode_for_serving(raw)
    except CorruptRecord:
        return entry.default_location, "corrupt-record", "", ""
    if arm == HOLDOUT_ARM:
        return entry.default_location, "holdout", experiment, arm
    for variant in ranked:
        location = entry.locations.get(variant)
        if location is not None:
            return location, "decision", experiment, arm
    return entry.default_location, "not-eligible", "", ""


def identify(scope: Scope) -> tuple[str | None, bool]:
    """(user id, opted out) from one pass over the headers.

    The user is cookie `ep_uid`, else header `X-User-Id`, else query `uid`; a malformed one
    is a 400. Opting out is cookie `ep_optout=1` or the Global Privacy Control header.
    """
    cookie_header = header_user = None
    opted_out = False
    for name, value in scope["headers"]:
        if name == b"cookie":
            cookie_header = value if cookie_header is None else cookie_header + b"; " + value
        elif name == b"x-user-id":
            header_user = value
        elif name == b"sec-gpc" and value == b"1":
            opted_out = True
    user: str | None = None
    if cookie_header is not None:
        # Parsed as latin-1, which keeps every byte: other cookies may hold anything. Only
        # our cookie's value is read as the UTF-8 it was written in (the worker keys its
        # UTF-8 bytes too).
        cookies = cookie_parser(cookie_header.decode("latin-1"))
        user = cookies.get(USER_COOKIE)
        if user is not None and not user.isascii():
            user = _utf8(user.encode("latin-1"), "cookie ep_uid")
        opted_out = opted_out or cookies.get(OPT_OUT_COOKIE) == "1"
    if user is None and header_user is not None:
        user = _utf8(header_user, "user id header")
    if user is None and scope["query_string"]:
        # Percent-escapes as bytes (latin-1), then UTF-8: never a replacement character.
        for key, value in parse_qsl(scope["query_string"].decode("latin-1"),
                                    keep_blank_values=True, encoding="latin-1"):
            if key == "uid":
                user = value if value.isascii() else _utf8(value.encode("latin-1"),
                                                           "query parameter 'uid'")
                break
    return (None if user is None else check_user_id(user)), opted_out


def _utf8(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeError as e:
        raise InvalidIdentifier(f"{where} is not UTF-8") from e


def _placement_list(raw: str | None) -> list[str]:
    if not raw:
        raise InvalidIdentifier("query parameter 'placements' is missing: use ?placements=a,b")
    names = raw.split(",")
    if len(names) > MAX_BATCH_PLACEMENTS:
        raise InvalidIdentifier(f"at most {MAX_BATCH_PLACEMENTS} placements per request")
    if len(set(names)) != len(names):
        raise InvalidIdentifier("query parameter 'placements' repeats a placement")
    return names
