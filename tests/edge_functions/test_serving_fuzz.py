"""Every request the edge can be sent, generated and written raw to a socket (no client
normalises anything), against the real edge app on edgepick's HTTP protocol, a real Redis
and the example catalog with decided users: never a 5xx; a 302 only ever to a URL of the
manifest, of the placement the path names (its default unless the source is a decision, and
a decision only for a user who has one); every 4xx the JSON error shape, never cached
(408/431/400 from the protocol included); a source header the edge knows; and a valid
request right after (on the same connection when it is kept) gets its decision.
Also the pure functions of the hot path (`identify`, `decode_for_serving`, `choose`), in
process, with arbitrary bytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import posixpath
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import httptools
import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis import Redis

from content_variants.object_keys import DIGEST_HEX_CHARS, VARIANT_KEY
from decision_worker.online.pinning import pin
from edge_functions.decision_record import DecisionRecord, decode_for_serving, encode
from edge_functions.errors import CorruptRecord, InvalidIdentifier
from edge_functions.identifiers import check_user_id
from edge_functions.keys import MANIFEST_KEY, decision_key, user_tag
from edge_functions.local_origin import IMMUTABLE
from edge_functions.manifest import Manifest, PlacementUrls, parse_bytes
from edge_functions.metrics import SOURCES
from edge_functions.serving import choose, identify
from tests.conftest import SECRET, Settings
from tests.fuzzing import (
    FUZZ,
    MALFORMED_HEADER_LINES,
    Blob,
    field_safe,
    header_values,
    hostile_text,
    spliced,
    target_safe,
    url_encoded,
)
from tests.raw_http import RawClient

MAX_HEAD = 8192
HEAD_TIMEOUT_S = 0.2  # short, so a stalled request head costs an example little
BODY_TIMEOUT_S = 0.3
NO_STORE = "private, no-store"
PLACEMENTS = ("hero", "cta", "email-header")
# Users with a decision: user → placement → the variant decided. Everyone else has none.
DECIDED = {"alice": {"hero": "trail-running", "cta": "free-shipping"},
           "jos\u00e9": {"hero": "winter-camping"},
           "\u30e6\u30fc\u30b6\u30fc7": {"email-header": "back-in-stock"},
           "Zo\u00eb-\U0001f642": {"cta": "app-download"},
           "u" * 256: {"hero": "climbing-es"}}
# Users whose record makes the edge fall back to the default, and why.
FALLBACKS = {"held": "holdout", "mangled": "corrupt-record", "gone": "not-eligible"}
VALID_USERS = (*DECIDED, *FALLBACKS, "nobody")
USERS = (*VALID_USERS, "u" * 257, "", " ", "a\x00b", "\u202eevil")
PROBE = b"GET /p/hero HTTP/1.1\r\nHost: edge.test\r\nCookie: ep_uid=alice\r\n\r\n"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A store budget no busy test machine exceeds: a store fault here would be the machine's.
    return dataclasses.replace(settings, http_header_timeout_s=HEAD_TIMEOUT_S,
                               http_body_timeout_s=BODY_TIMEOUT_S, http_max_head_bytes=MAX_HEAD,
                               store_budget_ms=2000.0)


@dataclass
class Edge:
    base: str
    manifest: Manifest

    def objects(self) -> tuple[str, ...]:
        """Paths of every published object (`/content/…`)."""
        return tuple(sorted(urlsplit(url).path for entry in self.manifest.placements.values()
                            for url in entry.urls.values()))

    def decided_urls(self, placement: str) -> set[str]:
        urls = self.manifest.placements[placement].urls
        return {urls[decided[placement]] for decided in DECIDED.values() if placement in decided}

    def check_probe(self, answer: tuple[int, dict[str, str], bytes]) -> None:
        status, headers, _ = answer
        assert status == 302, answer
        assert headers["x-edgepick-source"] == "decision", headers
        assert headers["location"] == self.manifest.placements["hero"].urls["trail-running"]


@pytest.fixture
def edge(served_example: tuple[Settings, str], redis: Redis) -> Edge:
    """One server for every example: the example catalog, users with decisions, and users
    whose records fall back (holdout, corrupt, no longer published)."""
    _, base = served_example
    for user, decided in DECIDED.items():
        for placement, variant in decided.items():
            pin(redis, SECRET.encode(), user, placement, [variant], 3600)
    records = {"held": encode(DecisionRecord(("trail-running",), "m1", "holdout", 1)),
               "mangled": b"1|trail-running|m1",
               "gone": encode(DecisionRecord(("retired",), "m1", "treatment", 1))}
    for user, record in records.items():
        for placement in PLACEMENTS:
            redis.set(decision_key(user_tag(SECRET.encode(), user), placement), record, ex=3600)
    raw = redis.get(MANIFEST_KEY)
    assert isinstance(raw, bytes)
    return Edge(base, parse_bytes(raw))


# -- generated requests --------------------------------------------------------------------
# A request is well-formed HTTP carrying hostile *values* (paths, queries, cookies, user ids,
# header values, sizes) that the app itself must handle; about one in four then gets one
# hostile *syntax* mutation (a bad method or version, raw bytes in the target, a control
# character or a malformed line in the head, an upgrade, a body that never ends or is framed
# twice, a head near or over the limit, a head that never ends) for the HTTP protocol.

METHODS = (b"GET",) * 60 + (b"HEAD",) * 6 + (b"POST", b"OPTIONS", b"PUT", b"DELETE", b"PATCH",
                                          b"TRACE", b"PROPFIND")
BAD_METHODS = (b"get", b"Get", b"GETT", b"G\x00T", b"", b"GET GET", b"\xff", b"GET\t",
               b"CONNECT", b"PRI")
VERSIONS = (b"HTTP/1.1",) * 5 + (b"HTTP/1.0",)
BAD_VERSIONS = (b"HTTP/2.0", b"HTTP/1.2", b"HTTP/0.9", b"", b"http/1.1", b"HTTP/1.1 junk",
                b"HTTP/1.10", b"HTTP/1.1\x00")
SEGMENTS = ("sidebar", "Hero", "HERO", "hero ", " hero", "hero/", "hero/x", "", ".", "..",
            "../healthz", "hero/../cta", "-hero", "_x", "x" * 64, "x" * 65, "hero\x00",
            "hero\n", "hero%", "hero%2", "%zz", "hero;x", "hero?", "h\u00e9ro", "hero\u200b",
            "\uff48\uff45\uff52\uff4f", "%68ero", "hero%2F..%2Fhealthz", "hero%00")
OTHER_TARGETS = (
    b"/p", b"/p/", b"/healthz", b"/metrics", b"/content/", b"/content/hero/", b"*",
    b"http://evil.example/p/hero", b"//evil.example/p/hero", b"/p/hero#frag", b"/P/hero",
    b"/p//hero", b"/./p/hero", b"/p/./hero", b"p/hero", b"", b"/%70/hero", b"/p%2Fhero",
    b"/content/../manifest/current.json", b"/content/%2e%2e/manifest/current.json",
    b"/content/.upload-x", b"/content/hero/%00", b"/content/hero/x%00.json",
    b"/content/" + b"a" * 300, b"/content/hero/" + b"b/" * 200, b"/healthz/",
    b"/content/hero/variant-evergreen.json", b"/metrics?x=%ff", b"/%ff", b"/p/%c3%a9")
QUERY_KEYS = ("uid", "uid", "placements", "placements", "UID", "uid[]", "", "x", "ep_uid",
              "u%69d")
COOKIE_NAMES = (b"ep_uid", b"ep_uid", b"ep_uid", b"ep_optout", b"EP_UID", b"ep_uid ",
                b" ep_uid", b"theme", b"", b"ep_uid\xc3\xa9", b"$Version")
OTHER_HEADERS = (b"X-Foo", b"Accept", b"Content-Type", b"Range", b"If-None-Match",
                 b"X-Forwarded-For", b"Host", b"Origin", b"Accept-Encoding", b"Authorization",
                 b"X-Edgepick-Source", b"Location", b"Upgrade")
UPGRADES = ((b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="),
            b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABk",
            b"Connection: Upgrade\r\nUpgrade: \xff", b"Connection: close", b"Connection: \xff",
            b"Expect: 100-continue", b"Expect: \xff")
MUTATIONS = ("method", "version", "raw-target", "control-character", "malformed-line",
             "upgrade", "short-body", "both-lengths", "oversized")


def _user_bytes(user: str) -> bytes:
    return user.encode("utf-8", "surrogatepass")


def users() -> st.SearchStrategy[str]:
    """Mostly users the store knows (with a decision, a fallback, or none), else ids that
    are too long, empty, or hold control or bidi characters."""
    valid = st.sampled_from(VALID_USERS)
    return st.one_of(valid, valid, valid, st.sampled_from(USERS), hostile_text(40))


@st.composite
def segments(draw: st.DrawFn) -> bytes:
    """What follows `/p/`: ids, near-ids, hostile text, any bytes, very long."""
    published = st.sampled_from(PLACEMENTS)
    return draw(st.one_of(
        published.map(str.encode), published.map(str.encode), published.map(str.encode),
        st.sampled_from(PLACEMENTS + SEGMENTS).flatmap(url_encoded),
        hostile_text(40).flatmap(url_encoded),
        st.binary(max_size=24),
        st.sampled_from([65, 300, MAX_HEAD - 100, MAX_HEAD + 10]).map(lambda n: b"a" * n)))


@st.composite
def placement_lists(draw: st.DrawFn) -> str:
    """`placements=` values: repeats, empties, unknown and invalid ids, 32 and more."""
    if draw(st.booleans()):
        return ",".join(draw(st.lists(st.sampled_from(PLACEMENTS), min_size=1, unique=True)))
    names = st.sampled_from((*PLACEMENTS, *PLACEMENTS, "", "sidebar", "Hero", "x" * 65,
                             " hero"))
    size = draw(st.sampled_from([0, 1, 2, 3, 5, 31, 32, 33, 40]))
    return ",".join(draw(st.lists(names, min_size=size, max_size=size)))


@st.composite
def queries(draw: st.DrawFn, batch: bool = False) -> bytes:
    """Query strings: `uid` and `placements` (always there for a batch, at any place among
    the others), repeated, empty, without `=`, unknown keys, hostile values."""
    values = st.one_of(users(), placement_lists())
    pairs = draw(st.lists(st.tuples(st.sampled_from(QUERY_KEYS), values,
                                    st.sampled_from(["=", "=", "", "=="])), max_size=4))
    if batch and draw(st.integers(0, 9)):
        pairs.insert(draw(st.integers(0, len(pairs))),
                     ("placements", draw(placement_lists()), "="))
    separator = draw(st.sampled_from([b"&", b"&", b";", b"&&"]))
    return separator.join(draw(url_encoded(key)) + sign.encode() + draw(url_encoded(value))
                          for key, value, sign in pairs)


@st.composite
def targets(draw: st.DrawFn, objects: tuple[str, ...]) -> bytes:
    """A request target, its bytes as generated (`target_safe` makes it one to send).
    `objects`: paths of published objects, which the app serves under /content/."""
    kind = draw(st.sampled_from(["placement", "placement", "placement", "batch", "other",
                                 "object"]))
    if kind == "placement":
        target = b"/p/" + draw(segments())
    elif kind == "batch":
        return b"/p?" + draw(queries(batch=True))
    elif kind == "object":
        folder, name = draw(st.sampled_from(objects)).encode().rsplit(b"/", 1)
        target = draw(st.sampled_from([
            folder + b"/" + name, folder + b"/" + name, folder + b"/../" + folder[9:] + b"/" + name,
            folder + b"%2F" + name, folder + b"/./" + name, folder + b"//" + name,
            folder + b"/" + name + b"/", folder + b"/" + name.upper(), folder + b"/." + name,
            folder + b"/" + name + b"%00", folder + b"/" + name[:-1],
            b"/content/manifest/current.json", folder + b"/" + name.replace(b".", b"%2e")]))
    else:
        target = draw(st.sampled_from(OTHER_TARGETS))
    if draw(st.booleans()):
        target += b"?" + draw(queries())
    return target


@st.composite
def cookie_headers(draw: st.DrawFn) -> bytes:
    """A Cookie header value: our cookies among others, values of any bytes, quoted and
    octal-escaped values, malformed pairs, many cookies."""
    values = st.one_of(users().map(_user_bytes), users().map(_user_bytes),
                       st.sampled_from([b"1", b"0", b'"alice"', b'"jos\\303\\251"',
                                        b'"unterminated', b'"a;b"', b"alice=bob"]),
                       header_values(40))
    pair = st.tuples(st.sampled_from(COOKIE_NAMES), values).map(lambda nv: nv[0] + b"=" + nv[1])
    malformed = st.sampled_from([b"ep_uid", b"=alice", b"", b";", b"ep_uid==a", b"=", b" "])
    count = draw(st.sampled_from([1, 1, 2, 3, 60]))
    parts = draw(st.lists(pair | malformed, min_size=1, max_size=count))
    return field_safe(draw(st.sampled_from([b"; ", b";", b", "])).join(parts))


@st.composite
def header_lines(draw: st.DrawFn) -> list[bytes]:
    lines: list[bytes] = []
    if draw(st.integers(0, 9)):
        lines.append(b"Host: edge.test")
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["cookie", "cookie", "user", "user", "gpc", "other",
                                     "duplicate"]))
        if kind == "cookie":
            lines.append(b"Cookie: " + draw(cookie_headers()))
        elif kind == "user":
            lines.append(b"X-User-Id: " + draw(users().map(_user_bytes).map(field_safe)
                                                 | header_values(300)))
        elif kind == "gpc":
            lines.append(b"Sec-GPC: " + draw(st.sampled_from(
                [b"1", b"1", b"0", b" 1", b"1 ", b"true", b"", b"1, 1", b"\xff"])))
        elif kind == "other":
            lines.append(draw(st.sampled_from(OTHER_HEADERS)) + b": " + draw(header_values()))
        elif lines:
            lines.append(draw(st.sampled_from(lines)))
    return lines


@dataclass
class Sent:
    wire: Blob
    method: bytes
    target: bytes
    framed: bool  # the request ends where the server reads it to end: a next one may follow
    gpc: bool  # carries `Sec-GPC: 1`: the user opted out, whoever they are

    @property
    def head_only(self) -> bool:
        return self.method == b"HEAD"


@st.composite
def raw_requests(draw: st.DrawFn, objects: tuple[str, ...]) -> Sent:
    mutation = draw(st.sampled_from((None,) * 60 + MUTATIONS * 2 + ("stall",)))
    method = draw(st.sampled_from(BAD_METHODS if mutation == "method" else METHODS))
    target = draw(targets(objects))
    if mutation != "raw-target":
        target = target_safe(target)
    version = draw(st.sampled_from(BAD_VERSIONS if mutation == "version" else VERSIONS))
    lines = draw(header_lines())
    if mutation == "control-character":  # any bytes but CR and LF, where we read users
        name = draw(st.sampled_from([b"X-User-Id", b"Cookie", b"Sec-GPC", b"X-Foo"]))
        value = draw(st.binary(min_size=1, max_size=40)).replace(b"\r", b"").replace(b"\n", b"")
        lines.insert(draw(st.integers(0, len(lines))), name + b": " + value)
    elif mutation == "malformed-line":
        malformed = draw(st.sampled_from(MALFORMED_HEADER_LINES))
        lines.insert(draw(st.integers(0, len(lines))), malformed)
    elif mutation == "upgrade":
        lines.append(draw(st.sampled_from(UPGRADES)))
    body = draw(st.sampled_from([b""] * 4 + [b"x", b"0123456789" * 6]))
    if mutation == "short-body":  # a body that never finishes arriving
        lines.append(b"Content-Length: %d" % (len(body) + 10))
    elif mutation == "both-lengths":  # request smuggling's favourite
        lines += [b"Content-Length: %d" % len(body), b"Transfer-Encoding: chunked"]
    elif body and draw(st.booleans()):
        lines.append(b"Transfer-Encoding: chunked")
        body = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    elif body:
        lines.append(b"Content-Length: %d" % len(body))
    head = method + b" " + target + (b" " + version if version else b"") + b"\r\n"
    head += b"".join(line + b"\r\n" for line in lines)
    if mutation == "oversized":  # just below, at, or above the head limit
        pad = draw(st.sampled_from([-64, -3, -2, -1, 0, 1, 2, 64, 4 * MAX_HEAD]))
        room = max(0, MAX_HEAD + pad - len(head) - len(b"X-Pad: \r\n\r\n"))
        head += b"X-Pad: " + b"p" * room + b"\r\n"
    if mutation == "stall":  # a head that never ends: 408
        return Sent(Blob(head), method, target, False, False)
    return Sent(Blob(head + b"\r\n" + body), method, target, mutation is None,
                b"Sec-GPC: 1" in lines)


# -- what every answer must be -------------------------------------------------------------


def read_answer(client: RawClient, sent: Sent) -> tuple[int, dict[str, str], bytes]:
    status, headers, body = client.response(sent.head_only)
    while status == 100:  # an interim answer to Expect: 100-continue
        status, headers, body = client.response(sent.head_only)
    if sent.head_only and headers.get("connection") == "close":
        client.seconds_until_closed()  # a refusal by the protocol sends its body anyway
        body, client.buffer = client.buffer, b""
    return status, headers, body


def placement_named(target: bytes) -> str | None:
    """The placement a target's path names as the server decodes it, if it is `/p/<id>`."""
    try:
        path = httptools.parse_url(target).path.decode("ascii")
    except (httptools.HttpParserInvalidURLError, UnicodeDecodeError, AttributeError):
        return None
    path = unquote(path)
    return path[len("/p/"):] if path.startswith("/p/") else None


