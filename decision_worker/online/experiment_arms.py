"""Decisions of a batch while experiments (model rollouts, ranking/experiment.py) are active:
who is in which arm, which model ranks for them, what a model in shadow would have served,
and which engagements count for an arm.

Per user, in this order:
- the persistent holdout is decided first and stays outside every experiment (a held user's
  stored arms are dropped: they are served the default, not an arm);
- for each placement a *ramping* experiment covers (the first by id, should two overlap),
  the user's sticky arm (ranking/assignment.py): `treatment` is ranked by the experiment's
  model (record format 2: the treatment's version, arm `treatment`, the experiment's id),
  `control` by the production ranker (format 2, arm `control`); a user outside the
  experiment at this step gets production's plain record, as does every placement no
  experiment covers;
- while an experiment is in *shadow*, a share `shadow_share` of decisions (drawn per user
  and decision time) is also ranked by its model, and the ranked list is kept with the
  decision for the decision log only: what is stored and served does not change. Shadow
  scoring runs in shadow status only, not for the users outside the treatment while it
  ramps: the treatment arm then measures the model live, and scoring the rest twice would
  cost the worker up to half its scoring throughput for the length of the ramp.

Users are grouped by the experiments whose treatment they are in, so each row is scored once,
by the model that ranks it (one extra scoring call per treated group and per shadow model).
An experiment whose model did not load on this worker is absent here (online/
experiment_inputs.py): its users are served production, plain, and keep their stored arms.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace

from decision_worker.ingest.message_fields import Engagement
from decision_worker.ranking.arrays import FloatArray
from decision_worker.ranking.assignment import arm_for, drop_ended_arms, shadow_due
from decision_worker.ranking.candidates import Catalog
from decision_worker.ranking.decide import Decided, Shadow, decide
from decision_worker.ranking.experiment import (
    CONTROL,
    HOLDOUT,
    PERSONALIZATION,
    TREATMENT,
    Experiment,
    personalization_arm,
)
from decision_worker.ranking.features import user_batch
from decision_worker.ranking.popularity import Popularity
from decision_worker.ranking.profile import Profile
from decision_worker.ranking.ranker import Ranker
from edge_functions.bucketing import in_holdout_bucket

ATTRIBUTED_KINDS = ("click", "conversion")


@dataclass(frozen=True)
class LiveExperiment:
    experiment: Experiment
    ranker: Ranker  # the treatment's model, loaded on this worker


@dataclass(frozen=True)
class LiveExperiments:
    """What a batch decides with: the active experiments (as the controller stored them)
    and those of them whose model this worker could load."""

    active: dict[str, Experiment] = field(default_factory=dict)
    live: tuple[LiveExperiment, ...] = ()


@dataclass(frozen=True, slots=True)
class ArmEngagement:
    """A click or conversion of a user in an arm, on a placement the experiment covers."""

    experiment: str
    arm: str
    tag: str  # the profile owner's tag, the one the arm was drawn for
    placement: str
    kind: str  # click | conversion


@dataclass(frozen=True)
class Deciding:
    """The batch's inputs to `decide`, apart from the users."""

    catalog: Catalog
    popularity: Popularity
    ranker: Ranker  # production: the control arm and everyone outside experiments
    ranked_size: int
    holdout_share: float
    rank_limit: int
    scorer: Executor | None = None
    observe: Callable[[int, str, FloatArray], None] | None = None


def decide_batch(experiments: LiveExperiments, ctx: Deciding, profiles: list[Profile],
                 as_of: list[float], tags: list[str], now: float) -> list[dict[str, Decided]]:
    """One {placement: decision} per user (`tags`: the key tags of the profiles' owners),
    arms assigned and stored in `profiles`. With no experiment active: `decide` as it is,
    one scoring pass, and any arm left in a profile dropped."""
    if not experiments.active:
        for profile in profiles:
            if profile.arms:
                profile.arms = {}
        return _run(ctx, ctx.ranker, list(range(len(profiles))), profiles, as_of, tags, now,
                    None, ctx.observe)
    placements = list(ctx.catalog.placements)
    owner = _owners(experiments, placements)
    arms, groups = _assign(experiments, owner, ctx.holdout_share, profiles, tags)
    out: list[dict[str, Decided]] = [{} for _ in profiles]
    for treated, members in groups.items():
        covered = {p for i in treated for p in owner[i][1]}
        rest = [p for p in placements if p not in covered]
        if rest:
            _into(out, members, _run(ctx, ctx.ranker, members, profiles, as_of, tags, now,
                                     rest, ctx.observe))
        for i in treated:
            live, mine = owner[i]
            ranked = _run(ctx, live.ranker, members, profiles, as_of, tags, now, mine)
            _into(out, members, [{p: _labelled(d, TREATMENT, live) for p, d in r.items()}
                                 for r in ranked])
    for u, mine_arms in enumerate(arms):
        for placement, (live, arm) in mine_arms.items():
            if arm == CONTROL:
                out[u][placement] = _labelled(out[u][placement], CONTROL, live)
    _shadow(experiments, ctx, profiles, as_of, tags, now, out)
    return [{p: out[u][p] for p in placements} for u in range(len(profiles))]


Arms = dict[str, tuple[LiveExperiment, str]]  # placement → (experiment, the user's arm)


