"""The audit log's durable copy on the origin: what the controller copies, that it outlives
Redis' stream, that a copy interrupted before its pointer is read once, and that an origin
fault leaves the controller working and the entries copied later."""

from __future__ import annotations

import shutil
from pathlib import Path

from redis import Redis

from decision_worker.keys import ROLLOUT_AUDIT, ROLLOUT_AUDIT_ARCHIVED
from decision_worker.learning.experiments import rollout_store
from decision_worker.learning.experiments.audit_archive import archive, archived_history
from decision_worker.learning.experiments.controller import RolloutController
from decision_worker.learning.registry import Registry
from tests.edgepick.test_cli import run

from .test_controller import Clock, started


def test_the_controller_copies_every_transition_to_the_origin(
        redis: Redis, redis_url: str, registry: Registry, tmp_path: Path) -> None:
    clock = Clock()
    experiment = started(redis, clock)
    controller = RolloutController(redis, registry, clock)
    controller.look()
    clock.now += 61
    controller.look()  # shadow done, ramping; then a hold for exposures
    controller.look()
    in_redis = rollout_store.history(redis, experiment.id)
    assert [e.action for e in in_redis] == ["start", "shadow_done", "hold"]
    assert archived_history(registry.store, experiment.id) == in_redis
    redis.delete(ROLLOUT_AUDIT, ROLLOUT_AUDIT_ARCHIVED)  # Redis lost its data
    assert archived_history(registry.store) == in_redis
    env = {"EDGEPICK_REDIS_URL": redis_url, "EDGEPICK_ORIGIN": f"file://{tmp_path / 'origin'}",
           "EDGEPICK_DATA_DIR": str(tmp_path / "data")}
    printed = run(["rollout", "history", experiment.id], env)
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert len(lines) == 3 and "rollout-new  shadow_done" in lines[1]
    assert "ramping" in lines[1] and "step 1 (5 %)" in lines[1]


def test_a_copy_interrupted_before_its_pointer_is_read_once(redis: Redis,
                                                            registry: Registry) -> None:
    clock = Clock()
    experiment = started(redis, clock)
    assert archive(redis, registry.store) == 1
    rollout_store.audit(redis, experiment, "hold", "second")
    pointer = redis.get(ROLLOUT_AUDIT_ARCHIVED)
    assert archive(redis, registry.store) == 1
    redis.set(ROLLOUT_AUDIT_ARCHIVED, pointer or b"0-0")  # died before moving the pointer
    rollout_store.audit(redis, experiment, "hold", "third")
    assert archive(redis, registry.store) == 2  # the second again, and the third
    reasons = [e.reason for e in archived_history(registry.store, experiment.id)]
    assert reasons == ["test", "second", "third"]
    assert archive(redis, registry.store) == 0


def test_an_origin_fault_keeps_the_controller_looking(redis: Redis,
                                                      registry: Registry) -> None:
    clock = Clock()
    experiment = started(redis, clock)
    root = Path(str(registry.store.describe()).removeprefix("file://").rstrip("/"))
    blocked = root / "audit"
    shutil.rmtree(blocked, ignore_errors=True)
    blocked.write_text("not a folder")  # the copy cannot be written
    controller = RolloutController(redis, registry, clock)
    clock.now += 61
    assert "ramping to 5 %" in controller.look()[0]  # the look went on
    assert rollout_store.load_experiment(redis, experiment.id).status == "ramping"
    blocked.unlink()
    controller.look()
    actions = [e.action for e in archived_history(registry.store, experiment.id)]
    assert actions[:2] == ["start", "shadow_done"]