def check_answer(edge: Edge, sent: Sent, answer: tuple[int, dict[str, str], bytes]) -> None:
    status, headers, body = answer
    assert status < 500, answer
    assert status == 302 or "location" not in headers, answer  # no redirect of another kind
    if status == 302:
        placement = placement_named(sent.target)
        assert placement in edge.manifest.placements, answer
        urls = edge.manifest.placements[placement]
        source = headers["x-edgepick-source"]
        assert source in SOURCES, answer
        assert headers["cache-control"] == NO_STORE, answer
        if source == "decision":
            assert headers["location"] in edge.decided_urls(placement), answer
            assert not sent.gpc, answer
        else:
            assert headers["location"] == urls.default_url, answer
    elif status == 200:
        check_success(edge, sent, headers, body)
    elif 400 <= status < 500:
        assert headers["content-type"] == "application/json", answer
        assert headers["cache-control"] == NO_STORE, answer
        if body or not sent.head_only:
            error = json.loads(body)
            assert set(error) == {"error", "detail"}, answer
            assert isinstance(error["error"], str) and error["error"], answer
            assert isinstance(error["detail"], str) and error["detail"], answer
        if status == 405:
            assert "GET" in headers.get("allow", ""), answer
    else:
        pytest.fail(f"unexpected status {status}: {answer}")


