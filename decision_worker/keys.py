"""Redis keys of the worker side, with their TTLs or size bounds.

The event keys share the hash tag `{ep:events}`, so the ingest script that checks
idempotency markers and appends to the stream touches one Cluster slot. A user's profile
shares its hash tag with the user's decision keys (`ep:d:{tag}:…`), so one script can
compare-and-set the profile and write the decisions atomically on a cluster too; so does the
user's why-record (`ep:w:{tag}`, ranking/why_record.py), which that script writes with the
decisions and their TTL.
"""

from __future__ import annotations

EVENTS_STREAM = "{ep:events}:stream"
DEAD_LETTER_STREAM = "{ep:events}:dead"
SEEN_PREFIX = "{ep:events}:seen:"  # + messageId: idempotency marker with a TTL
SUPPRESSED = "{ep:events}:suppressed"  # hash: user tag → when forgotten (edgepick forget)
EPOCH = "{ep:events}:epoch"  # set once per Redis dataset: its absence means data was lost
CONSUMER_GROUP = "edgepick-workers"
REDECIDE_DUE = "{ep:refresh}:due"  # sorted set: user tag → when to re-decide (unix seconds)
REDECIDE_LOCK = "{ep:refresh}:lock"  # one scheduler at a time
STATS_KEY = "{ep:stats}:engagement"  # hash "<kind>|<placement>/<variant>[|<device>]" → count
# The same counts per event day (trending.py): a hash per day, and one that says how many
# increments each day has had, so a worker re-reads only the days that moved.
TREND_DAYS_KEY = "{ep:stats}:trend-days"  # hash day number → increments so far

# Experiments (ranking/experiment.py) and rollouts: one hash tag, one slot.
EXPERIMENTS = "{ep:exp}:experiments"  # hash: experiment id → its JSON (the controller writes)
ROLLOUT_AUDIT = "{ep:exp}:audit"  # stream: every rollout transition with its reason
ROLLOUT_AUDIT_ARCHIVED = "{ep:exp}:audit-archived"  # the last stream id copied to the origin
CONTROLLER_LOCK = "{ep:exp}:controller"  # one rollout controller acts at a time

SEEN_TTL_S = 24 * 3600  # default dedupe window (EDGEPICK_DEDUPE_WINDOW_S), as Segment's
RESERVE_TTL_S = 60  # a request's reservation of its messageIds, if it never finishes
# The stream's size bound: a full stream refuses new events (back-pressure, 503) rather than
# trimming entries no worker has read. Read entries are archived (the event log holds every
# message before it is streamed), so workers trim them STREAM_RETENTION_S after reading.
STREAM_MAX_LEN = 1_000_000
STREAM_RETENTION_S = 10
DEAD_LETTER_MAX_LEN = 50_000
DEAD_LETTER_RAW_BYTES = 4096  # of each dead letter's message: enough to see what was wrong
DEAD_LETTER_RETENTION_S = 7 * 86_400


# Arm counters (ranking/arm_counters.py): both hashes below expire ARM_COUNTERS_TTL_S after
# their last write (one script writes a user's counts and the sums, and refreshes the TTLs),
# so an experiment's counters outlive it by that long; the per-user hash holds one short field
# per exposed user of the experiment (about 12 bytes more per placement the user was exposed
# on), its size bound.
ARM_COUNTERS_TTL_S = 90 * 86_400
# Hash: tag of an anonymous id merged into a known user → that user's tag, so that what the
# edge served under the anonymous id counts as the person's exposure (the worker counts
# their clicks under the known tag). Written with every decision of a user with merged ids;
# expires ARM_COUNTERS_TTL_S after the last; `edgepick forget` deletes the person's fields.
ARM_OWNERS = "{ep:exp}:owners"
# The edge's exposures stream (edge_functions.keys.EXPOSURES_STREAM) is read by this group;
# an entry is deleted once counted, and the edge caps its length (XADD MAXLEN ~).
EXPOSURES_GROUP = "edgepick-exposures"
# An entry's "counted" marker lives until the entry is acknowledged (then deleted with it);
# the TTL only bounds the markers of entries nobody acknowledges.
EXPOSURES_APPLIED_TTL_S = 86_400


def arm_totals_key(experiment: str, step: int | str, arm: str) -> str:
    """Hash of one arm's delta-method sums (learning/experiments/arm_totals.py) in one step
    of an experiment, or over all steps with step "all": click-through's and the conversion
    rate's, over the experiment's placements and per placement (fields prefixed
    "PLACEMENT:"; ranking/arm_counter_script.py). TTL: ARM_COUNTERS_TTL_S."""
    return f"{{ep:exp}}:t:{experiment}:{step}:{arm}"


def arm_users_key(experiment: str, step: int | str) -> str:
    """Hash: user tag → "exposures,clicks,conversions" of that user in the step, then the
    same per placement ("x,y,z;hero=x,y,z"): what the delta-method counters need to add a
    user's next exposure, click or conversion. Keyed by the tag, never a raw id. TTL:
    ARM_COUNTERS_TTL_S; `edgepick forget` deletes the user's field (all of it)."""
    return f"{{ep:exp}}:u:{experiment}:{step}"


def exposures_applied_key(entry_id: str) -> str:
    """Marker of an exposures-stream entry already counted, holding which of its exposures
    were first in their step (so a redelivery logs the same `Experiment Viewed` events)."""
    return f"{{ep:exp}}:applied:{entry_id}"


def trend_day_key(day: int) -> str:
    return f"{{ep:stats}}:trend:{day}"


def profile_key(tag: str) -> str:
    return f"ep:u:{{{tag}}}"


def why_key(tag: str) -> str:
    """The why-record of a user's decisions: same hash tag (slot) as their decision keys,
    written and expiring with them."""
    return f"ep:w:{{{tag}}}"
