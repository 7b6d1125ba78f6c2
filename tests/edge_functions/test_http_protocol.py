"""Slow and oversized requests against a real uvicorn server, over raw sockets: what a
client sees is an answer (408, 431, 400 as JSON) and a closed connection, never a socket
held open or a serving loop stalled."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import Callable

import pytest
from starlette.types import Receive, Scope, Send

from edge_functions.http_protocol import http_protocol
from tests.conftest import Settings
from tests.raw_http import RawClient

HEAD_TIMEOUT_S = 0.5
BODY_TIMEOUT_S = 0.8
MAX_HEAD = 4096


def get(path: str, extra: bytes = b"") -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: edge.test\r\n" + extra + b"\r\n"


def trickle(raw: RawClient, data: bytes, every_s: float = 0.1, times: int = 40) -> None:
    """Send `data` every `every_s` in the background until the server stops taking it."""

    def run() -> None:
        try:
            for _ in range(times):
                raw.sock.sendall(data)
                time.sleep(every_s)
        except OSError:
            pass

    threading.Thread(target=run, daemon=True).start()


async def body_length(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that reads the whole body before answering (as the events API does)."""
    if scope["type"] != "http":
        return
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = str(size).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def limits(settings: Settings) -> Settings:
    return dataclasses.replace(settings, http_header_timeout_s=HEAD_TIMEOUT_S,
                               http_body_timeout_s=BODY_TIMEOUT_S, http_max_head_bytes=MAX_HEAD)


@pytest.fixture
def edge(limits: Settings, serve, redis) -> str:
    return serve(limits)


@pytest.fixture
def reader(limits: Settings, serve_app: Callable[..., str]) -> str:
    return serve_app(body_length, None, http_protocol(limits))


@pytest.fixture
def client() -> Callable[[str], RawClient]:
    opened: list[RawClient] = []

    def connect(base: str) -> RawClient:
        opened.append(RawClient(base))
        return opened[-1]

    yield connect
    for raw in opened:
        raw.close()


def assert_json_error(status: int, headers: dict[str, str], body: bytes, code: str) -> None:
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "private, no-store"
    assert json.loads(body)["error"] == code, body


def test_silent_connection_is_closed_after_the_header_timeout(edge, client) -> None:
    raw = client(edge)
    seconds = raw.seconds_until_closed()
    assert HEAD_TIMEOUT_S * 0.8 <= seconds < HEAD_TIMEOUT_S + 1.5
    assert raw.buffer.startswith(b"HTTP/1.1 408 ")


def test_trickled_request_head_is_cut_at_the_header_timeout(edge, client) -> None:
    raw = client(edge)
    raw.send(b"GET /p/hero HTTP/1.1\r\nHost: edge.test\r\n")
    trickle(raw, b"X")  # a header byte every 0.1 s: progress, but never a whole head
    assert raw.seconds_until_closed() < HEAD_TIMEOUT_S + 1
    assert raw.buffer.startswith(b"HTTP/1.1 408 ")


def test_refused_connection_is_drained_quietly_while_the_client_keeps_sending(
        edge, client, caplog: pytest.LogCaptureFixture) -> None:
    raw = client(edge)
    raw.send(b"GET /p/hero HTTP/1.1\r\nHost: edge.test\r\n")
    trickle(raw, b"X", every_s=0.05)  # still sending while the server drains after its 408
    raw.seconds_until_closed()
    assert raw.buffer.count(b"HTTP/1.1 ") == 1
    time.sleep(1.2)  # the whole drain, the client still sending
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []


def test_blank_lines_do_not_keep_a_connection_open(edge, client) -> None:
    raw = client(edge)
    trickle(raw, b"\r\n")  # empty lines before a request line are allowed, and ignored
    assert raw.seconds_until_closed() < HEAD_TIMEOUT_S + 1


@pytest.mark.parametrize("size", [MAX_HEAD, 64 * 1024, 8 * 1024 * 1024])
def test_oversized_request_head_is_431_and_closed(edge, client, size: int) -> None:
    raw = client(edge)
    # The server may close before the client has sent it all.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        raw.send(get("/p/hero", b"X-Big: " + b"a" * size + b"\r\n"))
    status, headers, body = raw.response()
    assert status == 431
    assert_json_error(status, headers, body, "request_header_too_large")
    assert raw.seconds_until_closed() < 2


def test_oversized_url_is_431(edge, client) -> None:
    raw = client(edge)
    raw.send(get("/p/hero?uid=" + "u" * (2 * MAX_HEAD)))
    assert raw.response()[0] == 431


