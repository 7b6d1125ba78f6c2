"""Deciding as events arrive: the stream worker, its batches, scheduled re-decisions,
pinning, privacy operations."""
