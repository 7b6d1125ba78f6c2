import datetime as dt
from pathlib import Path

from decision_worker.ingest.event_log import EventLog
from object_store.folder import FolderStore


def test_log_round_trips_odd_text_and_skips_torn_lines(tmp_path: Path) -> None:
    log = EventLog(FolderStore(tmp_path))
    at = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    messages = [{"messageId": "a", "x": "lone \ud800 surrogate"},
                {"messageId": "b", "x": "ñandú 用户"}, {"messageId": "a", "x": "retry"}]
    assert log.append(at, messages) == 3
    (day_file,) = log.store.keys(f"events/dt={at.date().isoformat()}/")
    log.store.append(day_file, b'{"messageId": "c", "torn')  # a crash mid-write
    read = EventLog(FolderStore(tmp_path))
    assert read.read_day(at.date()) == messages[:2]  # first copy of "a" wins
    assert read.corrupt_lines == 1
