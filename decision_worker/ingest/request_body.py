"""Request bodies as the events API accepts them: UTF-8 JSON, optionally gzip-compressed,
read within a size bound.

The JSON is read strictly, because what is accepted here must also be storable and usable
downstream (the stream, the event log, the worker's profiles): numbers must be finite and fit
in 64 bits (`NaN`, `Infinity`, `1e400` and a 5,000-digit integer are refused, not turned
into `null` or a float), and nesting that would exhaust the parser is a clear 400. A gzip
body is decompressed with a bound on its decompressed size, so a small "zip bomb" costs no
more than an honest body of the limit's size.
"""

from __future__ import annotations

import json
import math
import zlib
from typing import Any

from starlette.requests import ClientDisconnect, Request

from decision_worker.errors import RequestRejected

INT_MIN, INT_MAX = -(2**63), 2**63 - 1
MAX_INT_DIGITS = 20  # longer literals are refused before int() parses them
GZIP_ENCODINGS = ("gzip", "x-gzip")


class _NumberRefused(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NumberRefused(f"contains {name}, which is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NumberRefused(f"contains the number {text[:40]}, which is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise _NumberRefused(f"contains an integer of {len(text)} digits (at most a 64-bit "
                             "integer is accepted)")
    value = int(text)
    if not INT_MIN <= value <= INT_MAX:
        raise _NumberRefused(f"contains the integer {text}, which is not a 64-bit integer")
    return value


_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_int=_bounded_int,
                            parse_constant=_refuse_constant)


def decode_body(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """The body as sent, decompressed when `Content-Encoding` says gzip (at most
    `max_bytes` once decompressed); another encoding is a 415 naming it."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in GZIP_ENCODINGS:
        raise RequestRejected(415, "(body)", f"has Content-Encoding {encoding[:40]!r}: send it "
                                          "uncompressed or gzip-compressed")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error as e:
        raise RequestRejected(400, "(body)", f"is not valid gzip: {e}") from e
    if len(out) > max_bytes:
        raise RequestRejected(413, "(body)", f"is larger than {max_bytes} bytes once "
                                          "decompressed")
    if not inflater.eof or inflater.unused_data:
        raise RequestRejected(400, "(body)", "is not one complete gzip stream")
    return out


def loads_strict(body: bytes) -> Any:
    """Parse UTF-8 JSON with the bounds above; anything else is a 400 saying why."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RequestRejected(400, "(body)", f"is not UTF-8 text: {e.reason} at byte "
                                          f"{e.start}") from e
    try:
        return _DECODER.decode(text)
    except _NumberRefused as e:
        raise RequestRejected(400, "(body)", str(e)) from e
    except json.JSONDecodeError as e:
        raise RequestRejected(400, "(body)", f"is not JSON: {e}") from e
    except RecursionError as e:
        raise RequestRejected(400, "(body)", "is nested too deeply to be a Segment message") from e


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request's body as sent, refused (413) past `max_bytes` without reading the rest;
    a body that never arrives whole (the client left, or the protocol's body timeout) is a
    400."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > max_bytes):
        raise RequestRejected(413, "(body)", f"is larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise RequestRejected(413, "(body)", f"is larger than {max_bytes} bytes")
            chunks.append(chunk)
    except ClientDisconnect as e:
        raise RequestRejected(400, "(body)", "did not arrive completely") from e
    return b"".join(chunks)
