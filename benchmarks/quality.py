"""Quality bar: the product's served decisions against what a site could do without it, on
real data (MovieLens latest-small, `../shared/data`), end to end through public interfaces.

The whole product runs as its own processes (redis-server, `edgepick serve`, `edgepick api`,
`edgepick worker`). Movies become the variants of one placement (`edgepick publish` of a
generated content folder with a row policy: 5 slots, nothing consumed offered again). The
ratings before the time split (80 % of ratings) are imported as history (`edgepick import
--replay`); `edgepick train` then tries to learn from them (its outcome is printed: it is
what the product would serve if promoted). Two protocols, both reading decisions back
through `GET /v1/decisions/{user}` (ranked list) and the serving route (first choice):

- global: one session start per user active after the split, at the split; truth: what
  they liked after it and had not consumed before;
- session replay: the events after the split are posted to `POST /v1/events` in time order;
  at every session start the product decides from what it knows then; truth: what the
  user liked in that session and had not consumed before. Hours pass between sessions in
  the data and milliseconds here, so the worker reloads its counts on every loop
  (`EDGEPICK_STATS_RELOAD_S=0`) and the next session start is posted only once the worker
  has acknowledged the session's events: each decision reads the counts a worker would
  have had then (posted back to back, the next decision read counts a session or more
  behind, and which ones depended on timing).

Baselines are computed in the same run from the same events (movielens.py). The figures:
hit@1, hit@5, NDCG@5 with 95 % bootstrap intervals (users resampled) for all, new and
returning users, and the product's paired difference from the best baseline of each group.

    python benchmarks/quality.py [--data ../shared/data/ml-latest-small] [--json out.json]
                                 [--exploration SHARE]

`--exploration` sets the placement's share of explored first slots (default: the product's
default for a row, 2 %).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import movielens as ml  # noqa: E402
from benchmarks.processes import Processes, free_port, wait_http  # noqa: E402
from decision_worker.keys import EVENTS_STREAM  # noqa: E402
from edge_functions.keys import MANIFEST_KEY  # noqa: E402

SECRET = "quality-benchmark-secret-0123"
TOKEN = "quality-benchmark-admin-token"
TRAIN_SHARE = 0.8
VALIDATION_SHARE = 0.1  # before the split, to choose the baselines' half-life and blend
PRODUCT = "edgepick (served)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path,
                        default=ROOT.parent / "shared" / "data" / "ml-latest-small")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--exploration", type=float, default=None,
                        help="the placement's exploration share (default: the product's)")
    args = parser.parse_args()
    data = ml.load(args.data)
    r = data.ratings
    split = int(r.ts.quantile(TRAIN_SHARE))
    valid_from = int(r.ts.quantile(TRAIN_SHARE - VALIDATION_SHARE))
    half_life, blend = choose_baselines(data, valid_from, split)
    print(f"{len(r):,} ratings, {len(data.variants):,} movies, split at "
          f"{ml.iso(split)}; baselines: trending half-life {half_life:g} days, "
          f"kNN blend {blend:g} (chosen on {ml.iso(valid_from)} … split)", flush=True)
    with Processes() as procs:
        product = Product(procs, data)
        product.publish(args.data, args.exploration)
        product.import_history(split)
        trained = product.train(int(r.ts.min()), split)
        results = {"split": ml.iso(split), "half_life_days": half_life, "blend": blend,
                   "training": trained}
        for protocol in ("global", "session replay"):
            product.models.clear()
            decided = product.run_protocol(protocol, split)
            print(f"{protocol}: decisions by {dict(product.models)}", flush=True)
            outcomes = score_protocol(data, protocol, split, half_life, blend, decided)
            results[protocol] = {g: ml.bootstrap(outcomes, g, PRODUCT)
                                 for g in ("all", "new", "returning")}
            results[f"{protocol} models"] = dict(product.models)
            print_table(protocol, results[protocol])
        results["serving_agrees"] = product.serving_agrees
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


class Product:
    """edgepick's processes, driven through their public interfaces only."""

    def __init__(self, procs: Processes, data: ml.Data) -> None:
        self.procs, self.data = procs, data
        url = procs.redis()
        self.redis = Redis.from_url(url)
        port = free_port()
        self.serve = f"http://127.0.0.1:{port}"
        self.env = {"EDGEPICK_REDIS_URL": url, "EDGEPICK_KEY_SECRET": SECRET,
                    "EDGEPICK_ORIGIN": f"file://{procs.work / 'origin'}",
                    "EDGEPICK_DATA_DIR": str(procs.work / "data"),
                    "EDGEPICK_CDN_BASE": self.serve, "EDGEPICK_SERVE_ORIGIN": "1",
                    "EDGEPICK_ADMIN_TOKEN": TOKEN, "EDGEPICK_HOLDOUT_SHARE": "0",
                    "EDGEPICK_REDECIDE_ON": "", "EDGEPICK_STATS_RELOAD_S": "0",
                    "EDGEPICK_LATENESS_S": str(10 * 365 * 86_400)}
        procs.edgepick(["serve", "--port", str(port)], self.env)
        api_port = free_port()
        self.api = f"http://127.0.0.1:{api_port}"
        procs.edgepick(["api", "--port", str(api_port)], self.env)
        wait_http(self.api + "/healthz")
        procs.edgepick(["worker"], self.env)
        self.client = httpx.Client(timeout=30)
        self.serving_agrees = {"checked": 0, "agreed": 0}
        self.models: Counter[str] = Counter()  # which model made the decisions read

    def cli(self, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT), **self.env}
        return subprocess.run([sys.executable, "-m", "edgepick", *args], capture_output=True,
                              text=True, env=env, cwd=ROOT, timeout=timeout)

    def publish(self, data_dir: Path, exploration: float | None = None) -> None:
        movies = pd.read_csv(data_dir / "movies.csv")
        counts = self.data.ratings.variant.value_counts()
        content = self.procs.work / "content"
        ml.write_content(content, movies, str(counts.index[0]), exploration)
        started = time.perf_counter()
        done = self.cli("publish", str(content))
        last = (done.stderr.strip().splitlines() or [""])[-1]
        print(f"publish: {last} ({time.perf_counter() - started:.0f}s)", flush=True)
        manifest = json.loads(self.redis.get(MANIFEST_KEY) or b"{}")
        self.urls = {url: v for v, meta in
                     manifest["placements"][ml.PLACEMENT]["variants"].items()
                     for url in [meta["url"]]}

    def import_history(self, split: int) -> None:
        r = self.data.ratings
        before = r[r.ts < split]
        sessions = self.data.sessions[self.data.sessions.start < split - 1]
        path = self.procs.work / "history.jsonl"
        with path.open("w") as f:
            for message in ml.messages(before, sessions):
                f.write(json.dumps(message) + "\n")
        started = time.perf_counter()
        done = self.cli("import", "--replay", str(path))
        print(f"import: {done.stderr.strip().splitlines()[0] if done.stderr else done}"
              f" ({time.perf_counter() - started:.0f}s)", flush=True)
        self.wait_for_worker()
        print(f"worker applied the history ({time.perf_counter() - started:.0f}s in all)",
              flush=True)

    def train(self, since: int, until: int) -> str:
        """Train on the history and ask for promotion, as an operator would; what serves
        afterwards (the candidate, or the baseline ranker if it was refused) is measured."""
        done = self.cli("train", "--since", ml.iso(since)[:19], "--until",
                        ml.iso(until)[:19])
        table = [line for line in done.stdout.splitlines()
                 if line.startswith("│") or "by history" in line or " − " in line]
        print(f"train: exit {done.returncode}", *table, sep="\n", flush=True)
        # --now: the replay that follows is the measurement; a rollout's ramp would serve
        # most of it by production (the offline gate still applies: it is not forced)
        promoted = self.cli("promote", "--now")
        outcome = (promoted.stdout + promoted.stderr).strip()
        print(f"promote: {outcome}", flush=True)
        if promoted.returncode == 0:
            time.sleep(6)  # workers follow the production pointer within 5 s
        return outcome

    def run_protocol(self, protocol: str, split: int) -> dict[Any, list[str]]:
        """{key: ranked variant ids}: key = user (global) or session (session replay)."""
        if protocol == "global":
            return self._global(split)
        return self._sessions(split)

    def _global(self, split: int) -> dict[Any, list[str]]:
        r = self.data.ratings
        users = sorted(set(r[(r.ts >= split) & r.liked].user))
        batch = [ml.session_start(u, -(i + 1), split) for i, u in enumerate(users)]
        for start in range(0, len(batch), 500):
            self.post(batch[start:start + 500])
        self.wait_for_worker()
        return {u: self.decision(u, check_serving=True) for u in users}

    def _sessions(self, split: int) -> dict[Any, list[str]]:
        r = self.data.ratings
        after = r[r.ts >= split]
        by_session = {int(s): rows for s, rows in after.groupby("session")}
        sessions = self.data.sessions[self.data.sessions.start >= split - 1]
        decided: dict[Any, list[str]] = {}
        for s in sessions.itertuples():
            self.post([ml.session_start(s.user, int(s.session), int(s.start))])
            decided[int(s.session)] = self.decision(s.user, wait_for=int(s.start))
            rows = by_session.get(int(s.session))
            if rows is not None:
                self.post(list(ml.messages(rows, sessions.iloc[0:0])))
                # Hours pass between sessions in the data, milliseconds here: the next
                # session start waits until the worker has counted these, as it would have
                self.wait_for_worker(poll_s=0.002)
        return decided

    def post(self, messages: list[dict[str, Any]]) -> None:
        for attempt in range(20):
            answer = self.client.post(f"{self.api}/v1/events", json={"batch": messages})
            if answer.status_code == 200:
                return
            time.sleep(0.2 * (attempt + 1))
        raise RuntimeError(f"events API: {answer.status_code} {answer.text[:200]}")

    def decision(self, user: str, wait_for: int | None = None,
                 check_serving: bool = False) -> list[str]:
        """The ranked list (waiting, with `wait_for`, until the decision of that moment)."""
        deadline = time.monotonic() + 30
        while True:
            answer = self.client.get(f"{self.api}/v1/decisions/{user}",
                                     params={"placement": ml.PLACEMENT},
                                     headers={"authorization": f"Bearer {TOKEN}"})
            found = answer.json()["placements"][ml.PLACEMENT]
            if found and (wait_for is None or found["decided_at"] >= wait_for):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"no decision for {user} at {wait_for}")
            time.sleep(0.002)
        self.models[found["model_version"]] += 1
        if check_serving:
            served = self.client.get(f"{self.serve}/p/{ml.PLACEMENT}",
                                     headers={"x-user-id": user}, follow_redirects=False)
            self.serving_agrees["checked"] += 1
            self.serving_agrees["agreed"] += int(
                self.urls.get(served.headers.get("location", "")) == found["ranked"][0])
        return list(found["ranked"])

    def wait_for_worker(self, poll_s: float = 0.2) -> None:
        """Until the consumer group has delivered and acknowledged every entry."""
        while True:  # (the group's `lag` is unknown once read entries are trimmed)
            last = self.redis.xinfo_stream(EVENTS_STREAM)["last-generated-id"]
            groups = self.redis.xinfo_groups(EVENTS_STREAM)
            if groups and all(g["last-delivered-id"] == last and g["pending"] == 0
                              for g in groups):
                return
            time.sleep(poll_s)



