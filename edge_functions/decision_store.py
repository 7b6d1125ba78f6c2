"""Decision lookups for the edge: one Redis round trip per event-loop turn, within a budget.

redis-py's asyncio client costs far more per call (connection checkout, command packing,
a future per reply) than a GET costs Redis. So concurrent requests do not call it each:
they enqueue their keys and await a future; the first one in a loop turn schedules a flush
that sends every queued key as one MGET and hands each request its slice of the reply.
Under load a round trip serves dozens of requests; alone, a request still costs one GET.

The budget is per flush (every request in it joined within the same loop turn), so a slow
or dead store costs each request at most `budget_s` and then the placement default. Faults
feed a circuit breaker, which short-circuits lookups while the store is down. Outcomes are
values (`Lookup.fault`), not exceptions: a store fault is an expected case at the edge.

Served exposures (exposures.py) ride along: when the queue is ready (`on_flush`), the flush
sends its MGET and one XADD of every queued exposure in one pipeline, so logging exposures
adds no round trip while lookups flow. The XADD's fate never changes the lookup's: a refused or
lost batch of exposures is dropped and counted, and the lookup keeps its own outcome.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from edge_functions.circuit_breaker import CircuitBreaker
from edge_functions.exposures import (
    FIELD,
    STREAM_MAX_ENTRIES,
    VERSION_FIELD,
    WIRE_VERSION,
    ExposureQueue,
)
from edge_functions.keys import EXPOSURES_STREAM

# Why a lookup produced no values; each becomes the `X-Edgepick-Source` of a default.
FAULT_TIMEOUT = "store-timeout"
FAULT_ERROR = "store-error"
FAULT_OPEN = "circuit-open"
log = logging.getLogger("edgepick.edge")
IDLE_FLUSH_TIMEOUT_S = 1.0  # an exposures batch sent alone (no lookup to ride with)


@dataclass(slots=True)
class Lookup:
    values: list[bytes | None]
    fault: str | None = None


class BatchedDecisionReader:
    def __init__(self, redis: Redis, budget_s: float, breaker: CircuitBreaker,
                 exposures: ExposureQueue | None = None) -> None:
        self._redis = redis
        self._budget_s = budget_s
        self.breaker = breaker
        self.exposures = exposures if exposures is not None else ExposureQueue()
        self.exposures.send_alone = self.send_exposures
        self._pending: list[tuple[list[str], asyncio.Future[Lookup]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.round_trips = 0
        self.batched_requests = 0  # with round_trips: the mean batch size

    def lookup(self, keys: list[str]) -> asyncio.Future[Lookup]:
        loop = self._loop
        if loop is None:  # bound on first use: the reader lives on the server's one loop
            loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[Lookup] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((keys, future))
        return future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if not self.breaker.allow():
            for keys, future in batch:
                future.set_result(Lookup([None] * len(keys), FAULT_OPEN))
            return
        task = asyncio.get_running_loop().create_task(self._fetch(batch))
        self.batched_requests += len(batch)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fetch(self, batch: list[tuple[list[str], asyncio.Future[Lookup]]]) -> None:
        keys = [key for request_keys, _ in batch for key in request_keys]
        self.round_trips += 1
        riding = self.exposures.take() if self.exposures.on_flush() else None
        values, fault = await self._read(keys, riding)
        if fault is None and (not isinstance(values, list) or len(values) != len(keys)):
            # Not one value a key (a confused proxy, say): nothing in it can be trusted.
            log.warning("decision store answered MGET of %d keys with %.80r", len(keys), values)
            fault = FAULT_ERROR
        if fault is None:
            self.breaker.record_success()
            start = 0
            for request_keys, future in batch:
                end = start + len(request_keys)
                if not future.done():
                    future.set_result(Lookup(values[start:end]))
                start = end
        else:
            self.breaker.record_failure()
            for request_keys, future in batch:
                if not future.done():
                    future.set_result(Lookup([None] * len(request_keys), fault))

    async def _read(self, keys: list[str],
                    riding: tuple[bytes, int] | None) -> tuple[Any, str | None]:
        """The MGET's values (bytes | None: the client is built without decode_responses),
        or the fault; with `riding` exposures sent in the same pipeline and accounted for."""
        try:
            async with asyncio.timeout(self._budget_s):
                if riding is None:
                    return await self._redis.mget(keys), None
                replies = await self._mget_and_xadd(keys, riding[0])
                self.exposures.settle(riding[1], ok=not isinstance(replies[1], Exception))
                riding = None
                if isinstance(replies[0], Exception):
                    raise replies[0]
                return replies[0], None
        except TimeoutError:
            fault = FAULT_TIMEOUT
        except (RedisError, OSError):
            fault = FAULT_ERROR
        except Exception:
            # A client failure of another kind must still answer every waiting request
            # (with its default), or they would wait forever; so it is a fault, logged.
            log.exception("decision store lookup failed")
            fault = FAULT_ERROR
        if riding is not None:  # the pipeline did not answer: the batch may or may not be in
            self.exposures.settle(riding[1], ok=False)
        return [], fault

    async def _mget_and_xadd(self, keys: list[str], packed: bytes) -> list[Any]:
        """One round trip: the lookup, and the exposures riding with it. Errors come back
        as values, one a command, so a refused XADD cannot fail the lookup."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.mget(keys)
            _xadd(pipe, packed)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        if isinstance(replies[1], Exception):
            log.warning("exposures batch refused: %s", replies[1])
        return replies

    async def send_exposures(self) -> None:
        """Send the queue alone (no lookup came to carry it, or shutdown): dropped and
        counted if the store errs or the circuit is open."""
        packed, count = self.exposures.take()
        if not count:
            return
        if self.breaker.state == "open":
            self.exposures.settle(count, ok=False)
            return
        try:
            async with asyncio.timeout(IDLE_FLUSH_TIMEOUT_S):
                await _xadd(self._redis, packed)
        except (TimeoutError, RedisError, OSError) as e:
            log.warning("exposures batch of %d not sent: %s", count, e)
            self.exposures.settle(count, ok=False)
        else:
            self.exposures.settle(count, ok=True)

    async def close(self) -> None:
        await self.exposures.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _xadd(client: Any, packed: bytes) -> Any:
    return client.xadd(EXPOSURES_STREAM, {VERSION_FIELD: WIRE_VERSION, FIELD: packed},
                       maxlen=STREAM_MAX_ENTRIES, approximate=True)
