"""When a worker or the dispatcher is ready (`/ready`), and what it says of its group
membership (/metrics). Written of the worker; the dispatcher (streams/actions/dispatcher.py)
is the same with its own topic, registry and warm-up (its HTTP session and handler).

Ready means the worker can consume: its rules are loaded (the plan is compiled before the
app is built), its warm-up is done (`worker.warm_up`: the save script and the producer's
metadata), and it has joined its consumer group and received an assignment, possibly
empty (more workers than partitions is normal), with Faust's rebalance finished (flow
resumed, seeks done). Until then `/ready` answers 503 with what it waits for:
`{"ready": false, "waiting": "group join" | "rebalance" | "warm-up"}`.

Order of Faust's rebalance, and what this module reads of it (Faust's public signals and
its documented `AppT.rebalancing` flag; checked by tests/unit/test_readiness.py):
`app.on_rebalance_start()` sets `rebalancing` (called from aiokafka's revocation callback,
also before a first join), `app.on_partitions_revoked` is sent, then
`app.on_partitions_assigned` (with the new assignment), then `app.on_rebalance_complete`
(the table recovery's end; our apps have no tables, so it follows at once), then Faust
seeks to the committed offsets, resumes the flow and clears `rebalancing`
(`on_rebalance_end`).

Once ready, a worker stays ready through later rebalances (a worker joining or leaving
the group, a rolling update): every member pauses during an eager rebalance, so a probe
that failed then would take every healthy worker out of service at once, and a rollout
whose readiness gate waits on the other pods would stall on the rebalance it causes.
During one, `/ready` answers 200 with `"rebalancing": true`; a worker whose rebalance
never ends is Faust's and Kafka's to resolve (the callback is bounded by the session
timeout, past which Faust crashes the worker), and liveness is `/health`. A worker that
is stopping (SIGTERM) answers 503 `"waiting": "stop"`, so that nothing new is routed to
it while it leaves.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REBALANCE_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Readiness:
    """A worker's (or the dispatcher's) readiness (module doc) and its membership metrics
    in `registry`, fed by Faust's rebalance signals (`connect`) and the agent (`warmed`)."""

    def __init__(self, topic: str, registry: CollectorRegistry) -> None:
        self.topic = topic
        self.assigned: frozenset[int] | None = None
        """The partitions of `topic` (the one consumed) assigned to this process; None
        before its first assignment."""
        self.completed = 0
        """Rebalances finished (`on_rebalance_complete`), the first join's included."""
        self.warm = False
        self.ready = False
        """Latched: true from the first moment every condition held."""
        self._revoked_at: float | None = None
        self.assigned_gauge = Gauge(
            "streams_assigned_partitions",
            "Partitions of the consumed topic (activities; memberships for the dispatcher) "
            "assigned to this process (0 before it joined its group, and when the group has "
            "more members than partitions).",
            registry=registry,
        )
        self.ready_gauge = Gauge(
            "streams_ready",
            "1 once the process is ready (/ready answers 200): group joined, assignment "
            "received, warm-up done; it stays 1 through later rebalances.",
            registry=registry,
        )
        self.rebalancing_gauge = Gauge(
            "streams_rebalancing",
            "1 while the process is in a rebalance (its partitions revoked, the new "
            "assignment not yet in force).",
            registry=registry,
        )
        self.rebalances = Counter(
            "streams_rebalances",
            "Rebalances this process went through, its first join included.",
            registry=registry,
        )
        self.rebalance_seconds = Histogram(
            "streams_rebalance_seconds",
            "Per rebalance, time from the revocation of this process's partitions to the "
            "new assignment's completion (its consumption paused meanwhile).",
            buckets=REBALANCE_BUCKETS,
            registry=registry,
        )

    def connect(self, app: Any) -> None:
        """Follow `app`'s rebalances: Faust's `on_partitions_revoked`,
        `on_partitions_assigned` and `on_rebalance_complete` signals."""

        @app.on_partitions_revoked.connect  # type: ignore[untyped-decorator]  # faust: untyped
        async def readiness_revoked(sender: Any, /, *_: Any, **__: Any) -> None:
            self.revoked()

        @app.on_partitions_assigned.connect  # type: ignore[untyped-decorator]  # faust: untyped
        async def readiness_assigned(sender: Any, assigned: Any, /, *_: Any, **__: Any) -> None:
            self.assign(assigned)

        @app.on_rebalance_complete.connect  # type: ignore[untyped-decorator]  # faust: untyped
        async def readiness_complete(sender: Any, /, *_: Any, **__: Any) -> None:
            self.complete()

    def revoked(self) -> None:
        self._revoked_at = time.monotonic()
        self.rebalancing_gauge.set(1)

    def assign(self, assigned: Collection[Any]) -> None:
        """The new assignment (Faust `TP`s of every topic the worker consumes)."""
        self.assigned = frozenset(tp.partition for tp in assigned if tp.topic == self.topic)
        self.assigned_gauge.set(len(self.assigned))

    def complete(self) -> None:
        self.completed += 1
        self.rebalances.inc()
        self.rebalancing_gauge.set(0)
        if self._revoked_at is not None:
            self.rebalance_seconds.observe(time.monotonic() - self._revoked_at)
            self._revoked_at = None

    def warmed(self) -> None:
        """The agent's warm-up is done (the worker's `warm_up`; the dispatcher's session
        and handler)."""
        self.warm = True

    def waiting(self, rebalancing: bool, stopping: bool) -> str | None:
        """What the worker waits for before it is ready (None: ready), given Faust's
        `app.rebalancing` and whether it is stopping; latches readiness."""
        if stopping:
            return "stop"
        if self.ready:
            return None
        if self.assigned is None:
            return "group join"
        if not self.completed or rebalancing:
            return "rebalance"
        if not self.warm:
            return "warm-up"
        self.ready = True
        self.ready_gauge.set(1)
        return None

    def view(self, rebalancing: bool, stopping: bool) -> tuple[dict[str, Any], int]:
        """The body and status of `/ready`."""
        waiting = self.waiting(rebalancing, stopping)
        if waiting is not None:
            return {"ready": False, "waiting": waiting}, 503
        assigned = sorted(self.assigned or ())
        return {"ready": True, "rebalancing": rebalancing, "partitions": assigned}, 200
