"""A model in shadow compared with what users then did: decisions made by a real worker
with the model in shadow, clicks posted through the API, the report read back from the
origin's logs (and through `edgepick rollout shadow`)."""

from __future__ import annotations

import datetime as dt
import json

from redis import Redis

from decision_worker.ingest.decision_log import DecisionLog
from decision_worker.ingest.event_log import EventLog
from decision_worker.learning.experiments.shadow_check import ALL, read_shadow_report
from edge_functions.keys import user_tag
from object_store.folder import FolderStore
from tests.conftest import SECRET
from tests.edgepick.test_cli import run

from ...conftest import NOW, track
from ...online.experiment_support import TREATMENT_MODEL, experiment, register, store
from ...online.test_why_records import explore
from ...online.test_worker import session


def test_the_report_compares_the_shadow_picks_with_later_clicks(
        ingest, drain, redis: Redis, worker_settings) -> None:
    register(worker_settings.origin_dir)
    explore(redis, "hero", 0.5)  # production sometimes serves the shadow's pick, by chance
    shadow = experiment(status="shadow", shadow_share=1.0,
                        started_at=(NOW - dt.timedelta(minutes=5)).timestamp())
    store(redis, shadow)
    users = [f"sh-{i}" for i in range(40)]
    ingest([session(u, f"s-{u}") for u in users])
    drain()
    origin = FolderStore(worker_settings.origin_dir)
    lines = [line for line in DecisionLog(origin).read_days(
        NOW.date() - dt.timedelta(days=1), NOW.date() + dt.timedelta(days=1))
        if "shadow_ranked" in line]
    tag_of = {line["tag"]: line for line in lines}
    secret = worker_settings.key_secret_bytes
    by_user = {u: tag_of[user_tag(secret, u)] for u in users if user_tag(secret, u) in tag_of}
    assert len(by_user) >= 30  # the holdout (10 %) is outside every experiment
    # every other user clicks what production served; every third, the shadow's pick
    clicks, served_clicks, pick_clicks = [], 0, 0
    at = NOW + dt.timedelta(seconds=30)
    for i, (user, line) in enumerate(sorted(by_user.items())):
        served, pick = line["variant"], line["shadow_ranked"][0]
        clicked = set()
        if i % 2 == 0:
            clicked.add(served)
        if i % 3 == 0:
            clicked.add(pick)
        served_clicks += served in clicked
        pick_clicks += pick in clicked
        clicks += [track(user, "Variant Clicked", f"c-{user}-{v}", at, placement="hero",
                         variant=v) for v in sorted(clicked)]
    ingest(clicks)
    drain()
    agree = sum(line["variant"] == line["shadow_ranked"][0] for line in by_user.values())
    assert 0 < agree < len(by_user)

    report = read_shadow_report(EventLog(origin), shadow, worker_settings.key_secret_bytes,
                                until=(NOW + dt.timedelta(minutes=1)).timestamp())
    assert set(report.figures) == {ALL, "hero"}
    figures = report.figures["hero"]
    n = len(by_user)
    assert (figures.decisions, figures.users, figures.support) == (n, n, agree)
    assert figures.agreement.value == agree / n
    assert figures.production_ctr.value == served_clicks / n
    assert figures.shadow_pick_clicked.value == pick_clicks / n
    assert figures.agreement.low <= figures.agreement.value <= figures.agreement.high
    # SNIPS: the clicks where production served the shadow's pick, each weighed by one
    # over the probability production had of serving it
    weights = [(1 / line["propensity"], i % 2 == 0 or i % 3 == 0)
               for i, (_, line) in enumerate(sorted(by_user.items()))
               if line["variant"] == line["shadow_ranked"][0]]
    assert abs(figures.shadow_snips.value - sum(w for w, hit in weights if hit)
               / sum(w for w, _ in weights)) < 1e-12

    env = {"EDGEPICK_REDIS_URL": worker_settings.redis_url,
           "EDGEPICK_ORIGIN": worker_settings.origin, "EDGEPICK_KEY_SECRET": SECRET,
           "EDGEPICK_DATA_DIR": str(worker_settings.data_dir)}
    printed = run(["rollout", "shadow", shadow.id], env)
    assert printed.returncode == 0, printed.stderr
    assert f"rollout {shadow.id}: {TREATMENT_MODEL} in shadow" in printed.stdout
    assert f"hero: {n:,} decisions, {n:,} users" in printed.stdout
    assert f"first choices agree      {100 * agree / n:5.1f}%" in printed.stdout
    doc = json.loads(run(["rollout", "shadow", shadow.id, "--json"], env).stdout)
    assert doc["figures"]["hero"]["support"] == agree


def test_an_unknown_rollout_is_refused_with_one_line(settings, redis: Redis) -> None:
    env = {"EDGEPICK_REDIS_URL": settings.redis_url, "EDGEPICK_ORIGIN": settings.origin,
           "EDGEPICK_DATA_DIR": str(settings.data_dir)}
    done = run(["rollout", "shadow", "rollout-nope"], env)
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0 and "rollout-nope" in done.stderr
