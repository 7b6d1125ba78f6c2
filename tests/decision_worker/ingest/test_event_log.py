import datetime as dt
from pathlib import Path

from decision_worker.ingest.event_log import EventLog
from object_store.folder import FolderStore

AT = dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)


def test_log_round_trips_odd_text_and_skips_torn_lines(tmp_path: Path) -> None:
    log = EventLog(FolderStore(tmp_path))
    messages = [{"messageId": "a", "x": "lone \ud800 surrogate"},
                {"messageId": "b", "x": "ñandú 用户"}, {"messageId": "a", "x": "retry"}]
    assert log.append(AT, [(AT, m) for m in messages]) == 3
    (day_file,) = log.store.keys(f"events/event_day={AT.date().isoformat()}/")
    log.store.append(day_file, b'{"messageId": "c", "torn')  # a crash mid-write
    read = EventLog(FolderStore(tmp_path))
    assert read.read_day(AT.date()) == messages[:2]  # first copy of "a" wins
    assert read.corrupt_lines == 1


def test_messages_land_in_their_event_day_and_recovery_finds_them_by_arrival(
        tmp_path: Path) -> None:
    log = EventLog(FolderStore(tmp_path))
    old = AT - dt.timedelta(days=400)  # a late event (or an import) from last year
    log.append(AT, [(old, {"messageId": "late"}), (AT, {"messageId": "live"})])
    assert [m["messageId"] for m in log.read_days(old.date(), old.date())] == ["late"]
    assert [m["messageId"] for m in log.read_day(AT.date())] == ["live"]
    assert log.event_days() == [old.date(), AT.date()]
    # written today, whatever the events' dates: what recovery re-streams
    assert sorted(m["messageId"] for m in log.received_between(AT.date(), AT.date())) == [
        "late", "live"]
    assert log.received_between(AT.date() + dt.timedelta(days=1),
                                AT.date() + dt.timedelta(days=2)) == []


def test_the_old_arrival_day_layout_is_still_read(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    # an earlier version wrote by arrival day: an event of the 22nd that arrived on the 23rd
    store.append("events/dt=2026-11-23/events-host-1.jsonl",
                 b'{"messageId":"old-layout","timestamp":"2026-11-22T23:59:00Z"}\n')
    log = EventLog(store)
    log.append(AT, [(AT - dt.timedelta(days=1), {"messageId": "new-layout"})])
    ids = [m["messageId"] for m in log.read_days(dt.date(2026, 11, 22), dt.date(2026, 11, 22))]
    assert sorted(ids) == ["new-layout", "old-layout"]
    assert [m["messageId"] for m in log.received_between(AT.date(), AT.date())] == [
        "old-layout", "new-layout"]
