"""The demo's rollouts, in accelerated time on its synthetic population: a model known to be
better goes shadow → 5 → 20 → 50 → 100 % and becomes production through the rollout
controller; one known to be worse is rolled back by the click-through guardrail.

Nothing is shortcut but time: the controller (learning/experiments/controller.py) runs in a
thread of the demo, looking every half second; the rollouts are stored as `edgepick rollout
start --force` stores them; traffic goes through the real parts. Each wave posts a session
start per user to the events API, lets the worker decide, requests every user's placements
from the edge (`GET /p?placements=…`: the served exposures, which the edge logs and the
worker counts), then decides from the population's hidden preferences whether the user
clicks what the edge served and posts `Variant Viewed` and `Variant Clicked`.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import orjson
from redis import Redis
from rich.console import Console
from rich.table import Table

from decision_worker.errors import RegistryError
from decision_worker.learning.experiments import rollout_store
from decision_worker.learning.experiments.controller import RolloutController, run
from decision_worker.learning.registry import Registry
from decision_worker.learning.synthetic import Population, SyntheticUser
from decision_worker.ranking.experiment import CONTROL_FROM, PERSONALIZATION, Experiment
from decision_worker.ranking.ranker import BaselineRanker
from edge_functions.bucketing import gbhash, holdout_bucket, in_holdout_bucket
from edge_functions.decision_record import decode
from edge_functions.errors import EdgepickError
from edge_functions.keys import EXPOSURES_STREAM, MANIFEST_KEY, decision_key, user_tag
from edge_functions.manifest import parse_document
from edgepick.demo_models import Inputs, KnownModels, known_models
from edgepick.rollout_report import rollout_documents, rollout_lines

STEPS = (5.0, 20.0, 50.0, 100.0)
SHADOW_S = 3.0
# Per arm per step: enough that the worse model's treatment gathers the guardrail's 30
# clicks (guardrail.MIN_CLICKS_PER_ARM) before its exposure share passes 20 %.
MIN_EXPOSURES = 600
PAGES_PER_SESSION = 3  # each user's pages per wave: three exposures per placement
LOOK_EVERY_S = 0.5
TIME_LIMIT_S = 90.0  # per rollout
# The demo's edge sends a lone exposure batch after 0.25 s (demo.DEMO_EXPOSURE_FLUSH_S)
EXPOSURE_FLUSH_S = 0.35
POST_BATCH = 500
SETTLE_S = 2.2  # after a transition (see _ramp)


class RolloutDemoError(EdgepickError):
    error_code = "demo_failed"


@dataclass
class Traffic:
    """Waves of sessions through the API, the worker and the edge (module docstring)."""

    client: httpx.Client
    edge: str
    api: str
    redis: Redis
    population: Population
    drained: Callable[[], None]  # waits until the worker has read every posted event
    run: str
    secret: bytes
    holdout_share: float
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(11))
    waves: int = 0
    # (experiment, arm, model) → [true click probability summed over what the edge served,
    # exposures]: what each arm really got, from the hidden preferences
    served: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.in_wave = threading.Lock()  # the controller looks only between waves

    def wave(self) -> None:
        with self.in_wave:
            self._wave()

    def _wave(self) -> None:
        self.waves += 1
        prefix = f"{self.run}w{self.waves}-"
        self._post([_track(u, "Session Started", f"{prefix}{u.user_id}-s", {})
                    for u in self.population.users])
        self.drained()
        events = self._serve_and_click(prefix)
        time.sleep(EXPOSURE_FLUSH_S)  # clicks count only after their exposure (arm_counters)
        deadline = time.monotonic() + 10
        while self.redis.xlen(EXPOSURES_STREAM) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._post(events)
        self.drained()

    def _serve_and_click(self, prefix: str) -> list[dict[str, Any]]:
        variants = _variants_by_location(self.redis)
        names = ",".join(sorted(variants))
        events = []
        secret = self.secret
        for user in self.population.users:
            tag = user_tag(secret, user.user_id)
            records = dict(zip(variants, self.redis.mget([decision_key(tag, p)
                                                          for p in variants]), strict=True))
            for page in range(PAGES_PER_SESSION):
                answer = self.client.get(f"{self.edge}/p", params={"placements": names,
                                                                   "uid": user.user_id})
                if answer.status_code != 200:
                    raise RolloutDemoError(f"the edge answered {answer.status_code}")
                for placement, location in answer.json().items():
                    variant = variants[placement][location]
                    properties = {"placement": placement, "variant": variant, "position": 0}
                    base = f"{prefix}{user.user_id}-{page}-{placement}"
                    events.append(_track(user, "Variant Viewed", f"{base}v", properties))
                    chance = self.population.click_probability(user, placement, variant)
                    clicked = bool(self.rng.random() < chance)
                    self._account(records[placement], chance, clicked)
                    if clicked:
                        events.append(_track(user, "Variant Clicked", f"{base}c",
                                             properties))
        return events

    def _account(self, raw: bytes | str | None, chance: float, clicked: bool) -> None:
        if not raw:
            return
        record = decode(raw.encode() if isinstance(raw, str) else raw)
        if record.experiment and record.experiment != PERSONALIZATION:
            sums = self.served.setdefault((record.experiment, record.arm,
                                           record.model_version), [0.0, 0, 0])
            sums[0] += chance
            sums[1] += 1
            sums[2] += clicked

    def _post(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), POST_BATCH):
            answer = self.client.post(f"{self.api}/v1/events",
                                      json={"batch": messages[start:start + POST_BATCH]})
            if answer.status_code != 200:
                raise RolloutDemoError(f"the events API answered {answer.status_code}: "
                                       f"{answer.text[:200]}")


def run_rollouts(console: Console, inputs: Inputs, registry: Registry, traffic: Traffic,
                 trained: str) -> None:
    """Fit the two known models, then roll each out with the controller running."""
    console.print("\nRollouts in accelerated time: two candidates whose effect is known "
                  "from the population's hidden preferences")
    with console.status("fitting the better and the worse model"):
        models = known_models(inputs, registry, trained)
    _print_truth(console, models, inputs.production.version)
    stop = threading.Event()
    looker = _BetweenWaves(inputs.redis, registry, traffic.in_wave)
    controller = threading.Thread(target=run, args=(looker, LOOK_EVERY_S, stop.is_set),
                                  name="demo-rollout-controller", daemon=True)
    controller.start()
    ids: list[str] = []
    for earlier in rollout_store.load_experiments(inputs.redis):  # a demo killed mid-rollout
        if earlier.id.startswith("rollout-demo-"):
            _stop_if_running(inputs.redis, earlier.id, "left running by an earlier demo")
    try:
        for version, why in ((models.better, "better"), (models.worse, "worse")):
            ids.append(_start(console, traffic, registry, version, why, models))
            _ramp(console, inputs.redis, traffic, ids[-1])
            _stop_if_running(inputs.redis, ids[-1], f"demo: stopped after its {TIME_LIMIT_S:g} s")
    finally:
        stop.set()
        controller.join(5)
        for experiment_id in ids:  # Ctrl-C mid-rollout: a rerun must be able to start anew
            _stop_if_running(inputs.redis, experiment_id, "demo interrupted")
    console.print("\nAs `edgepick rollout status` shows them:")
    docs = {d["id"]: d for d in rollout_documents(inputs.redis, None) if d["id"] in ids}
    for line in rollout_lines([docs[i] for i in ids if i in docs], history=50):
        console.print(line, highlight=False)


class _BetweenWaves(RolloutController):
    """The controller, looking only between waves. A wave is the demo's unit of time: its
    clicks are counted a few seconds after its exposures, and a step that changed in between
    would count them in a step where their exposures are not (or not at all, once the
    rollout ended). In real time a step lasts hours and those seconds are nothing; here a
    step lasts a wave or two, so a look mid-wave would lose most of a step's clicks."""

    def __init__(self, redis: Redis, registry: Registry, gate: threading.Lock) -> None:
        super().__init__(redis, registry, lift_every_s=0)
        self._gate = gate

    def look(self) -> list[str]:
        with self._gate:
            return super().look()


