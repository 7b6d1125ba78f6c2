"""What every fuzz test shares: its settings, and strategies for hostile input of any kind.

A fuzz test drives a public input (an HTTP route, a webhook, a content folder) with
generated hostile data and checks invariants that must hold whatever arrives. It is
decorated with `FUZZ`, whose number of examples comes from the hypothesis profile chosen
with `HYPOTHESIS_PROFILE` (registered in tests/conftest.py):

- `ci` (the default): 2,000 examples per fuzz test, derandomized, so every run tries the
  same cases and a CI failure reproduces on any machine;
- `nightly`: 10,000 random examples per fuzz test, new ones every run; a failure is saved
  in `.hypothesis/` and tried first on the next run.

A fuzz test that costs much more per example (a whole worker run) takes `fuzz_share(…)` of
that number. Small property tests that are not fuzz tests set their own `max_examples`.
A fuzz test that needs state across examples (one server, one Redis) defines its `@given`
function inside the pytest test, runs it, then checks what must hold at the end.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
from typing import Any
from urllib.parse import quote_from_bytes

from hypothesis import settings
from hypothesis import strategies as st

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
FUZZ = settings(settings.get_profile(PROFILE))


def fuzz_share(fraction: float) -> settings:
    """FUZZ with `fraction` of its examples (at least 10): for costly fuzz tests."""
    return settings(FUZZ, max_examples=max(10, int(FUZZ.max_examples * fraction)))


# -- text and JSON ------------------------------------------------------------------------


class Padding(str):
    """A long filler string that prints as `"x" * 32700` in a failing example."""

    def __repr__(self) -> str:
        return f"{self[:1]!r} * {len(self)}"


def padding(n: int) -> str:
    return Padding("x" * n)


class Blob(bytes):
    """A large body that prints as its length and first bytes in a failing example."""

    def __repr__(self) -> str:
        return f"<{len(self)} bytes: {bytes(self[:48])!r}…>"


# Characters that break naive code: NUL and other controls, DEL, C1 NEXT LINE, zero-width
# and bidi overrides, a BOM, lone surrogates (not valid Unicode text), astral characters.
NASTY_CHARACTERS = ("\x00", "\x07", "\t", "\n", "\r", "\x1b", "\x7f", "\x85", "\u00a0",
                    "\u200b", "\u202e", "\u2028", "\ufeff", "\ufffd", "\ud800", "\udfff",
                    "\U0001f600", "é", "中", "ß", "İ")


@functools.cache  # building a strategy costs more than drawing from it: build each once
def hostile_text(max_size: int = 24) -> st.SearchStrategy[str]:
    """Any string, lone surrogates included, biased to the characters in NASTY_CHARACTERS."""
    return st.text(st.sampled_from(NASTY_CHARACTERS)
                   | st.characters(codec=None, exclude_categories=()), max_size=max_size)


# Integers just inside and outside 64 bits, floats at the edges of a double.
EDGE_NUMBERS: tuple[int | float, ...] = (
    0, -1, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 2**63, 2**64, -(2**63) - 1, 10**30,
    0.0, -0.0, 0.1, 1e-320, 1.7976931348623157e308, float("nan"), float("inf"),
    float("-inf"))


@functools.cache
def json_scalars() -> st.SearchStrategy[Any]:
    return (st.none() | st.booleans() | st.integers() | st.sampled_from(EDGE_NUMBERS)
            | st.floats(allow_nan=True, allow_infinity=True) | hostile_text())


@functools.cache
def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Values as `json.loads` may return them, and some it may not (NaN, lone surrogates,
    integers of any size): what a lenient encoder would send."""
    return st.recursive(json_scalars(), lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(hostile_text(8), inner, max_size=4),
                        max_leaves=max_leaves)


