"""Training's heap and the cyclic garbage collector.

Training holds a million objects for its whole run (the log's messages, their events, the
replayed profiles), and the collector's full collections walk every one of them each time
they run, which the replay's allocations trigger often: on a log of a million impressions
that was about a quarter of the run. None of these objects are in reference cycles, so
reading them needs no collector at all (`paused`), and while the replay runs they are set
aside (`gc.freeze`) and full collections made rare (`set_aside`); young collections still
run, for the few cycles the replay makes (each popularity snapshot is one).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Young collections every 10,000 allocations (not 700), full ones after 1,000 of the
# middle generation's (not 10): the replay's copies of profiles die young.
REPLAY_THRESHOLDS = (10_000, 50, 1_000)


@contextmanager
def paused() -> Iterator[None]:
    """No collection inside the block (what it builds has no cycles)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def set_aside() -> Iterator[None]:
    """What is alive now is left out of collections until the block ends, and full
    collections of what the block makes are rare."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*REPLAY_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
