"""uvicorn's httptools protocol, with limits against slow and oversized requests.

Stock uvicorn waits forever for a request head or body that never finishes (one idle
socket per attacker is enough to exhaust the server), and accepts a request head of any
size: httptools joins a header value's pieces with `bytes +=`, so a 50 MB header costs
quadratic copying on the event loop (2.7 s of stalled serving, measured). This protocol:

- answers 408 and closes when a request head is not complete `header_timeout_s` after its
  first byte (or after the connection opened), or its body `body_timeout_s` after that
  (the head's deadline: the body deadline costs no clock read);
- answers 431 and closes once a request head exceeds `max_head_bytes`, before the parser
  has buffered more than that;
- answers every refusal (and uvicorn's own 400 for malformed requests) with edgepick's
  JSON error shape, then half-closes and drains the socket for a moment, so the client
  reads the answer rather than a connection reset.

The cost per request is a clock read and a few attribute writes: one watchdog timer per
connection checks the current deadline and re-arms itself at most once per
`min(header_timeout_s, body_timeout_s)`; nothing is scheduled per request. Idle keep-alive
connections stay uvicorn's business (`timeout_keep_alive`), and so does a pipelined head
that starts inside an earlier read and then stalls: the keep-alive timer uvicorn arms when
the response before it completes closes that connection.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any, cast

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from edge_functions.env import HttpServerSettings
from edge_functions.http_errors import error_body

INF = float("inf")
LINGER_S = 1.0  # how long a refused connection is drained before it is closed
# _head_bytes while lingering: every read then takes the (discarding) slow path.
_DISCARDING = 1 << 62


@dataclass(frozen=True, slots=True)
class HttpLimits:
    header_timeout_s: float = 5.0
    body_timeout_s: float = 15.0
    max_head_bytes: int = 16 * 1024


def http_protocol(settings: HttpServerSettings) -> type[asyncio.Protocol]:
    """The protocol for uvicorn's `Config(http=…)` with the settings' limits.

    A partial rather than a subclass per setting: uvicorn only calls it, once per
    connection, and a partial of a module-level class pickles into `--workers` processes.
    """
    limits = HttpLimits(settings.http_header_timeout_s, settings.http_body_timeout_s,
                        settings.http_max_head_bytes)
    return cast(type[asyncio.Protocol], functools.partial(GuardedHttpProtocol, limits=limits))


class GuardedHttpProtocol(HttpToolsProtocol):
    """One connection. Phases: head (bytes counted, head deadline), body (body deadline),
    then no deadline while the app answers. `--http edge_functions.http_protocol:
    GuardedHttpProtocol` runs it from uvicorn's command line with the default limits."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None, *,
                 limits: HttpLimits = HttpLimits()) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._header_timeout = limits.header_timeout_s
        self._body_timeout = limits.body_timeout_s
        self._max_head = limits.max_head_bytes
        self._tick = min(limits.header_timeout_s, limits.body_timeout_s)
        self._in_body = False
        self._head_bytes = 0  # read since the current head began (approximately: see below)
        self._deadline = INF
        self._watchdog: asyncio.TimerHandle | None = None
        self._lingering = False

    # Phases and deadlines

    def _start_phase(self, timeout: float) -> None:
        now = self.loop.time()
        self._deadline = now + timeout
        # The watchdog never sleeps longer than the shortest timeout, so a deadline set
        # later is never earlier than its next check: no re-arming per request.
        if self._watchdog is None:
            self._watchdog = self.loop.call_at(now + self._tick, self._check_deadline)

    def _check_deadline(self) -> None:
        self._watchdog = None
        if self._deadline == INF:
            return
        now = self.loop.time()
        if now < self._deadline:
            self._watchdog = self.loop.call_at(min(self._deadline, now + self._tick),
                                               self._check_deadline)
            return
        in_head = not self._in_body
        timeout = self._header_timeout if in_head else self._body_timeout
        if self.flow.read_paused or (in_head and self.cycle is not None
                                     and not self.cycle.response_complete):
            # We stopped reading (flow control, a pipelined request waiting its turn) or an
            # earlier response is still going out: the wait is ours, not the client's.
            self._start_phase(timeout)
            return
        part = "request head" if in_head else "request body"
        self._refuse(408, "request_timeout", f"the {part} did not arrive within {timeout:g} s")

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_phase(self._header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._in_body:
            self._head_bytes += len(data)
            if self._head_bytes > self._max_head:  # (always, while a refusal drains)
                self._feed_over_limit(data)
                return
            if self._deadline == INF:  # a new head (or blank lines before one) begins
                now = self.loop.time()
                self._deadline = now + self._header_timeout
                if self._watchdog is None:
                    self._watchdog = self.loop.call_at(now + self._tick, self._check_deadline)
        super().data_received(data)

    def _feed_over_limit(self, data: bytes) -> None:
        """This read takes the head past the limit unless the head ends inside it: feed
        only what fits, and refuse if the head is still incomplete after that.

        Bytes are counted per read, from the read in which a head starts, so a pipelined
        head that starts in the middle of a read may pass the limit by that read's share.
        """
        if self._lingering:
            return
        if self._deadline == INF:  # a head that is over the limit at its first read
            self._start_phase(self._header_timeout)
        view = memoryview(data)
        while True:
            fits = len(view) - (self._head_bytes - self._max_head)
            super().data_received(view[:fits])  # type: ignore[arg-type]
            if self._lingering or self.transport.is_closing():  # refused
                return
            if not self._in_body and self._head_bytes > self._max_head:
                # No message completed inside the slice: it is the same head, still open.
                self._refuse(431, "request_header_too_large",
                             f"the request line and headers exceed {self._max_head} bytes")
                return
            view = view[fits:]
            if not view:
                return
            if not self._in_body:
                self._head_bytes += len(view)
                if self._head_bytes > self._max_head:
                    continue
            super().data_received(view)  # type: ignore[arg-type]
            return

    def on_headers_complete(self) -> None:
        super().on_headers_complete()  # first: if it refuses the head, we are still in it
        self._in_body = True
        if self._deadline == INF:  # a pipelined head, begun and ended inside one read
            self._start_phase(self._body_timeout)
        else:  # the watchdog is armed: it always is while a head has a deadline
            self._deadline += self._body_timeout

    def on_message_complete(self) -> None:
        self._in_body = False
        self._head_bytes = 0
        self._deadline = INF
        super().on_message_complete()

    # Upgrades: nothing edgepick serves speaks WebSocket, so an upgrade request (and CONNECT)
    # is answered as plain HTTP by the app, in its JSON shape. The parser reads nothing
    # after such a head, so that answer closes the connection: a request behind it would
    # otherwise wait, unanswered, for the keep-alive timeout.

    def _should_upgrade_to_ws(self) -> bool:
        return False

    def _unsupported_upgrade_warning(self) -> None:
        if self.cycle is not None:
            self.cycle.keep_alive = False

    # Refusals

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, "invalid_request", msg)

    def _refuse(self, status: int, code: str, detail: str) -> None:
        """Answer with a JSON error if no response is under way, then drain and close."""
        cycle = self.cycle
        if self._in_body:
            answerable = cycle is not None and not cycle.response_started
        else:
            answerable = cycle is None or cycle.response_complete
        if answerable:
            self.transport.write(error_response(status, code, detail,
                                                self.server_state.default_headers))
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # whatever the app still sends goes nowhere
            cycle.message_event.set()
        self._linger()

    def _linger(self) -> None:
        """Half-close and discard what the client still sends, for LINGER_S: closing with
        unread input would reset the connection and could destroy the answer in flight."""
        self._lingering = True
        self._in_body = False
        self._head_bytes = _DISCARDING
        self._deadline = INF
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.flow.resume_reading()
        self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)


def error_response(status: int, code: str, detail: str,
                   default_headers: list[tuple[bytes, bytes]]) -> bytes:
    body = error_body(code, detail)
    head = [STATUS_LINE[status]]
    head.extend(name + b": " + value + b"\r\n" for name, value in default_headers)
    head.append(b"content-type: application/json\r\ncache-control: private, no-store\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
    return b"".join(head) + body
