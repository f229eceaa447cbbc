"""Readiness (streams/runtime/readiness.py): what `/ready` waits for, in order, that it stays
ready through a later rebalance, and the Faust signals and flag it follows, which fail
loudly here if an upgrade of faust-streaming changes them."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

import faust
from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import ConsumerRebalanceListener
from faust.types import TP
from prometheus_client import CollectorRegistry

from streams.runtime.faust_app import create_app
from streams.runtime.readiness import Readiness


def _value(registry: CollectorRegistry, name: str) -> float | None:
    return registry.get_sample_value(name)


def test_ready_waits_for_the_join_the_rebalance_and_the_warm_up_then_stays_ready() -> None:
    registry = CollectorRegistry()
    readiness = Readiness("activities", registry)
    assert readiness.view(False, False) == ({"ready": False, "waiting": "group join"}, 503)
    readiness.warmed()
    assert readiness.view(False, False)[0]["waiting"] == "group join"
    readiness.revoked()
    readiness.assign({TP("activities", 2), TP("activities", 0), TP("other", 1)})
    assert _value(registry, "streams_assigned_partitions") == 2
    assert _value(registry, "streams_rebalancing") == 1
    # Assigned, but Faust has not finished the rebalance (seeks, flow resumed).
    assert readiness.view(True, False)[0]["waiting"] == "rebalance"
    readiness.complete()
    assert readiness.view(True, False)[0]["waiting"] == "rebalance"
    assert _value(registry, "streams_ready") == 0
    assert readiness.view(False, False) == (
        {"ready": True, "rebalancing": False, "partitions": [0, 2]},
        200,
    )
    assert _value(registry, "streams_ready") == 1
    assert _value(registry, "streams_rebalances_total") == 1
    assert _value(registry, "streams_rebalance_seconds_count") == 1
    # A later rebalance: still ready, and it says so.
    readiness.revoked()
    assert readiness.view(True, False) == (
        {"ready": True, "rebalancing": True, "partitions": [0, 2]},
        200,
    )
    readiness.assign(set())  # more workers than partitions: an empty assignment
    readiness.complete()
    assert readiness.view(False, False) == (
        {"ready": True, "rebalancing": False, "partitions": []},
        200,
    )
    assert _value(registry, "streams_assigned_partitions") == 0
    # Stopping: out of service.
    assert readiness.view(False, True) == ({"ready": False, "waiting": "stop"}, 503)


def test_the_warm_up_is_waited_for_after_the_rebalance() -> None:
    readiness = Readiness("activities", CollectorRegistry())
    readiness.assign(set())
    readiness.complete()
    assert readiness.view(False, False)[0] == {"ready": False, "waiting": "warm-up"}
    readiness.warmed()
    assert readiness.view(False, False)[1] == 200


def test_readiness_follows_the_apps_rebalance_signals(tmp_path: Path) -> None:
    """`connect` receives what Faust sends: the revocation, the assignment (its TPs as the
    signal's argument) and the completion."""
    app = create_app("t", "localhost:1", datadir=tmp_path, batch_drain=True)
    registry = CollectorRegistry()
    readiness = Readiness("activities", registry)
    readiness.connect(app)
    readiness.warmed()

    async def rebalance() -> None:
        await app.on_partitions_revoked.send(set())
        await app.on_partitions_assigned.send({TP("activities", 1)})
        await app.on_rebalance_complete.send()

    asyncio.run(rebalance())
    assert readiness.assigned == frozenset({1})
    assert readiness.view(app.rebalancing, False)[1] == 200


def test_fausts_rebalance_sends_the_signals_in_the_order_readiness_expects() -> None:
    """aiokafka's revocation callback sets `app.rebalancing` first (synchronously);
    `_on_partitions_assigned` sends `on_partitions_assigned` with the assignment; the
    recovery (with no tables: `_resume_streams`) sends `on_rebalance_complete`, then
    seeks, resumes the flow and only then clears `rebalancing` (`on_rebalance_end`)."""
    revoked = inspect.getsource(ConsumerRebalanceListener.on_partitions_revoked)
    assert "thread.app.on_rebalance_start()" in revoked
    start = inspect.getsource(faust.App.on_rebalance_start)
    assert "self.rebalancing = True" in start
    end = inspect.getsource(faust.App.on_rebalance_end)
    assert "self.rebalancing = False" in end
    assigned = inspect.getsource(faust.App._on_partitions_assigned)
    assert "self.on_partitions_assigned.send)(assigned)" in assigned
    for resume in (Recovery._resume_streams, Recovery.on_recovery_completed):
        source = inspect.getsource(resume)
        complete = source.index("on_rebalance_complete.send()")
        seek = source.index("perform_seek()")
        flow = source.index("consumer.resume_flow()")
        ended = source.index("on_rebalance_end()")
        assert complete < seek < flow < ended, resume.__qualname__
    assert "rebalancing" in faust.types.AppT.__annotations__


def test_the_worker_serves_readiness_from_the_rebalance_signals(tmp_path: Path) -> None:
    from streams.engine.compiler import load_plan
    from streams.runtime.worker import build_app
    from streams.settings import WorkerSettings

    root = Path(__file__).resolve().parents[2]
    settings = WorkerSettings(rules_dir=root / "rules", broker="localhost:1")
    app = build_app(settings, load_plan(settings.rules_dir), tmp_path)

    def names(signal: Any) -> list[str]:
        return [getattr(r, "__name__", "") for r in signal.iter_receivers(app)]

    assert "readiness_revoked" in names(app.on_partitions_revoked)
    assert "readiness_assigned" in names(app.on_partitions_assigned)
    assert "readiness_complete" in names(app.on_rebalance_complete)
