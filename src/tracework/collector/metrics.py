"""Prometheus metrics of one collector (their own registry, so several
services in one process — tests — do not collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class CollectorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.batches_accepted = Counter(
            "tracework_batches_accepted", "Batches stored in the lake", registry=self.registry
        )
        self.events_accepted = Counter("tracework_events_accepted", "Events stored in the lake", registry=self.registry)
        self.batches_by_format = Counter(
            "tracework_batches_by_format", "Batches stored, by wire format (ndjson, arrow)", ["format"], registry=self.registry
        )
        self.batches_rejected = Counter(
            "tracework_batches_rejected", "Batches refused, by error code", ["code"], registry=self.registry
        )
        self.duplicates = Counter(
            "tracework_batches_duplicate", "Resent batches acknowledged without storing them again", registry=self.registry
        )
        self.commit_seconds = Histogram(
            "tracework_commit_seconds",
            "Duration of one lake commit (write, commit, fsync)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.commit_batches = Histogram(
            "tracework_commit_batches",
            "Batches grouped into one lake commit",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.queue_rows = Gauge("tracework_writer_queue_rows", "Rows waiting for the lake writer", registry=self.registry)
