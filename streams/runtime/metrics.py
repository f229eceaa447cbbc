"""What a worker counts, exposed at `/metrics` in Prometheus' text format."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4"
"""Prometheus' text format; aiohttp refuses the `charset` that prometheus-client's constant
carries (the body is ASCII)."""


class WorkerMetrics:
    """One registry per worker app, so that tests can build several apps in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.activities = Counter(
            "streams_activities",
            "Activities read, by outcome: accepted, duplicate, redelivered or rejected.",
            ["outcome"],
            registry=self.registry,
        )
        self.memberships = Counter(
            "streams_memberships", "Membership events emitted.", registry=self.registry
        )
        self.batches = Counter("streams_batches", "Batches evaluated.", registry=self.registry)
        self.conflicts = Counter(
            "streams_state_conflicts",
            "Batches evaluated again because another writer changed a lead's state.",
            registry=self.registry,
        )
        self.quarantined = Counter(
            "streams_state_quarantined",
            "Leads whose stored state could not be read and was moved aside "
            "(<app_id>:quarantine:{lead}:<ms>); the lead went on from an empty state.",
            registry=self.registry,
        )
        self.minimal_dead_letters = Counter(
            "streams_dead_letters_minimal",
            "Dead letters the broker refused, replaced by a minimal one (position, error, "
            "length and sha256 of the record).",
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "streams_batch_seconds",
            "Time from a batch's arrival to its events' delivery.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "streams_batch_records",
            "Records per batch.",
            buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000, 10000),
            registry=self.registry,
        )
        self.rules_info = Gauge(
            "streams_rules_info",
            "The rules in force (value 1).",
            ["rules_version"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
