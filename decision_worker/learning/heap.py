"""Training's heap and the cyclic garbage collector.

Training holds millions of objects for its whole run (the log's messages and their events:
3.2 million tracked objects for a million impressions), and every full collection walks
all of them (1.6 s each); the replay's allocations triggered enough of them to take a
quarter of the run. None of these objects are in reference cycles, so they are read with
the collector paused and then set aside (`gc.freeze`) until training returns, and full
collections are made rare meanwhile; young collections still run, for the few cycles
training makes (each popularity snapshot is one).
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

# Young collections every 10,000 allocations (not 700), full ones after 1,000 of the
# middle generation's (not 10): the replay's copies of profiles die young.
THRESHOLDS = (10_000, 50, 1_000)
P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def long_lived() -> Iterator[None]:
    """What the block reads is read with no collection, then set aside until the function
    running it (decorated with `restores_collector`) returns."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.set_threshold(*THRESHOLDS)
        if enabled:
            gc.enable()


def restores_collector(function: Callable[P, R]) -> Callable[P, R]:
    """The collector as it was before `function` ran, once it returns (its locals, which
    held what it set aside, released by then)."""
    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        thresholds = gc.get_threshold()
        try:
            return function(*args, **kwargs)
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()
    return run