def test_head_within_the_limit_is_served(edge, client) -> None:
    raw = client(edge)
    raw.send(get("/metrics", b"Cookie: pad=" + b"c" * (MAX_HEAD - 200) + b"\r\n"))
    assert raw.response()[0] == 200


def test_keep_alive_connection_serves_requests_after_idling(reader, client) -> None:
    raw = client(reader)
    for _ in range(3):
        raw.send(get("/", b"Content-Length: 2\r\n") + b"ok")
        assert raw.response()[2] == b"2"
        time.sleep(HEAD_TIMEOUT_S * 1.5)  # idle longer than a head may take: keep-alive rules


def test_pipelined_requests_larger_than_the_head_limit_together_are_served(reader,
                                                                            client) -> None:
    raw = client(reader)
    one = get("/", b"X-Pad: " + b"p" * (MAX_HEAD // 2) + b"\r\nContent-Length: 1\r\n") + b"x"
    raw.send(one * 6)
    assert [raw.response()[0] for _ in range(6)] == [200] * 6


def test_large_body_arriving_with_its_head_is_read(reader, client) -> None:
    raw = client(reader)
    body = b"b" * (10 * MAX_HEAD)
    raw.send(get("/", f"Content-Length: {len(body)}\r\n".encode()) + body)
    status, _, answer = raw.response()
    assert status == 200 and answer == str(len(body)).encode()


def test_slow_body_is_cut_at_the_body_timeout(reader, client) -> None:
    raw = client(reader)
    raw.send(get("/", b"Content-Length: 100\r\n") + b"0123456789")
    seconds = raw.seconds_until_closed()
    # The body's deadline follows the head's: both timeouts from the first byte at most.
    assert BODY_TIMEOUT_S * 0.9 <= seconds < HEAD_TIMEOUT_S + BODY_TIMEOUT_S + 1
    status, headers, body = raw.response()
    assert status == 408
    assert_json_error(status, headers, body, "request_timeout")


def test_trickled_body_is_cut_at_the_body_timeout(reader, client) -> None:
    raw = client(reader)
    raw.send(get("/", b"Content-Length: 1000\r\n"))
    trickle(raw, b"b")
    assert raw.seconds_until_closed() < HEAD_TIMEOUT_S + BODY_TIMEOUT_S + 1
    assert raw.buffer.startswith(b"HTTP/1.1 408 ")


def test_pipelined_request_with_a_stalled_body_is_cut(reader, client) -> None:
    raw = client(reader)
    raw.send(get("/", b"Content-Length: 1\r\n") + b"x" + get("/", b"Content-Length: 9\r\n"))
    assert raw.response()[0] == 200
    assert raw.seconds_until_closed() < BODY_TIMEOUT_S + 1


@pytest.mark.parametrize("request_line", [b"NOT HTTP AT ALL",
                                          b"GET http://evil.example HTTP/1.1"])
def test_malformed_request_is_a_json_400(edge, client, request_line: bytes) -> None:
    raw = client(edge)
    raw.send(request_line + b"\r\nHost: edge.test\r\n\r\n")
    status, headers, body = raw.response()
    assert status == 400
    assert_json_error(status, headers, body, "invalid_request")


WEBSOCKET = (b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")


@pytest.mark.parametrize("request_head", [
    get("/p/Hero", WEBSOCKET),
    get("/p/Hero", WEBSOCKET + b"Transfer-Encoding: chunked\r\n") + b"0\r\n\r\n",
    get("/p/Hero", b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                   b"HTTP2-Settings: AAMAAABk\r\n"),
    b"CONNECT /p/Hero HTTP/1.1\r\nHost: edge.test\r\n\r\n",
])
def test_upgrade_request_is_answered_as_plain_http_and_closed(edge, client,
                                                              request_head: bytes) -> None:
    # Nothing edgepick serves speaks WebSocket (its handshake errors were text/plain, and one
    # with a body was never answered); the parser reads nothing after an upgrade's head, so a
    # request behind it would wait for the keep-alive timeout unanswered.
    raw = client(edge)
    raw.send(request_head + get("/metrics"))
    status, headers, body = raw.response()
    assert status in (400, 405)
    assert_json_error(status, headers, body, "invalid_identifier" if status == 400
                      else "method_not_allowed")
    assert headers["connection"] == "close"
    assert raw.seconds_until_closed() < 1