def check_success(edge: Edge, sent: Sent, headers: dict[str, str], body: bytes) -> None:
    path = httptools.parse_url(sent.target).path
    if path == b"/p":
        assert headers["cache-control"] == NO_STORE
        sources = dict(pair.split("=", 1) for pair in headers["x-edgepick-source"].split(","))
        if sent.head_only:
            return
        answered = json.loads(body)
        assert set(answered) == set(sources)
        for placement, url in answered.items():
            assert sources[placement] in SOURCES
            assert url in edge.manifest.placements[placement].urls.values()
            if sources[placement] != "decision":
                assert url == edge.manifest.placements[placement].default_url
            else:
                assert url in edge.decided_urls(placement) and not sent.gpc
    elif path.startswith(b"/content/"):  # only ever a content-addressed object, whole
        # (as the static files app normalises it: `a//b`, `a/./b` and `a%2Fb` are `a/b`)
        key = VARIANT_KEY.fullmatch(posixpath.normpath(unquote(path.decode("ascii")))[1:])
        assert key is not None, path
        assert headers["cache-control"] == IMMUTABLE.decode()
        if not sent.head_only:
            assert hashlib.sha256(body).hexdigest()[:DIGEST_HEX_CHARS] == key["digest"]
    else:
        assert path in (b"/healthz", b"/metrics"), path