def _print_truth(console: Console, models: KnownModels, production: str) -> None:
    table = Table(title="True click-through of the first slot on the synthetic population "
                        "(from its hidden preferences, every user)")
    table.add_column("model")
    table.add_column("what it is")
    table.add_column("true click-through", justify="right")
    for version, what in ((production, "production now"),
                          (models.better, "fitted to the true click probabilities"),
                          (models.worse, "the same rows, labels inverted")):
        table.add_row(version, what, f"{models.truth[version]:.2%}")
    console.print(table)
    if not models.truth[models.better] > models.truth[production] > models.truth[models.worse]:
        console.print("note: on this population the models do not order as intended "
                      "(better > production > worse); the rollouts run anyway", style="yellow")


def _start(console: Console, traffic: Traffic, registry: Registry, version: str, label: str,
           models: KnownModels) -> str:
    """Store the rollout as `edgepick rollout start --force` does, saying why it is forced."""
    production = registry.pointers().get("production")
    truth = models.truth
    reason = (f"demo: {label} on the population's truth, {truth[version]:.2%} vs "
              f"production's {truth.get(production or BaselineRanker.version, float('nan')):.2%}")
    try:
        registry.promotable(version)
        gate = "the offline gate would accept it"
    except RegistryError as e:
        gate = f"the offline gate refuses it ({e}): forced, which is the point of the demo"
    now = time.time()
    experiment = Experiment(
        f"rollout-{version}", version, production, seed=balanced_seed(traffic, version),
        steps=STEPS, min_exposures=MIN_EXPOSURES, shadow_seconds=SHADOW_S, started_at=now,
        step_started_at=now, notes={"forced": reason})
    rollout_store.start(traffic.redis, experiment,
                        f"started: forced past the offline gate: {reason}")
    console.print(f"\nrollout {experiment.id} ({label}): {gate}; shadow {SHADOW_S:g} s, then "
                  f"{','.join(f'{s:g}' for s in STEPS)} %, {MIN_EXPOSURES:,} exposures per arm "
                  "per step, guardrail " + ", ".join(f"{g.metric}:{g.max_drop:.0%}"
                                                     for g in experiment.guardrails),
                  highlight=False)
    return experiment.id


