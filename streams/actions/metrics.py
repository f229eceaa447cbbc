"""What the dispatcher counts, at `/metrics` (Prometheus). Labels are action names and
endpoints (`scheme://host[:port]`) only: never a URL path, a query, a header or a secret."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


@dataclass
class CallMetrics:
    """The metrics of one (action, endpoint), labels resolved."""

    outcomes: dict[str, Any]
    seconds: Any
    retries: Any
    queue_depth: Any
    discarded: Any
    parent: Counter
    action: str
    endpoint: str

    def outcome(self, name: str) -> Any:
        child = self.outcomes.get(name)
        if child is None:
            child = self.outcomes[name] = self.parent.labels(self.action, self.endpoint, name)
        return child


class ActionMetrics:
    """One registry per dispatcher, so that tests can build several in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[str, str], CallMetrics] = {}
        self.calls = Counter(
            "streams_action_calls",
            "Calls of custom actions that ended, by outcome: success, or the dead letter's "
            "error (http_status, timeout, connection, capped, delay_exceeded, missing_value).",
            ["action", "endpoint", "outcome"],
            registry=self.registry,
        )
        self.seconds = Histogram(
            "streams_action_call_seconds",
            "Time from a call's start (before any wait for its endpoint) to its end, retries "
            "included.",
            ["action", "endpoint"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.retries = Counter(
            "streams_action_retries",
            "Tries made after a call's first one.",
            ["action", "endpoint"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "streams_action_queue_depth",
            "Calls waiting for their endpoint: for a throttle turn or a concurrency slot.",
            ["endpoint"],
            registry=self.registry,
        )
        self.discarded = Counter(
            "streams_action_discarded",
            "Calls discarded by an endpoint's capping rule.",
            ["endpoint"],
            registry=self.registry,
        )
        self.memberships = Counter(
            "streams_dispatcher_memberships",
            "Membership events read, by outcome: handled (every call ended), no_actions (its "
            "campaign lists none here), malformed (not a membership event), failed (an "
            "unexpected error, logged; skipped).",
            ["outcome"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "streams_dispatcher_memberships_in_flight",
            "Memberships whose calls have not all ended (their offsets not yet committable).",
            registry=self.registry,
        )
        self.rules_info = Gauge(
            "streams_rules_info",
            "The rules in force (value 1).",
            ["rules_version"],
            registry=self.registry,
        )

    def for_call(self, action: str, endpoint: str) -> CallMetrics:
        """The children of one (action, endpoint), made once: `labels()` costs more than
        the rest of a call's bookkeeping."""
        key = (action, endpoint)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = CallMetrics(
                outcomes={},
                seconds=self.seconds.labels(action, endpoint),
                retries=self.retries.labels(action, endpoint),
                queue_depth=self.queue_depth.labels(endpoint),
                discarded=self.discarded.labels(endpoint),
                parent=self.calls,
                action=action,
                endpoint=endpoint,
            )
        return found

    def render(self) -> bytes:
        return generate_latest(self.registry)