def exchange(edge: Edge, sent: Sent, pipelined: bool) -> None:
    """Send one generated request (with the probe behind it, pipelined, if asked), check
    the answer, then the probe: on the same connection when the server kept it, and on a
    new one."""
    client = RawClient(edge.base)
    try:
        # refused (431) before all of it was sent: the answer is still there
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            client.send(sent.wire + (PROBE if pipelined else b""))
        answer = read_answer(client, sent)
        check_answer(edge, sent, answer)
        if sent.framed and answer[1].get("connection") != "close":
            if not pipelined:
                client.send(PROBE)
            edge.check_probe(client.response())
    finally:
        client.close()
    client = RawClient(edge.base)
    try:
        client.send(PROBE)
        edge.check_probe(client.response())
    finally:
        client.close()


def test_any_request_is_answered_without_5xx_and_redirected_only_into_the_manifest(
        edge: Edge) -> None:
    @FUZZ
    @given(sent=raw_requests(edge.objects()), pipelined=st.booleans())
    def send(sent: Sent, pipelined: bool) -> None:
        exchange(edge, sent, pipelined and sent.framed)

    send()


# -- a known user, however validly sent, gets their decision ---------------------------------

OPT_OUTS = (b"", b"", b"", b"Sec-GPC: 1\r\n", b"Cookie: ep_optout=1\r\n")


