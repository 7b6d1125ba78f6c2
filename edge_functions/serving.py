"""The hot path: `GET /p/{placement}` and `GET /p?placements=a,b`.

Read top to bottom: parse → key → one lookup → manifest → redirect. Everything that can be
done earlier (manifest parsing, URL building, metric children) was done at start-up or when
the manifest changed.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from edge_functions.decision_record import HOLDOUT_ARM, decode_for_serving
from edge_functions.decision_store import BatchedDecisionReader
from edge_functions.errors import CorruptRecord, EdgepickError, InvalidIdentifier, UnknownPlacement
from edge_functions.identifiers import check_id, check_user_id
from edge_functions.keys import decision_key, user_tag
from edge_functions.manifest import ManifestCache, PlacementUrls
from edge_functions.metrics import EdgeMetrics

USER_COOKIE = "ep_uid"
OPT_OUT_COOKIE = "ep_optout"
USER_HEADER = "x-user-id"
SOURCE_HEADER = "x-edgepick-source"
MAX_BATCH_PLACEMENTS = 32
NO_STORE = "private, no-store"


class Edge:
    """The serving logic, built once per process with its clients and caches."""

    def __init__(self, secret: bytes, manifest: ManifestCache, reader: BatchedDecisionReader,
                 metrics: EdgeMetrics) -> None:
        self._secret = secret
        self.manifest = manifest
        self.reader = reader
        self.metrics = metrics

    async def placement(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            entry = self._placement_entry(request.path_params["placement"])
            user = _user_id(request)
        except EdgepickError as e:
            return self._reject(e)
        if user is None or _opted_out(request):
            url, source = entry.default_url, ("no-user" if user is None else "opted-out")
        else:
            key = decision_key(user_tag(self._secret, user), request.path_params["placement"])
            lookup = await self.reader.lookup([key])
            url, source = _choose(entry, lookup.values[0], lookup.fault)
        self.metrics.answers[source].inc()
        self.metrics.latency_single.observe(time.perf_counter() - started)
        return Response(status_code=302, headers={
            "location": url, "cache-control": NO_STORE, SOURCE_HEADER: source})

    async def placements(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            names = _placement_list(request.query_params.get("placements"))
            entries = [self._placement_entry(name) for name in names]
            user = _user_id(request)
        except EdgepickError as e:
            return self._reject(e)
        if user is None or _opted_out(request):
            source = "no-user" if user is None else "opted-out"
            chosen = [(entry.default_url, source) for entry in entries]
        else:
            tag = user_tag(self._secret, user)
            lookup = await self.reader.lookup([decision_key(tag, name) for name in names])
            chosen = [_choose(entry, raw, lookup.fault)
                      for entry, raw in zip(entries, lookup.values, strict=True)]
        for _, source in chosen:
            self.metrics.answers[source].inc()
        self.metrics.latency_batch.observe(time.perf_counter() - started)
        return JSONResponse(
            {name: url for name, (url, _) in zip(names, chosen, strict=True)},
            headers={"cache-control": NO_STORE,
                     SOURCE_HEADER: ",".join(f"{n}={s}" for n, (_, s) in zip(names, chosen))},
        )

    def _placement_entry(self, placement: str) -> PlacementUrls:
        check_id("placement", placement)
        entry = self.manifest.current.placements.get(placement)
        if entry is None:
            raise UnknownPlacement(f"placement {placement!r} is not published")
        return entry

    def _reject(self, error: EdgepickError) -> Response:
        self.metrics.rejected.labels(error.error_code).inc()
        return JSONResponse({"error": error.error_code, "detail": error.message},
                            status_code=error.http_status,
                            headers={"cache-control": NO_STORE})


def _choose(entry: PlacementUrls, raw: bytes | None, fault: str | None) -> tuple[str, str]:
    """The first ranked variant still published, else the default, with the reason."""
    if fault is not None:
        return entry.default_url, fault
    if raw is None:
        return entry.default_url, "no-decision"
    try:
        ranked, arm = decode_for_serving(raw)
    except CorruptRecord:
        return entry.default_url, "corrupt-record"
    if arm == HOLDOUT_ARM:
        return entry.default_url, "holdout"
    for variant in ranked:
        url = entry.urls.get(variant)
        if url is not None:
            return url, "decision"
    return entry.default_url, "not-eligible"


def _user_id(request: Request) -> str | None:
    """Cookie `ep_uid`, else header `X-User-Id`, else query `uid`; a malformed one is a 400."""
    value = request.cookies.get(USER_COOKIE)
    if value is None:
        value = request.headers.get(USER_HEADER)
    if value is None:
        value = request.query_params.get("uid")
    if value is None:
        return None
    return check_user_id(value)


def _opted_out(request: Request) -> bool:
    """Opt-out cookie, or the browser's Global Privacy Control signal."""
    return request.cookies.get(OPT_OUT_COOKIE) == "1" or request.headers.get("sec-gpc") == "1"


def _placement_list(raw: str | None) -> list[str]:
    if not raw:
        raise InvalidIdentifier("query parameter 'placements' is missing: use ?placements=a,b")
    names = raw.split(",")
    if len(names) > MAX_BATCH_PLACEMENTS:
        raise InvalidIdentifier(f"at most {MAX_BATCH_PLACEMENTS} placements per request")
    if len(set(names)) != len(names):
        raise InvalidIdentifier("query parameter 'placements' repeats a placement")
    return names