def choose_baselines(data: ml.Data, valid_from: int, split: int) -> tuple[float, float]:
    """Trending's half-life, then kNN's blend weight, by NDCG@5 of the session replay on the
    slice before the split (the baselines' own validation, as a site would tune them)."""
    best_h = max((1.0, 7.0, 30.0, 90.0, 365.0), key=lambda h: _mean_ndcg(
        data, valid_from, split, h, 0.0, "trending"))
    best_b = max((0.25, 0.5, 0.75), key=lambda b: _mean_ndcg(
        data, valid_from, split, best_h, b, "item-kNN + trending"))
    return best_h, best_b


def _mean_ndcg(data: ml.Data, since: int, until: int, half_life: float, blend: float,
               name: str) -> float:
    outcomes = replay_baselines(data, since, until, half_life, blend, "session replay")
    rows = outcomes[name].rows
    return sum(r[2] for r in rows) / max(1, len(rows))


def replay_baselines(data: ml.Data, since: int, until: int, half_life: float, blend: float,
                     protocol: str, decided: dict[Any, list[str]] | None = None
                     ) -> dict[str, ml.Outcomes]:
    """Every baseline (and, given `decided`, the product) scored on the protocol's moments
    in [since, until), causally."""
    r = data.ratings
    index = {v: i for i, v in enumerate(data.variants)}
    similarity = ml.item_similarity(r[r.ts < since], len(data.variants))
    scorers = ml.scorers(similarity, blend)
    outcomes = {name: ml.Outcomes() for name in ([PRODUCT] if decided is not None else [])
                + list(scorers)}
    history = ml.History(len(data.variants), half_life)
    ts, users, items, liked = r.ts.values, r.user.values, r.item.values, r.liked.values
    pointer = 0

    def catch_up(moment: int) -> None:
        nonlocal pointer
        while pointer < len(r) and ts[pointer] < moment:
            history.add(users[pointer], int(items[pointer]), bool(liked[pointer]),
                        float(ts[pointer]))
            pointer += 1

    for key, user, moment, truth in moments(data, protocol, since, until):
        catch_up(moment)
        consumed = history.consumed.get(user, set())
        truth = truth - consumed
        if not truth:
            continue
        returning = bool(consumed)
        if decided is not None:
            ranked = [index[v] for v in decided[key] if v in index]
            outcomes[PRODUCT].add(user, returning, ranked, truth)
        for name, score in scorers.items():
            outcomes[name].add(user, returning, ml.top_k(score(history, user), consumed),
                               truth)
    return outcomes


