"""How `edgepick import` shows its work: a progress bar over the files' bytes, a summary, and
(with `--replay`) the imported events put on the stream for the worker to apply."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from decision_worker.errors import IngestUnavailable
from decision_worker.ingest.event_log import EventLog, encode_json, event_log_from_url
from decision_worker.ingest.events import event_rules
from decision_worker.ingest.history_import import (
    HistoryImport,
    ImportSummary,
    expand_paths,
    import_paths,
)
from decision_worker.ingest.ingestion import Ingest
from decision_worker.settings import WorkerSettings
from edge_functions.errors import EdgepickError
from edge_functions.redis_client import connect_async


class ReplayFailed(EdgepickError):
    error_code = "replay_failed"


def import_with_progress(settings: WorkerSettings, paths: list[Path], strict: bool,
                         replay: bool, console: Console | None = None) -> ImportSummary:
    console = console or Console(stderr=True, soft_wrap=True)
    log = event_log_from_url(settings.origin)
    run = HistoryImport(log, event_rules(settings), settings.key_secret_bytes, strict,
                        keep_records=replay)
    files = expand_paths(paths)
    total = sum(f.stat().st_size for f in files)
    with Progress(TextColumn("importing"), BarColumn(), DownloadColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console,
                  transient=True) as progress:
        task = progress.add_task("", total=total)
        summary = import_paths(files, run, lambda n: progress.advance(task, n))
    print_summary(summary, log, console)
    if replay and summary.imported_records:
        streamed = replay_to_stream(settings, summary, log)
        console.print(f"put {streamed:,} imported events on the stream, oldest first: the "
                      "worker applies them to profiles and popularity", highlight=False)
    return summary


def print_summary(summary: ImportSummary, log: EventLog, console: Console) -> None:
    span = (f", event times {summary.first:%Y-%m-%d} to {summary.last:%Y-%m-%d} "
            f"({len(summary.days):,} days)" if summary.first and summary.last else "")
    console.print(f"imported {summary.imported:,} of {summary.lines:,} lines from "
                  f"{summary.files:,} file(s) into {log.describe()}{span}; "
                  f"{summary.duplicates:,} already in the log, {summary.forgotten:,} of "
                  f"forgotten users, {summary.bad_lines:,} bad", highlight=False)
    for problem in summary.problems:
        console.print(f"  skipped {problem}", highlight=False, markup=False)
    if summary.bad_lines > len(summary.problems):
        console.print(f"  … and {summary.bad_lines - len(summary.problems):,} more bad lines",
                      highlight=False)


def replay_to_stream(settings: WorkerSettings, summary: ImportSummary, log: EventLog) -> int:
    """Deliver the imported messages to the stream in event-time order, through the
    ingest's idempotent delivery (a second replay of the same ids streams nothing)."""
    records = sorted(summary.imported_records, key=lambda r: r[0])
    pairs = [(str(message["messageId"]), encode_json(message)) for _, message in records]

    async def run() -> int:
        assert settings.redis_url is not None
        redis = connect_async(settings.redis_url, timeout_s=30, retries=1)
        try:
            ingest = Ingest(redis, log, settings.key_secret_bytes, event_rules(settings), 30.0)
            return await ingest.deliver(pairs, f"import-{secrets.token_hex(6)}")
        except IngestUnavailable as e:
            raise ReplayFailed(f"the events are in the log but not on the stream: {e.reason}; "
                               "run the import again with --replay") from e
        finally:
            await redis.aclose()

    return asyncio.run(run())