@st.composite
def json_encoded(draw: st.DrawFn, value: Any) -> bytes:
    """`value` as JSON text the way different senders write it: ASCII-escaped (lone
    surrogates become `\\ud800`), raw UTF-8 (lone surrogates become invalid UTF-8), with
    `NaN`/`Infinity` literals, compact or spaced."""
    ascii_only = draw(st.booleans())
    text = json.dumps(value, ensure_ascii=ascii_only, allow_nan=True,
                      separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])))
    return text.encode("utf-8", "surrogatepass")


# -- bodies -------------------------------------------------------------------------------


def hostile_json_texts(limit: int) -> st.SearchStrategy[bytes]:
    """Bodies that are almost JSON, at the limits of parsers: deep nesting, huge numbers,
    non-standard literals, escapes of lone surrogates, truncation, BOMs."""
    depth = st.integers(1, 5_000)
    nested = depth.flatmap(lambda n: st.sampled_from([
        b"[" * n + b"]" * n, b"[" * n, b'{"a":' * n + b"1" + b"}" * n,
        b'{"batch": ' + b"[" * n + b"]" * n + b"}"]))
    digits = st.integers(1, 6_000).map(lambda n: b"9" * n)
    literals = st.sampled_from([
        b"NaN", b"-Infinity", b"Infinity", b"1e400", b"-1e400", b"1e-400", b"-0",
        b"9223372036854775808", b"-9223372036854775809", b"18446744073709551616",
        b"0x10", b"01", b"1.", b".5", b"+1", b"1e", b"true", b"null", b'"\\ud800"',
        b'"\\udc00\\ud800"', b'"\\u0000"', b'"\\x41"', b"'single'", b"\xef\xbb\xbf{}",
        b"{}", b"[]", b'{"batch": null}', b'{"batch": {}}', b"{" + b" " * 100 + b"}",
        b'{"a": 1,}', b'{"a": 1 "b": 2}', b'{"a"}', b"", b" ", b"\x00"])
    numbers_in_message = (digits | literals).map(
        lambda n: b'{"type": "track", "event": "X", "userId": "u", "properties": {"n": '
                  + n + b"}}")
    limits = st.sampled_from([limit - 1, limit, limit + 1]).map(
        lambda n: b'{"batch": [], "pad": "' + b"x" * (n - 24) + b'"}')
    return (nested | digits | literals | numbers_in_message | limits).map(Blob)


@st.composite
def spliced(draw: st.DrawFn, body: bytes) -> bytes:
    """`body` with bytes inserted, removed or cut off at a random place."""
    at = draw(st.integers(0, len(body)))
    how = draw(st.sampled_from(["insert", "cut", "truncate"]))
    if how == "insert":
        return body[:at] + draw(st.binary(min_size=1, max_size=4)) + body[at:]
    if how == "cut":
        return body[:at] + body[at + draw(st.integers(1, 8)):]
    return body[:at]


CONTENT_ENCODINGS = ("gzip", "x-gzip", "GZIP", "deflate", "br", "compress",
                     "zstd", "gzip, gzip", "identity", "", "bogus/1.0")


@st.composite
def encoded_body(draw: st.DrawFn, body: bytes) -> tuple[bytes, dict[str, str]]:
    """`body` sent as is, gzip-compressed (whole, truncated, twice, or as two members), or
    with another `Content-Encoding`; returns (bytes on the wire, headers)."""
    how = draw(st.sampled_from(["plain", "plain", "gzip", "gzip-truncated", "gzip-twice",
                                "gzip-two-members", "gzip-trailing", "other"]))
    if how == "plain":
        return body, {}
    if how == "other":
        encoding = draw(st.sampled_from(CONTENT_ENCODINGS))
        wire = gzip.compress(body) if draw(st.booleans()) else body
        return wire, {"content-encoding": encoding}
    zipped = gzip.compress(body, mtime=0)
    wire = {"gzip": zipped,
            "gzip-truncated": zipped[:draw(st.integers(0, max(0, len(zipped) - 1)))],
            "gzip-twice": gzip.compress(zipped, mtime=0),
            "gzip-two-members": zipped + zipped,
            "gzip-trailing": zipped + b"\x00junk"}[how]
    return wire, {"content-encoding": draw(st.sampled_from(["gzip", "x-gzip", "GZip"]))}


