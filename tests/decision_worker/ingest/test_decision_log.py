"""The decision log on the origin: lines by decided day, one per decision when read back,
forgotten tags and torn lines left out."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from decision_worker.ingest.decision_log import DecisionLog
from object_store.folder import FolderStore

DAY = dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)


def line(tag: str, at: dt.datetime, placement: str = "hero",
         propensity: float = 0.95) -> dict[str, object]:
    return {"tag": tag, "placement": placement, "variant": "trail-running",
            "propensity": propensity, "explored": False, "model": "baseline-2",
            "arm": "treatment", "decided_at": int(at.timestamp())}


def test_decisions_read_back_once_by_day_without_forgotten_tags(tmp_path: Path) -> None:
    log = DecisionLog(FolderStore(tmp_path), writer="w1")
    tomorrow = DAY + dt.timedelta(days=1)
    assert log.append([line("a", DAY), line("b", DAY), line("a", tomorrow)]) == 3
    # a redelivered batch logs the same decisions again; another worker writes its own file
    log.append([line("a", DAY)])
    DecisionLog(FolderStore(tmp_path), writer="w2").append([line("c", DAY, "cta")])
    files = sorted(p.relative_to(tmp_path).as_posix()
                   for p in (tmp_path / "decisions").rglob("*.jsonl"))
    assert [f.split("/")[1] for f in files] == ["decided_day=2026-11-23"] * 2 + [
        "decided_day=2026-11-24"]
    with open(tmp_path / files[0], "ab") as torn:  # a crash mid-line, and a bad value
        torn.write(b'{"tag": "d", "placement": "hero", "propensity": 0.0, "variant": "x", '
                   b'"explored": false, "model": "m", "arm": "treatment", "decided_at": 1}\n'
                   b'{"tag": "e", "plac')
    reader = DecisionLog(FolderStore(tmp_path))
    found = reader.read_days(DAY.date(), DAY.date())
    assert [(d["tag"], d["placement"]) for d in found] == [("a", "hero"), ("b", "hero"),
                                                           ("c", "cta")]
    assert reader.corrupt_lines == 2
    both = reader.read_days(DAY.date(), tomorrow.date(), forgotten={"a"})
    assert [d["tag"] for d in both] == ["b", "c"]  # a forgotten tag is never read back
