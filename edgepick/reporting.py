"""How the CLI shows a publish: a progress bar while it runs, a summary when it is done."""

from __future__ import annotations

from pathlib import Path

from redis import Redis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from content_variants.limits import PublishLimits
from content_variants.origin import ContentOrigin
from content_variants.prewarm import Prewarmer
from content_variants.publish import Publisher
from content_variants.publish_request import PublishReport


def publish_with_progress(content_dir: Path, redis: Redis, origin: ContentOrigin,
                          prewarmer: Prewarmer, max_variant_bytes: int,
                          console: Console | None = None,
                          limits: PublishLimits | None = None) -> PublishReport:
    limits = limits or PublishLimits(max_variant_bytes=max_variant_bytes)
    publisher = Publisher(redis, origin, prewarmer, limits)
    console = console or Console(stderr=True, soft_wrap=True)
    with Progress(TextColumn("publishing"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("", total=None)

        def step(name: str, total: int) -> None:
            progress.update(task, advance=1, total=total, description=name)

        report = publisher.publish_folder(content_dir, step)
    print_report(report, publisher.origin, console)
    return report


def manifest_state(report: PublishReport) -> str:
    """What the manifest is after the publish, in words (never a revision it does not have)."""
    if report.manifest_error is not None:
        still = "unknown" if report.rev is None else f"still rev {report.rev}"
        return f"manifest not written ({still})"
    return f"manifest rev {report.rev}" + ("" if report.manifest_changed else " (unchanged)")


def print_report(report: PublishReport, origin: ContentOrigin, console: Console) -> None:
    describe = origin.describe
    if report.manifest_source == "origin copy":
        console.print(f"  Redis had no manifest: started from the durable copy on "
                      f"{describe()} (manifest/current.json)", highlight=False, markup=False)
    for name in report.uploaded:
        console.print(f"  + {name}", highlight=False)
    for name in report.metadata_updated:
        console.print(f"  ~ {name} (metadata)", highlight=False)
    for name in report.unpublished:
        console.print(f"  - {name}", highlight=False)
    for line in report.failed:
        console.print(f"  ! {line}", highlight=False, markup=False)
    if report.not_eligible:
        console.print(f"  uploaded but not made eligible (immutable, unreferenced): "
                      f"{', '.join(report.not_eligible)}", highlight=False, markup=False)
    console.print(
        f"{len(report.uploaded)} published, {len(report.metadata_updated)} updated, "
        f"{len(report.unchanged)} unchanged, {len(report.failed)} failed → "
        f"{manifest_state(report)} on {describe()} in {report.seconds:.2f}s",
        highlight=False, markup=False,
    )
