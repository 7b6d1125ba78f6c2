"""`edgepick import`'s engine: history from files into the event log, by event day."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decision_worker.ingest.event_log import EventLog
from decision_worker.ingest.history_import import (
    MAX_LINE_BYTES,
    HistoryImport,
    ImportRefused,
    import_paths,
)
from object_store.folder import FolderStore


def view(i: int, day: str = "2016-03-0", **extra: object) -> dict[str, object]:
    return {"type": "track", "event": "Variant Viewed", "userId": f"user-{i % 3}",
            "messageId": f"m-{i}", "timestamp": f"{day}{1 + i % 5}T10:00:00Z",
            "properties": {"placement": "movies", "variant": f"v{i}"}, **extra}


def write_lines(path: Path, lines: list[object], compress: bool = False) -> Path:
    data = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines).encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def logged_ids(root: Path, first: str, last: str) -> list[str]:
    messages = EventLog(FolderStore(root)).read_days(dt.date.fromisoformat(first),
                                                     dt.date.fromisoformat(last))
    return sorted(str(m["messageId"]) for m in messages)


def test_history_lands_in_its_event_days_and_a_second_import_adds_nothing(
        tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    write_lines(exports / "part-1.jsonl", [view(i) for i in range(6)] + [
        "not json", view(3),  # a bad line, and a duplicate of line 4
        {"type": "track", "event": "Variant Viewed", "messageId": "no-user"}])
    write_lines(exports / "part-2.jsonl.gz", [view(i) for i in range(6, 10)], compress=True)
    (exports / "notes.txt").write_text("not an export")  # not a JSON Lines file: ignored
    origin = tmp_path / "origin"
    log = EventLog(FolderStore(origin))
    summary = import_paths([exports], HistoryImport(log))
    assert (summary.files, summary.lines, summary.imported) == (2, 13, 10)
    assert (summary.duplicates, summary.bad_lines) == (1, 2)
    assert [str(p) for p in summary.problems] == [
        f"{exports / 'part-1.jsonl'}:7: is not a JSON message: Expecting value: line 1 "
        "column 1 (char 0)",
        f"{exports / 'part-1.jsonl'}:9: field 'userId' or 'anonymousId' is required"]
    assert summary.first == dt.datetime(2016, 3, 1, 10, tzinfo=dt.UTC)
    assert len(summary.days) == 5
    assert logged_ids(origin, "2016-03-01", "2016-03-05") == sorted(f"m-{i}" for i in range(10))
    assert logged_ids(origin, "2016-03-02", "2016-03-02") == ["m-1", "m-6"]
    # receivedAt: the event time when the export has none (the replay's order)
    (record,) = [m for m in log.read_day(dt.date(2016, 3, 2)) if m["messageId"] == "m-1"]
    assert record["receivedAt"] == "2016-03-02T10:00:00Z"
    again = import_paths([exports], HistoryImport(EventLog(FolderStore(origin))))
    assert (again.imported, again.duplicates) == (0, 11)
    assert logged_ids(origin, "2016-03-01", "2016-03-05") == sorted(f"m-{i}" for i in range(10))


def test_strict_stops_at_the_first_bad_line_and_a_rerun_resumes(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "h.jsonl", [view(0), view(1), "[1, 2]", view(2)])
    origin = tmp_path / "origin"
    with pytest.raises(ImportRefused, match=r"h\.jsonl:3: is not a JSON object"):
        import_paths([path], HistoryImport(EventLog(FolderStore(origin)), strict=True))
    assert logged_ids(origin, "2016-03-01", "2016-03-05") == ["m-0", "m-1"]  # written whole
    path.write_text(path.read_text().replace("[1, 2]\n", ""))
    resumed = import_paths([path], HistoryImport(EventLog(FolderStore(origin)), strict=True))
    assert (resumed.imported, resumed.duplicates) == (1, 2)
    assert logged_ids(origin, "2016-03-01", "2016-03-05") == ["m-0", "m-1", "m-2"]


def test_exported_receivedat_is_kept_and_oversized_or_missing_inputs_are_named(
        tmp_path: Path) -> None:
    stated = view(0, receivedAt="2016-03-01T10:00:05Z")
    huge = view(1, properties={"placement": "movies", "variant": "v1",
                               "note": "x" * MAX_LINE_BYTES})
    path = write_lines(tmp_path / "h.jsonl", [stated, huge, view(2)])
    log = EventLog(FolderStore(tmp_path / "origin"))
    summary = import_paths([path], HistoryImport(log))
    assert summary.imported == 2
    assert [p.reason for p in summary.problems] == [
        f"line is longer than {MAX_LINE_BYTES:,} bytes"]
    assert log.read_day(dt.date(2016, 3, 1))[0]["receivedAt"] == "2016-03-01T10:00:05Z"
    with pytest.raises(ImportRefused, match="nowhere.jsonl: no such file or folder"):
        import_paths([tmp_path / "nowhere.jsonl"], HistoryImport(log))
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(gzip.compress(b'{"a": 1}\n' * 100)[:-12])
    with pytest.raises(ImportRefused, match="broken.jsonl.gz: cannot be read"):
        import_paths([broken], HistoryImport(log))


@given(st.lists(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                          st.builds(lambda i: json.dumps(view(i)).encode(),
                                    st.integers(0, 50))), max_size=30))
def test_any_lines_are_imported_or_reported_never_a_crash(tmp_path_factory, lines) -> None:
    root = tmp_path_factory.mktemp("fuzz")
    path = root / "h.jsonl"
    path.write_bytes(b"\n".join(line.replace(b"\n", b" ") for line in lines))
    if path.read_bytes().startswith(b"\x1f\x8b"):  # gzip's magic: read as gzip, whatever
        try:                                         # the name (exports often drop .gz)
            import_paths([path], HistoryImport(EventLog(FolderStore(root / "origin"))))
        except ImportRefused as e:  # not valid gzip after all: the whole file, by name
            assert "h.jsonl: cannot be read" in str(e)
        return
    summary = import_paths([path], HistoryImport(EventLog(FolderStore(root / "origin"))))
    non_blank = sum(1 for line in lines if line.replace(b"\n", b" ").strip())
    assert summary.lines == non_blank
    assert summary.imported + summary.duplicates + summary.bad_lines == non_blank