@st.composite
def user_requests(draw: st.DrawFn) -> tuple[bytes, str, str]:
    """(request, user, placement): the user in a cookie (raw UTF-8, or quoted with octal
    escapes), a header (raw UTF-8) or the query (percent-encoded), among cookies, query
    parameters and headers of any bytes that are not the user's."""
    user = draw(st.sampled_from(VALID_USERS))
    placement = draw(st.sampled_from(PLACEMENTS))
    raw = _user_bytes(user)
    where = draw(st.sampled_from(["cookie", "quoted-cookie", "header", "query"]))
    noise = st.lists(st.tuples(st.sampled_from([b"theme", b"ep_uidx", b"uid", b"EP_UID", b"_ga"]),
                               header_values(30).map(lambda v: v.replace(b";", b"")
                                                     .replace(b",", b"").replace(b'"', b""))),
                     max_size=3).map(lambda pairs: [n + b"=" + v for n, v in pairs])
    cookies = draw(noise)
    if where in ("cookie", "quoted-cookie"):
        value = raw if where == "cookie" else \
            b'"' + b"".join(b"\\%03o" % b if b > 127 else bytes([b]) for b in raw) + b'"'
        cookies.insert(draw(st.integers(0, len(cookies))), b"ep_uid=" + value)
    others = draw(st.lists(st.tuples(st.sampled_from([b"x", b"UID", b"uid[]", b"placements"]),
                                     st.binary(max_size=20)), max_size=3))
    query = b"?" + b"&".join(target_safe(n) + b"=" + quote(v, safe="").encode()
                             for n, v in others)
    if where == "query":
        query += b"&uid=" + quote(raw, safe="").encode()
    lines = [b"Host: edge.test"]
    if cookies:
        lines.append(b"Cookie: " + b"; ".join(field_safe(c) for c in cookies))
    if where == "header":
        lines.append(b"X-User-Id: " + raw)
    lines += [name + b": " + draw(header_values()) for name in draw(st.lists(
        st.sampled_from([b"Accept", b"X-Foo", b"Sec-GPC-Not", b"X-User"]), max_size=3))]
    head = b"GET /p/" + placement.encode() + query + b" HTTP/1.1\r\n"
    request = head + b"".join(line + b"\r\n" for line in lines)
    return request + draw(st.sampled_from(OPT_OUTS)) + b"\r\n", user, placement


