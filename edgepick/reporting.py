"""How the CLI shows a publish: a progress bar while it runs, a summary when it is done."""

from __future__ import annotations

from pathlib import Path

from redis import Redis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from content_variants.origin import Origin
from content_variants.prewarm import Prewarmer
from content_variants.publish import PublishReport, publish


def publish_with_progress(content_dir: Path, redis: Redis, origin: Origin,
                          prewarmer: Prewarmer, max_variant_bytes: int,
                          console: Console | None = None) -> PublishReport:
    console = console or Console(stderr=True, soft_wrap=True)
    with Progress(TextColumn("publishing"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("", total=None)

        def step(name: str, total: int) -> None:
            progress.update(task, advance=1, total=total, description=name)

        report = publish(content_dir, redis, origin, prewarmer, max_variant_bytes, step)
    print_report(report, origin, console)
    return report


def print_report(report: PublishReport, origin: Origin, console: Console) -> None:
    for name in report.uploaded:
        console.print(f"  + {name}", highlight=False)
    for name in report.metadata_updated:
        console.print(f"  ~ {name} (metadata)", highlight=False)
    for line in report.failed:
        console.print(f"  ! {line}", highlight=False, markup=False)
    state = f"manifest rev {report.rev}" + ("" if report.manifest_changed else " (unchanged)")
    console.print(
        f"{len(report.uploaded)} published, {len(report.metadata_updated)} updated, "
        f"{len(report.unchanged)} unchanged, {len(report.failed)} failed → {state} "
        f"on {origin.describe()} in {report.seconds:.2f}s",
        highlight=False,
    )
