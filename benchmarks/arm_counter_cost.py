"""What counting exposures costs Redis: the arm counters' script (decision_worker/ranking/
arm_counters.py) on one exposures entry of 300 exposures, as a worker calls it.

A private redis-server; `--users` users already counted once (the steady state: every user
has a field to read and rewrite); then `--rounds` entries of 150 users with 2 exposures each,
either on one placement (one change per user) or one on each of two placements (two
changes per user, the per-placement sums kept too). Redis's own time per call (INFO
commandstats, usec_per_call of EVALSHA) is what bounds how many exposures one Redis core
counts; the client's wall time per call is shown beside it.

    flock /tmp/edgepick-bench.lock python benchmarks/arm_counter_cost.py [--rounds 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.processes import Processes  # noqa: E402
from decision_worker.ranking.arm_counters import CounterChange, apply_changes  # noqa: E402

USERS_PER_ENTRY = 150


def entry(first: int, users: int, placements: tuple[str, ...]) -> list[CounterChange]:
    """150 users' 2 exposures each, spread over `placements`."""
    each = 2 // len(placements)
    return [CounterChange("rollout-1", 1, "control", f"tag-{(first + u) % users:07d}", p,
                          exposures=each)
            for u in range(USERS_PER_ENTRY) for p in placements]


async def measure(url: str, users: int, rounds: int, placements: tuple[str, ...]
                  ) -> tuple[float, float]:
    """(median client ms per call, Redis µs per call)."""
    sync = Redis.from_url(url)
    sync.flushall()
    client = AsyncRedis.from_url(url)
    for first in range(0, users, USERS_PER_ENTRY):
        await apply_changes(client, entry(first, users, placements))
    sync.config_resetstat()
    wall = []
    for r in range(rounds):
        changes = entry(r * USERS_PER_ENTRY, users, placements)
        started = time.perf_counter()
        await apply_changes(client, changes)
        wall.append(time.perf_counter() - started)
    await client.aclose()
    server = sync.info("commandstats")["cmdstat_evalsha"]["usec_per_call"]
    sync.close()
    return 1000 * statistics.median(wall), float(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    with Processes() as servers:
        url = servers.redis()
        print(f"{'exposures of an entry (300, 150 users)':42s} {'client ms':>10s} "
              f"{'Redis µs':>9s} {'Redis µs / exposure':>20s}")
        for label, placements in (("on one placement", ("hero",)),
                                  ("on two placements", ("hero", "cta"))):
            wall, server = asyncio.run(measure(url, args.users, args.rounds, placements))
            print(f"{label:42s} {wall:10.2f} {server:9.0f} {server / 300:20.1f}")


if __name__ == "__main__":
    main()
