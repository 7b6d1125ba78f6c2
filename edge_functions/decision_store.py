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
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from edge_functions.circuit_breaker import CircuitBreaker

# Why a lookup produced no values; each becomes the `X-Edgepick-Source` of a default.
FAULT_TIMEOUT = "store-timeout"
FAULT_ERROR = "store-error"
FAULT_OPEN = "circuit-open"
log = logging.getLogger("edgepick.edge")


@dataclass(slots=True)
class Lookup:
    values: list[bytes | None]
    fault: str | None = None


class BatchedDecisionReader:
    def __init__(self, redis: Redis, budget_s: float, breaker: CircuitBreaker) -> None:
        self._redis = redis
        self._budget_s = budget_s
        self.breaker = breaker
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
        fault: str | None = None
        values: list[Any] = []  # bytes | None: the client is built without decode_responses
        self.round_trips += 1
        try:
            async with asyncio.timeout(self._budget_s):
                values = await self._redis.mget(keys)
        except TimeoutError:
            fault = FAULT_TIMEOUT
        except (RedisError, OSError):
            fault = FAULT_ERROR
        except Exception:
            # A client failure of another kind must still answer every waiting request
            # (with its default), or they would wait forever; so it is a fault, logged.
            log.exception("decision store lookup failed")
            fault = FAULT_ERROR
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

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