def _assign(experiments: LiveExperiments, owner: list[tuple[LiveExperiment, list[str]]],
            holdout_share: float, profiles: list[Profile], tags: list[str]
            ) -> tuple[list[Arms], dict[tuple[int, ...], list[int]]]:
    """Each user's arms by placement, and the users grouped by the experiments (indices
    into `owner`) whose treatment they are in."""
    arms: list[Arms] = []
    groups: dict[tuple[int, ...], list[int]] = {}
    for u, profile in enumerate(profiles):
        mine: Arms = {}
        treated: list[int] = []
        if _held(profile, holdout_share):
            profile.arms = {}
        else:
            drop_ended_arms(profile, experiments.active)
            for i, (live, covered) in enumerate(owner):
                arm = arm_for(profile, live.experiment, tags[u])
                if arm is not None:
                    mine.update((p, (live, arm)) for p in covered)
                if arm == TREATMENT:
                    treated.append(i)
        arms.append(mine)
        groups.setdefault(tuple(treated), []).append(u)
    return arms, groups


def _labelled(decided: Decided, arm: str, live: LiveExperiment) -> Decided:
    return replace(decided, record=replace(decided.record, arm=arm,
                                           experiment=live.experiment.id))


def _owners(experiments: LiveExperiments, placements: list[str]
            ) -> list[tuple[LiveExperiment, list[str]]]:
    """The ramping experiments with the placements each assigns (one per placement)."""
    taken: set[str] = set()
    owner = []
    for live in sorted(experiments.live, key=lambda x: x.experiment.id):
        if live.experiment.status != "ramping":
            continue
        covered = [p for p in placements if live.experiment.covers(p) and p not in taken]
        taken.update(covered)
        if covered:
            owner.append((live, covered))
    return owner


def _shadow(experiments: LiveExperiments, ctx: Deciding, profiles: list[Profile],
            as_of: list[float], tags: list[str], now: float,
            out: list[dict[str, Decided]]) -> None:
    """Attach what each experiment in shadow would have served to the decisions due."""
    for live in experiments.live:
        experiment = live.experiment
        covered = [p for p in ctx.catalog.placements if experiment.covers(p)]
        if experiment.status != "shadow" or not covered:
            continue
        members = [u for u, p in enumerate(profiles) if not _held(p, ctx.holdout_share)
                   and shadow_due(experiment, tags[u], int(as_of[u]))]
        if not members:
            continue
        ranked = _run(ctx, live.ranker, members, profiles, as_of, tags, now, covered)
        for u, per_placement in zip(members, ranked, strict=True):
            for p, d in per_placement.items():
                out[u][p] = replace(out[u][p], shadow=Shadow(live.ranker.version,
                                                             d.record.ranked))


def _run(ctx: Deciding, ranker: Ranker, members: list[int], profiles: list[Profile],
         as_of: list[float], tags: list[str], now: float, only: list[str] | None,
         observe: Callable[[int, str, FloatArray], None] | None = None
         ) -> list[dict[str, Decided]]:
    """`decide` for some of the batch's users and placements, with one ranker (the rows
    carry that ranker's trait columns)."""
    batch = user_batch([profiles[u] for u in members], [as_of[u] for u in members],
                       ctx.catalog, clock=[now] * len(members), traits=ranker.traits)
    seen = None
    if observe is not None:
        sink = observe

        def seen(i: int, placement: str, rows: FloatArray) -> None:
            sink(members[i], placement, rows)

    return decide(batch, ctx.catalog, ctx.popularity, ranker, ctx.ranked_size,
                  ctx.holdout_share, [tags[u] for u in members], seen, ctx.rank_limit,
                  ctx.scorer, only)


def _into(out: list[dict[str, Decided]], members: list[int],
          decided: list[dict[str, Decided]]) -> None:
    for u, per_placement in zip(members, decided, strict=True):
        out[u].update(per_placement)


def _held(profile: Profile, holdout_share: float) -> bool:
    return profile.holdout_hash is not None and in_holdout_bucket(profile.holdout_hash,
                                                                   holdout_share)


def engaged_arms(experiments: LiveExperiments, profile: Profile, tag: str,
                 engagement: Engagement | None, holdout_share: float) -> list[ArmEngagement]:
    """The arms a click or conversion counts for: the user's stored arms in the active
    experiments that cover its placement (none for a user in the holdout), and the user's
    side of the personalization comparison (ranking/experiment.py) unless a rollout's arm
    took the placement's decision."""
    if engagement is None or engagement.kind not in ATTRIBUTED_KINDS:
        return []
    compared = personalization_arm(profile.holdout_hash, holdout_share)
    if not profile.arms or compared == HOLDOUT:
        return [] if compared is None else [ArmEngagement(
            PERSONALIZATION, compared, tag, engagement.placement, engagement.kind)]
    engaged = [ArmEngagement(experiment, arm, tag, engagement.placement, engagement.kind)
               for experiment, arm in profile.arms.items()
               if experiment in experiments.active
               and experiments.active[experiment].covers(engagement.placement)]
    if compared is not None and not engaged:
        engaged.append(ArmEngagement(PERSONALIZATION, compared, tag, engagement.placement,
                                     engagement.kind))
    return engaged
