"""A consecutive-failure circuit breaker for the decision store.

Closed: every lookup goes to the store. After `failures` faults in a row it opens: lookups
skip the store (the edge serves defaults at once) for `cooldown_s`. Then it lets one probe
through (half-open): success closes it, a fault opens it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitBreaker:
    def __init__(self, failures: int, cooldown_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold = failures
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._consecutive = 0
        self._open_until = 0.0
        self._probing = False

    @property
    def state(self) -> str:
        if self._consecutive < self._threshold:
            return "closed"
        return "half-open" if self._clock() >= self._open_until else "open"

    def allow(self) -> bool:
        """May a lookup go to the store now? In half-open, only one probe at a time."""
        if self._consecutive < self._threshold:
            return True
        if self._clock() < self._open_until or self._probing:
            return False
        self._probing = True
        return True

    def record_success(self) -> None:
        self._consecutive = 0
        self._probing = False

    def record_failure(self) -> None:
        self._consecutive += 1
        self._probing = False
        if self._consecutive >= self._threshold:
            self._open_until = self._clock() + self._cooldown_s
