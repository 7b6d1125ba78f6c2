"""Keeping the garbage collector off what the worker holds between batches.

Every batch allocates tens of thousands of short-lived containers (decoded profiles, events,
decisions), so the collector runs often, and each full collection walks the whole heap: the
imported modules, the catalog, the compiled model, none of which is ever garbage while it is
in use. Frozen (`gc.freeze`), they are left out of collections, which then walk little more
than the batch in hand: about a tenth of the worker's CPU per session start, measured.

During a batch the collector is paused (`batch_in_hand`): nearly everything the batch
allocates is freed by reference counting when the batch ends, but while it is alive the
young generations are collected every 700 allocations and each pass walks all of it again.
What the batch leaves behind (reference cycles included) is collected after it.

Settled again whenever the catalog or the model is replaced, unfrozen first so that what the
previous settle froze and has since been dropped (the old catalog, the old model) is
collected then.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


class HeapSettler:
    def __init__(self) -> None:
        self._settled: tuple[int, ...] = ()

    def settle(self, *kept: object) -> bool:
        """Collect and freeze the heap when `kept` (the long-lived inputs) are not the ones
        of the last settle; True when it did."""
        ids = tuple(id(k) for k in kept)
        if ids == self._settled:
            return False
        self._settled = ids
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        return True


@contextmanager
def batch_in_hand() -> Iterator[None]:
    """The collector paused while a batch is processed (if it was running at all)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