def _ramp(console: Console, redis: Redis, traffic: Traffic, experiment_id: str) -> None:
    """Waves until the rollout ends (or the time limit), printing each transition."""
    started = time.monotonic()
    seen = len(rollout_store.history(redis, experiment_id))
    experiment = rollout_store.load_experiment(redis, experiment_id)
    with console.status("") as status:
        while experiment.active and time.monotonic() - started < TIME_LIMIT_S:
            status.update(f"wave {traffic.waves + 1}: {experiment.status}, "
                          f"{experiment.share:g} % treatment")
            traffic.wave()
            time.sleep(LOOK_EVERY_S + 0.05)  # a look of the controller at the counted wave
            before, seen = seen, _print_new(console, redis, experiment_id, seen, started)
            experiment = rollout_store.load_experiment(redis, experiment_id)
            if seen > before and experiment.active:
                # Workers re-read the experiment every 2 s and count in the step they last
                # read (arm_counters.STEP_CACHE_S): a wave sent sooner would be decided in
                # one step and counted in the next. Hours per step make this nothing in
                # real time; the demo's seconds per step do not.
                time.sleep(SETTLE_S)
        deadline = time.monotonic() + 5  # completion promotes at once: wait for its entry
        while experiment.status == "complete" and not experiment.notes.get("promoted") \
                and time.monotonic() < deadline:
            time.sleep(0.1)
            experiment = rollout_store.load_experiment(redis, experiment_id)
    _print_new(console, redis, experiment_id, seen, started)
    served = [f"{arm} ({model}) {total / n:.2%} over {n:,} exposures ({clicks:,} clicks "
              "posted)" for (exp, arm, model), (total, n, clicks)
              in sorted(traffic.served.items()) if exp == experiment_id]
    console.print("  true click-through of what the edge served: "
                  + ("; ".join(served) or "nothing in either arm"), highlight=False)
    if experiment.active:
        console.print(f"  rollout {experiment_id} did not conclude within {TIME_LIMIT_S:g} s "
                      f"(still {experiment.status} at {experiment.share:g} %)", style="yellow")
    else:
        console.print(f"  {experiment.status} after {time.monotonic() - started:.1f} s "
                      f"({traffic.waves} waves of {len(traffic.population.users):,} sessions "
                      "so far)", highlight=False)