def test_a_known_user_however_validly_sent_gets_their_own_decision(edge: Edge) -> None:
    @FUZZ
    @given(sent=user_requests())
    def send(sent: tuple[bytes, str, str]) -> None:
        request, user, placement = sent
        client = RawClient(edge.base)
        try:
            client.send(request)
            status, headers, _ = answer = client.response()
        finally:
            client.close()
        assert status == 302, answer
        urls = edge.manifest.placements[placement].urls
        if b"Sec-GPC: 1" in request or b"ep_optout=1" in request:
            expected = ("opted-out", urls[edge.manifest.placements[placement].default])
        elif placement in DECIDED.get(user, {}):
            expected = ("decision", urls[DECIDED[user][placement]])
        else:
            expected = (FALLBACKS.get(user, "no-decision"),
                        urls[edge.manifest.placements[placement].default])
        assert (headers["x-edgepick-source"], headers["location"]) == expected, answer

    send()


# -- the hot path's pure functions, in process ----------------------------------------------

SCOPE_HEADERS = (b"cookie", b"cookie", b"x-user-id", b"x-user-id", b"sec-gpc", b"accept")


@FUZZ
@given(headers=st.lists(st.tuples(st.sampled_from(SCOPE_HEADERS),
                                  st.binary(max_size=40) | cookie_headers()), max_size=5),
       query=st.binary(max_size=40) | queries())
