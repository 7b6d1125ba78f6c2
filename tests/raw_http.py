"""A raw HTTP/1.1 client over one TCP socket: sends bytes exactly as given (no URL
normalisation, any Host header) and reads responses with a buffer of its own."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import pytest


class RawClient:
    """One TCP connection; reads responses with a buffer of its own (pipelining-safe)."""

    def __init__(self, base: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", urlsplit(base).port), timeout=5)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def response(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        """The next response; `head_only` for a response to HEAD (no body follows its
        Content-Length). A header sent twice keeps its last value."""
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise ConnectionError(f"closed before a response: {self.buffer!r}")
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value
                   for name, value in (line.split(": ", 1) for line in lines[1:])}
        length = 0 if head_only else int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            if not self._fill():
                raise ConnectionError("closed inside a response body")
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(lines[0].split()[1]), headers, body

    def seconds_until_closed(self, limit: float = 4.0) -> float:
        """Read (and keep) whatever comes until the server closes; fail after `limit`."""
        started = time.monotonic()
        self.sock.settimeout(limit)
        try:
            while self._fill():
                pass
        except TimeoutError:
            pytest.fail(f"the server kept the connection open for {limit} s")
        except ConnectionResetError:
            pass
        return time.monotonic() - started

    def close(self) -> None:
        self.sock.close()


def raw_request(base: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send one request as is and read its response."""
    client = RawClient(base)
    try:
        client.send(request)
        return client.response()
    finally:
        client.close()
