"""Chaos on a Redis Cluster: a master SIGKILLed mid-stream, its replica promoted, the
killed node started again (it rejoins as a replica). With `STREAMS_REDIS_WAIT_REPLICAS=1`
no batch's events go out before its state is on a replica, so the promotion loses
nothing the workers acknowledged. Checked as tests/chaos/test_restarts.py checks a Redis
restart (`Run.check`: every expected eventId and no other, per-lead order, dead letters,
the final state equal to the backtest's), plus: no `once` campaign has two memberships of
one lead."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import redis.cluster

from streams.devstack.kafka import KafkaBroker
from streams.devstack.redis_cluster import RedisClusterStack
from streams.engine.compiler import load_plan
from streams.engine.leadstate import LeadState
from streams.state.redis_client import redis_client
from streams.state.redis_store import RedisStore
from tests.chaos import test_restarts
from tests.chaos.test_restarts import (
    DEADLINE,
    PROGRESS_TIMEOUT,
    RULES,
    Run,
    Supervisor,
    report,
    started,
    unavailable,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def cluster_states(seed_url: str, app_id: str) -> dict[int, LeadState]:
    """Every lead the app id holds on any master, loaded through the store."""
    scanner = redis.cluster.RedisCluster.from_url(seed_url)
    try:
        prefix = f"{app_id}:lead:"
        keys = scanner.scan_iter(match=f"{prefix}*", count=1000, target_nodes=scanner.PRIMARIES)
        ids = [int(key.decode().removeprefix(prefix).strip("{}")) for key in keys]
    finally:
        scanner.close()

    async def load() -> dict[int, LeadState]:
        client = redis_client(seed_url, cluster=True)
        try:
            return await RedisStore(client, app_id, ttl_ms=0).load(ids)
        finally:
            await client.aclose()

    return asyncio.run(load())


def test_a_master_killed_mid_stream_loses_nothing_and_doubles_no_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    began = time.monotonic()
    monkeypatch.setattr(test_restarts, "stored_states", cluster_states)
    broker = started(KafkaBroker())
    cluster = RedisClusterStack(node_timeout_ms=1500)
    try:
        cluster.start()
    except Exception as exc:
        cluster.close()
        broker.close()
        unavailable("Redis Cluster", exc)
    run: Run | None = None
    supervisor: Supervisor | None = None
    try:
        run = Run.create(broker.bootstrap, cluster.url, seed=46, paced=True)
        run.settings["STREAMS_REDIS_CLUSTER"] = "true"
        run.settings["STREAMS_REDIS_WAIT_REPLICAS"] = "1"
        supervisor = Supervisor(run.settings, tmp_path)
        supervisor.start("worker")
        reached = supervisor.run_until(run.fraction(0.25), PROGRESS_TIMEOUT, run.poll)
        assert reached, f"a quarter of the events did not come out\n{supervisor.tails()}"
        at_failure = run.emitted()
        assert at_failure < len(run.expected.ids), "the stream ended before the failure"

        victim = cluster.masters()[0]
        victim.kill()
        failover = time.monotonic()
        supervisor.run_until(lambda: _promoted(cluster), 60, run.poll)
        failover = time.monotonic() - failover
        victim.start()  # rejoins as the replica of the node that took over

        done = supervisor.run_until(run.complete, DEADLINE, run.poll)
        supervisor.stop_all()
        outputs = run.outputs()
        report(
            "redis cluster master killed",
            outputs,
            supervisor,
            began,
            emitted_before_failure=at_failure,
            failover_s=round(failover, 1),
        )
        run.check(outputs, done, supervisor)

        once = {c.id for c in load_plan(RULES).campaigns if c.qualification == "once"}
        assert once, "the sample rules have a once campaign"
        got, want = once_memberships(outputs[0], once), once_memberships(run.expected.events, once)
        doubled = {k: v for k, v in got.items() if len(v) > len(want.get(k, ()))}
        assert not doubled, f"once campaigns with more memberships than the backtest: {doubled}"
        assert got == want
    finally:
        if supervisor is not None:
            supervisor.close()
        if run is not None:
            run.close()
        cluster.close()
        broker.close()


def once_memberships(
    events: list[dict[str, Any]], once: set[int]
) -> dict[tuple[int, int], set[str]]:
    """(campaign, lead) -> its distinct membership eventIds, for the `once` campaigns (a
    lead may join one again only after a Delete Lead erased its memberships)."""
    memberships: dict[tuple[int, int], set[str]] = defaultdict(set)
    for event in events:
        if event["campaignId"] in once:
            memberships[(event["campaignId"], event["leadId"])].add(event["eventId"])
    return dict(memberships)


def _promoted(cluster: RedisClusterStack) -> bool:
    """Three masters again and the cluster ok on every live node."""
    try:
        cluster.wait_ok(0)
    except Exception:
        return False
    return True
