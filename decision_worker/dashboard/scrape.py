"""Reading another process's Prometheus `/metrics` (the edge's answers, the worker's
freshness) and turning counters and histograms into what the dashboard shows.

Quantiles come from histogram buckets the way Prometheus's `histogram_quantile` computes
them: find the bucket where the cumulative count reaches q · total, and interpolate linearly
between its lower and upper bound (0 below the first bucket). A quantile that falls in the
+Inf bucket is reported as the highest finite bound (a floor, flagged `above_range`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]


class ScrapeError(Exception):
    """A metrics endpoint that did not answer with Prometheus text."""


@dataclass
class Samples:
    """Every sample of one scrape (several endpoints summed): (name, labels) → value."""

    values: dict[tuple[str, Labels], float] = field(default_factory=dict)

    def add(self, name: str, labels: Mapping[str, str], value: float) -> None:
        key = (name, tuple(sorted(labels.items())))
        self.values[key] = self.values.get(key, 0.0) + value

    def by_label(self, name: str, label: str) -> dict[str, float]:
        """Sample `name`'s values keyed by one label (summed over the others)."""
        out: dict[str, float] = {}
        for (sample, labels), value in self.values.items():
            if sample == name:
                key = dict(labels).get(label, "")
                out[key] = out.get(key, 0.0) + value
        return out

    def value(self, name: str) -> float | None:
        found = [v for (sample, _), v in self.values.items() if sample == name]
        return sum(found) if found else None

    def buckets(self, histogram: str) -> list[tuple[float, float]]:
        """(upper bound, cumulative count) of a histogram, ascending, +Inf last."""
        summed = self.by_label(f"{histogram}_bucket", "le")
        return sorted((float(le), count) for le, count in summed.items())


def parse(text: str, into: Samples | None = None) -> Samples:
    samples = into or Samples()
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.add(sample.name, sample.labels, sample.value)
    except ValueError as e:
        raise ScrapeError(f"not Prometheus text: {e}") from e
    return samples


async def scrape(client: httpx.AsyncClient, urls: Iterable[str]) -> Samples:
    """Every endpoint's samples, summed (an edge or worker fleet reads as one)."""
    async def one(url: str) -> str:
        try:
            answer = await client.get(url)
            answer.raise_for_status()
        except httpx.HTTPError as e:
            raise ScrapeError(f"{url}: {e or type(e).__name__}") from e
        return answer.text

    texts = await asyncio.gather(*(one(url) for url in urls))
    samples = Samples()
    for text in texts:
        parse(text, samples)
    return samples


@dataclass(frozen=True)
class Quantile:
    seconds: float | None  # None: no observations
    above_range: bool = False  # in the +Inf bucket: `seconds` is the highest finite bound


def quantile(q: float, buckets: list[tuple[float, float]]) -> Quantile:
    """The q-quantile of a histogram's (upper bound, cumulative count) buckets."""
    if not buckets or buckets[-1][1] <= 0:
        return Quantile(None)
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return Quantile(lower, above_range=True)
            if count == below:
                return Quantile(upper)
            return Quantile(lower + (upper - lower) * (rank - below) / (count - below))
        lower, below = upper, count
    return Quantile(lower, above_range=True)


def bucket_delta(now: list[tuple[float, float]],
                 before: list[tuple[float, float]]) -> list[tuple[float, float]] | None:
    """The observations between two scrapes of one histogram (None after a restart: a
    count went down, or the buckets changed)."""
    if [b for b, _ in now] != [b for b, _ in before]:
        return None
    delta = [(b, n - m) for (b, n), (_, m) in zip(now, before, strict=True)]
    return None if any(d < 0 for _, d in delta) else delta