def oversized_bodies(limit: int) -> st.SearchStrategy[tuple[bytes, dict[str, str]]]:
    """Bodies over `limit` bytes as sent, or only once decompressed (a small "gzip bomb")."""
    sizes = st.sampled_from([limit + 1, limit + 1024, 2 * limit])
    plain = sizes.map(lambda n: (Blob(b"[" + b" " * (n - 2) + b"]"), dict[str, str]()))
    bomb = st.sampled_from([limit + 1, 40 * limit]).map(
        lambda n: (_zipped_spaces(n), {"content-encoding": "gzip"}))
    return plain | bomb


@functools.cache
def _zipped_spaces(n: int) -> bytes:
    return Blob(gzip.compress(b" " * n, mtime=0))


# -- HTTP requests ------------------------------------------------------------------------


@st.composite
def url_encoded(draw: st.DrawFn, text: str) -> bytes:
    """`text` as it may appear in a request target: raw UTF-8 bytes (lone surrogates become
    invalid UTF-8), every byte percent-encoded (upper or lower case hex), only what a URL
    must escape, or a random mix of raw and escaped characters."""
    raw = text.encode("utf-8", "surrogatepass")
    how = draw(st.sampled_from(["raw", "all", "needed", "mixed"]))
    if how == "raw":
        return raw
    if how == "all":
        form = draw(st.sampled_from(["%{:02X}", "%{:02x}"]))
        return "".join(form.format(b) for b in raw).encode("ascii")
    if how == "needed":
        return quote_from_bytes(raw, safe="").encode("ascii")
    escaped = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return b"".join(quote_from_bytes(c.encode("utf-8", "surrogatepass"), safe="").encode()
                    if e else c.encode("utf-8", "surrogatepass")
                    for c, e in zip(text, escaped, strict=True))


_TARGET_BYTES = frozenset(range(0x21, 0x7F)) - {ord("#")}
_FIELD_BYTES = frozenset([0x09, *range(0x20, 0x7F), *range(0x80, 0x100)])


def target_safe(data: bytes) -> bytes:
    """`data` as a request target a parser accepts: every byte that may not appear in one
    as it is (controls, space, non-ASCII, `#`) percent-encoded."""
    return b"".join(bytes([b]) if b in _TARGET_BYTES else b"%%%02X" % b for b in data)


def field_safe(data: bytes) -> bytes:
    """`data` as a header value a parser accepts (RFC 9110 field-value: visible ASCII,
    space, tab and any byte from 0x80): control characters, CR, LF and DEL dropped."""
    return bytes(b for b in data if b in _FIELD_BYTES)


@functools.cache
def header_values(max_size: int = 64) -> st.SearchStrategy[bytes]:
    """Header values a parser accepts, hostile to what reads them: invalid UTF-8, UTF-8 of
    hostile text (bidi overrides, zero-width characters), surrounding whitespace."""
    return (st.binary(max_size=max_size).map(field_safe)
            | hostile_text(max_size // 4).map(
                lambda t: field_safe(t.encode("utf-8", "surrogatepass"))))


# Header lines a parser must refuse or survive: no colon, obsolete line folding, a space
# before the colon, bare CR or LF inside, NUL, an empty name, non-token names.
MALFORMED_HEADER_LINES = (
    b"NoColonHere", b" folded: continuation", b"\tfolded", b"X-A : spaced", b"X-A: a\rb",
    b"X-A: a\nb", b"X-A: a\x00b", b": empty-name", b"X A: b", b"X-\xff: b", b"X-A:",
    b"X-A:no-space", b"X-A:   ", b"\x00: b", b"X-A: " + b"\x7f" * 3, b"X-A\x0b: b")
