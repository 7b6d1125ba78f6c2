"""How much one publish may take: sizes, counts, time and memory (from EDGEPICK_… settings).

Everything a publish reads comes from a CMS, so every dimension is bounded: a variant file or
template (bytes), the variants of one publish (count), one rendering (CPU, wall clock,
memory, output bytes) and the whole publish up to its manifest write (wall clock).
"""

from __future__ import annotations

from dataclasses import dataclass

from content_variants.settings import PublisherSettings


@dataclass(frozen=True)
class PublishLimits:
    max_variant_bytes: int = 64 * 1024  # rendered output of one variant
    max_source_bytes: int = 256 * 1024  # one variant file or template
    max_variants: int = 10_000  # variant files (or hook items) in one publish
    max_publish_bytes: int = 64 * 1024 * 1024  # all files one publish reads
    render_cpu_s: float = 2.0  # CPU time of one rendering
    render_memory_mb: int = 256  # address space of the render child
    publish_timeout_s: float = 300.0  # everything before the manifest write

    @property
    def render_wall_s(self) -> float:
        """Wall clock allowed to one rendering: its CPU budget with room for a busy machine."""
        return self.render_cpu_s * 3 + 1.0

    @property
    def lock_ttl_s(self) -> float:
        """How long a placement lock may outlive a crashed publisher."""
        return self.publish_timeout_s + 60.0

    @classmethod
    def from_settings(cls, settings: PublisherSettings) -> PublishLimits:
        return cls(max_variant_bytes=settings.max_variant_bytes,
                   max_source_bytes=settings.max_source_bytes,
                   max_variants=settings.max_variants,
                   max_publish_bytes=settings.max_publish_bytes,
                   render_cpu_s=settings.render_cpu_s,
                   render_memory_mb=settings.render_memory_mb,
                   publish_timeout_s=settings.publish_timeout_s)