def balanced_seed(traffic: Traffic, version: str) -> str:
    """A hash seed under which the demo's few hundred users split as the shares say at every
    step (chi-square under 0.45, p > 0.5). Any seed splits a real population right; a fixed
    population of 300 is one draw, and an unlucky one would be held for a sample-ratio
    mismatch at every look, rightly: the same users come back every wave."""
    tags = [user_tag(traffic.secret, u.user_id) for u in traffic.population.users
            if not in_holdout_bucket(holdout_bucket(u.user_id), traffic.holdout_share)]
    for attempt in range(1000):
        seed = f"{version}-{attempt}"
        buckets = np.array([gbhash(seed, tag) for tag in tags])
        control = int((buckets >= CONTROL_FROM).sum())
        if all(_chi2(int((buckets < share / 100).sum()), control, share / 100 / CONTROL_FROM)
               < 0.45 for share in STEPS[:-1]):
            return seed
    return ""  # the experiment's id


def _chi2(treatment: int, control: int, ratio: float) -> float:
    total = treatment + control
    expected = (total * ratio / (1 + ratio), total / (1 + ratio))
    return sum((o - e) ** 2 / e for o, e in zip((treatment, control), expected, strict=True))


def _stop_if_running(redis: Redis, experiment_id: str, reason: str) -> None:
    """A rollout cut short (time limit, Ctrl-C) is stopped, so the next one may start."""
    experiment = rollout_store.load_experiment(redis, experiment_id)
    if experiment.active:
        rollout_store.transition(redis, experiment, experiment.with_(status="stopped"), "stop",
                                 reason)


def _print_new(console: Console, redis: Redis, experiment_id: str, seen: int,
               started: float) -> int:
    entries = rollout_store.history(redis, experiment_id)
    for entry in entries[seen:]:  # in short: the reasons follow with the status below
        reason = entry.reason.split(": ")[-1] if entry.action == "hold" else ""
        console.print(f"  {time.monotonic() - started:5.1f} s  {entry.action:11s} "
                      f"{entry.status}, treatment "
                      f"{'everyone' if entry.status == 'complete' else f'{entry.share:g} %'}"
                      f"  {reason[:80]}",
                      highlight=False)
    return len(entries)


def _variants_by_location(redis: Redis) -> dict[str, dict[str, str]]:
    manifest = parse_document(orjson.loads(redis.get(MANIFEST_KEY) or b"{}"))
    return {name: {location.decode("latin-1"): variant
                   for variant, location in entry.locations.items()}
            for name, entry in manifest.placements.items()}


def _track(user: SyntheticUser, name: str, message_id: str, properties: dict[str, Any]
           ) -> dict[str, Any]:
    """A Segment track of `user` now (as Population's own history writes them)."""
    return {"type": "track", "event": name, "userId": user.user_id, "messageId": message_id,
            "timestamp": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
            "properties": properties,
            "context": {"userAgent": user.user_agent, "locale": user.locale}}