def moments(data: ml.Data, protocol: str, since: int, until: int):  # type: ignore[no-untyped-def]
    """(key, user, moment, items liked) per decision of the protocol."""
    r = data.ratings
    if protocol == "global":
        after = r[(r.ts >= since) & r.liked]
        for user, rows in after.groupby("user"):
            yield user, user, since, set(rows.item)
        return
    window = data.sessions[(data.sessions.start >= since - 1) & (data.sessions.start < until)]
    liked = r[r.liked].groupby("session").item.apply(set).to_dict()
    for s in window.itertuples():
        yield int(s.session), s.user, int(s.start) + 1, liked.get(int(s.session), set())


def score_protocol(data: ml.Data, protocol: str, split: int, half_life: float, blend: float,
                   decided: dict[Any, list[str]]) -> dict[str, ml.Outcomes]:
    return replay_baselines(data, split, 2**62, half_life, blend, protocol, decided)


def print_table(protocol: str, groups: dict[str, dict[str, dict[str, Any]]]) -> None:
    print(f"\n{protocol}: mean [95 % interval], users resampled")
    for group, table in groups.items():
        first = next(iter(table.values()))
        print(f"  {group} ({first['n']:,} decisions, {first['users']:,} users)")
        for name, row in table.items():
            cells = "  ".join(f"{m} {row[m][0]:.3f} [{row[m][1]:.3f}, {row[m][2]:.3f}]"
                              for m in ml.METRICS)
            print(f"    {name:28s} {cells}")
            for key, diff in row.items():
                if key.startswith("vs "):
                    cells = "  ".join(f"{m} {diff[m][0]:+.3f} [{diff[m][1]:+.3f}, "
                                      f"{diff[m][2]:+.3f}]" for m in ml.METRICS)
                    print(f"    {'  difference ' + key:28s} {cells}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
