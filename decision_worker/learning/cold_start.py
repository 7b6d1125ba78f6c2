"""Up to how much history trending serves a user better than the trees: chosen on the
validation window, so the product never ranks a kind of user worse than a site could
without it.

The trees are fitted mostly to users with history; for users with none (and, on some
data, with little) what trends is the better guess. Training scores the validation
window's session starts with each threshold of `BELOW` (users with fewer engaged variants
than it get trending, the others the trees), trending being either the overall one at the
validated half-life or what trends in the user's context (features.context_trend: device
class, traffic source, language), and keeps the best; a tie keeps the overall trend and
the smaller threshold. The card records it (`cold_start.below_history`), the
worker applies it (lgbm_ranker.py), and the test window evaluates the result.
"""

from __future__ import annotations

from decision_worker.learning.evaluation import session_outcomes
from decision_worker.learning.examples import Examples
from decision_worker.learning.feature_fit import with_trait_columns
from decision_worker.ranking.lgbm_ranker import LightGBMRanker

# 1: only users with no history at all; 1_000_000: everyone. Log-spaced up to 1,000 engaged
# variants: on MovieLens the validation window prefers 300 (the trees win for heavy raters).
BELOW = (1, 10, 30, 100, 300, 1_000, 1_000_000)


def choose_below_history(candidate: LightGBMRanker,
                         valid_set: Examples) -> dict[tuple[bool, int], float]:
    """{(by context, threshold): validation session NDCG@5}; empty when the window has no
    session starts to judge by (the ranker then keeps its cold start)."""
    rows = with_trait_columns(valid_set, candidate.traits)
    scores: dict[tuple[bool, int], float] = {}
    for context in (False, True):
        candidate.cold_start_context = context
        for below in BELOW:
            candidate.cold_start_below = below
            users, per_session, _ = session_outcomes(candidate.score, rows)
            if not users:
                return {}
            scores[(context, below)] = float(per_session["s_ndcg@5"].mean())
    best = max(scores, key=lambda k: (scores[k], not k[0], -k[1]))
    candidate.cold_start_context, candidate.cold_start_below = best
    return scores
