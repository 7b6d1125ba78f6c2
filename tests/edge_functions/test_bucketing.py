import json
from pathlib import Path

import pytest

from edge_functions.bucketing import gbhash, in_holdout

VECTORS = json.loads((Path(__file__).parent / "bucketing_vectors.json").read_text("utf-8"))


@pytest.mark.parametrize(("seed", "user", "version", "expected"),
                         VECTORS["upstream"] + VECTORS["edgepick"])
def test_hash_matches_the_pinned_vectors(seed: str, user: str, version: int,
                                         expected: float) -> None:
    assert gbhash(seed, user, version) == expected


def test_holdout_share_is_close_to_the_configured_share_and_sticky() -> None:
    users = [f"user-{i}" for i in range(20_000)]
    held = [u for u in users if in_holdout(u, 0.10)]
    assert 0.09 < len(held) / len(users) < 0.11
    assert held == [u for u in users if in_holdout(u, 0.10)]
    assert set(held) <= {u for u in users if in_holdout(u, 0.20)}  # growing it keeps the old


@pytest.mark.parametrize(("user", "share", "held"), VECTORS["holdout"])
def test_the_holdout_matches_the_pinned_vectors(user: str, share: float, held: bool) -> None:
    assert in_holdout(user, share) is held


def test_the_holdout_bounds() -> None:
    assert not in_holdout("anyone", 0.0) and in_holdout("anyone", 1.0)