def test_identify_returns_a_valid_user_or_a_400_naming_the_problem(
        headers: list[tuple[bytes, bytes]], query: bytes) -> None:
    scope = {"headers": headers, "query_string": query}
    try:
        user, opted_out = identify(scope)
    except InvalidIdentifier as e:
        assert e.http_status == 400 and e.message
        return
    assert isinstance(opted_out, bool)
    if (b"sec-gpc", b"1") in headers:
        assert opted_out
    if user is not None:
        assert check_user_id(user) == user
        user.encode("utf-8")  # text the worker keys alike: no lone surrogate


def records() -> st.SearchStrategy[bytes]:
    """Decision records as the worker writes them, mutated, and any bytes at all."""
    ranked = st.lists(st.sampled_from(["trail-running", "evergreen", "retired", "", "Hero",
                                       "climbing-es"]), max_size=9)
    written = st.tuples(ranked, st.sampled_from(["m1", "", "x|y"]),
                        st.sampled_from(["treatment", "holdout", "pinned", "", "HOLDOUT"]),
                        st.sampled_from(["1", "-1", "", "9" * 30, "x"]),
                        st.sampled_from(["", "", "rollout-1", "Rollout", "a|b"])).map(
        lambda r: (f"2|{','.join(r[0])}|{r[1]}|{r[2]}|{r[3]}|{r[4]}" if r[4] else
                   f"1|{','.join(r[0])}|{r[1]}|{r[2]}|{r[3]}").encode())
    return st.one_of(written, written.flatmap(spliced), st.binary(max_size=64))


@FUZZ
@given(raw=records() | st.none(), fault=st.sampled_from([None, None, None, "store-timeout",
                                                         "store-error", "circuit-open"]))
def test_any_stored_record_chooses_a_published_variant_or_the_default(
        raw: bytes | None, fault: str | None) -> None:
    entry = HERO
    if raw is not None:
        try:
            ranked, arm, experiment = decode_for_serving(raw)
        except CorruptRecord:
            pass
        else:
            assert isinstance(ranked, list) and isinstance(arm, str)
            assert isinstance(experiment, str)
    location, source, exposed_experiment, exposed_arm = choose(entry, raw, fault)
    assert source in SOURCES
    if source == "decision":
        assert location in entry.locations.values()
        ranked, arm, experiment = decode_for_serving(raw or b"")
        assert exposed_experiment == experiment
        assert exposed_arm == arm
        assert arm != "holdout" and fault is None
        assert location == next(entry.locations[v] for v in ranked if v in entry.locations)
    elif source == "holdout":  # the default by rule: exposed inside an experiment
        assert location == entry.default_location
        assert exposed_experiment == decode_for_serving(raw or b"")[2]
        assert exposed_arm == "holdout"
    else:
        assert location == entry.default_location
        assert exposed_experiment == ""


HERO = PlacementUrls("evergreen", "https://cdn.test/content/hero/variant-evergreen.1.json",
                     {v: f"https://cdn.test/content/hero/variant-{v}.1.json"
                      for v in ("evergreen", "trail-running", "climbing-es")},
                     b"https://cdn.test/content/hero/variant-evergreen.1.json",
                     {v: f"https://cdn.test/content/hero/variant-{v}.1.json".encode()
                      for v in ("evergreen", "trail-running", "climbing-es")})
