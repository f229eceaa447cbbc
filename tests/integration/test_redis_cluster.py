"""The state on a real Redis Cluster (three masters, one replica each, `redis-cli --cluster
create`): what only a cluster can do to the store (a script cache missing on one master,
replicas that must confirm writes, a master killed and its replica promoted), the worker
against the backtest on a cluster, and the start-time check's one-line refusals.

The store contract suite itself runs on the cluster too (test_store_contract.py,
`redis-cluster`)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis
import redis.cluster

from streams.devstack.process import ServiceError, free_port
from streams.devstack.redis import RedisServer
from streams.devstack.redis_cluster import ClusterNode, RedisClusterStack
from streams.devstack.worker import WorkerProcess
from streams.engine.leadstate import LeadState
from streams.samples import sample_activities
from streams.state.redis_client import (
    RedisUnavailable,
    ReplicationTimeout,
    StateClient,
    redis_client,
    wait_for_redis,
)
from streams.state.redis_store import RedisStore
from tests.integration.streaming import (
    TopicReader,
    backtest,
    isolated_settings,
    lead_key,
    per_lead,
    produce,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
LEADS = list(range(1, 61))
"""Enough leads that every master holds some (their hash tags spread over the slots)."""


def fresh_app_id() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def state_for(lead_id: int, mark: str) -> LeadState:
    return LeadState(fields={"mark": mark, "lead": str(lead_id)}, max_ts=lead_id)


async def save_marks(client: StateClient, store: RedisStore, mark: str) -> None:
    states = await store.load(LEADS)
    for lead_id in LEADS:
        states[lead_id] = state_for(lead_id, mark)
    await store.save(states)


async def load_marks(url: str, app_id: str) -> dict[int, str]:
    client = redis_client(url, cluster=True)
    try:
        states = await RedisStore(client, app_id, 0).load(LEADS)
        return {lead: state.fields.get("mark", "") for lead, state in states.items()}
    finally:
        await client.aclose()


def master_of(cluster: RedisClusterStack, key: bytes) -> ClusterNode:
    """The node that is the master of `key`'s slot now."""
    client = redis.cluster.RedisCluster.from_url(cluster.url)
    try:
        node = client.get_node_from_key(key.decode())
    finally:
        client.close()
    return next(n for n in cluster.nodes if n.port == int(node.port))


def test_leads_spread_over_every_master(redis_cluster: RedisClusterStack) -> None:
    app_id = fresh_app_id()

    async def main() -> None:
        client = redis_client(redis_cluster.url, cluster=True)
        try:
            await save_marks(client, RedisStore(client, app_id, 600_000), "one")
        finally:
            await client.aclose()

    asyncio.run(main())
    holding = set()
    for node in redis_cluster.masters():
        client = redis.Redis(host="127.0.0.1", port=node.port)
        try:
            if any(True for _ in client.scan_iter(match=f"{app_id}:*")):
                holding.add(node.port)
        finally:
            client.close()
    assert len(holding) == 3, "the leads' keys should be on all three masters"
    assert asyncio.run(load_marks(redis_cluster.url, app_id)) == dict.fromkeys(LEADS, "one")


def test_a_master_without_the_script_gets_it_again(redis_cluster: RedisClusterStack) -> None:
    """What a promoted replica looks like to the store: a master with an empty script
    cache (SCRIPT LOAD is not replicated). The save reloads the script and resends."""
    app_id = fresh_app_id()

    async def main() -> None:
        client = redis_client(redis_cluster.url, cluster=True)
        try:
            store = RedisStore(client, app_id, 600_000)
            await save_marks(client, store, "before")
            victim = master_of(redis_cluster, store.key(LEADS[0]))
            flusher = redis.Redis(host="127.0.0.1", port=victim.port)
            try:
                flusher.script_flush()
            finally:
                flusher.close()
            await save_marks(client, store, "after")
        finally:
            await client.aclose()

    asyncio.run(main())
    assert asyncio.run(load_marks(redis_cluster.url, app_id)) == dict.fromkeys(LEADS, "after")


def test_saves_wait_for_the_replicas_asked(redis_cluster: RedisClusterStack) -> None:
    """With one replica per master, WAIT 1 is confirmed by every master written to; asking
    for two fails the save with one message naming each master that fell short."""
    app_id = fresh_app_id()

    async def main() -> None:
        client = redis_client(redis_cluster.url, cluster=True)
        try:
            await save_marks(client, RedisStore(client, app_id, 600_000, wait_replicas=1), "one")
            greedy = RedisStore(client, app_id, 600_000, wait_replicas=2, wait_timeout_ms=200)
            with pytest.raises(ReplicationTimeout) as raised:
                await save_marks(client, greedy, "two")
            assert raised.value.args[0].count("127.0.0.1:") == 3, raised.value
            assert "STREAMS_REDIS_WAIT_REPLICAS" in str(raised.value)
        finally:
            await client.aclose()

    asyncio.run(main())
    # The writes themselves went through on the masters (WAIT does not undo them).
    assert set(asyncio.run(load_marks(redis_cluster.url, app_id)).values()) == {"two"}


@pytest.fixture
def own_cluster() -> Iterator[RedisClusterStack]:
    """A cluster of the test's own, which it may break."""
    cluster = RedisClusterStack(node_timeout_ms=1500)
    try:
        cluster.start()
    except (ServiceError, OSError, subprocess.SubprocessError) as exc:
        cluster.close()
        pytest.skip(f"Redis Cluster unavailable: {exc}")
    try:
        yield cluster
    finally:
        cluster.close()


def test_a_master_killed_loses_no_confirmed_write(own_cluster: RedisClusterStack) -> None:
    """Saves confirmed by a replica (WAIT 1) survive SIGKILL of their master: the replica
    takes over, and the same client, after the failover, reads them and saves again
    (NOSCRIPT on the promoted replica, MOVED to it)."""
    app_id = fresh_app_id()
    client = redis_client(own_cluster.url, cluster=True)
    store = RedisStore(client, app_id, 0, wait_replicas=1)

    async def save(mark: str, deadline: float) -> int:
        """Save until it goes through; the number of failed tries."""
        failures = 0
        while True:
            try:
                await save_marks(client, store, mark)
                return failures
            except (redis.RedisError, ReplicationTimeout):
                failures += 1
                assert time.monotonic() < deadline, "the cluster did not recover"
                await asyncio.sleep(0.5)

    async def main() -> None:
        try:
            assert await save("before", time.monotonic() + 30) == 0
            victim = master_of(own_cluster, store.key(LEADS[0]))
            victim.kill()
            own_cluster.wait_ok(30)
            marks = await load_marks(own_cluster.url, app_id)
            assert marks == dict.fromkeys(LEADS, "before"), "a confirmed write was lost"
            # The promoted master has no replica until the killed node is back: WAIT 1
            # fails the saves touching it, then succeeds once it rejoined as a replica.
            victim.start()
            await save("after", time.monotonic() + 60)
        finally:
            await client.aclose()

    asyncio.run(main())
    assert asyncio.run(load_marks(own_cluster.url, app_id)) == dict.fromkeys(LEADS, "after")


# --- start-time checks: one clear line, a bounded wait -----------------------------------


def test_check_accepts_a_healthy_cluster_and_a_master(
    redis_cluster: RedisClusterStack, redis_url: str
) -> None:
    wait_for_redis(redis_cluster.url, 5, cluster=True)
    wait_for_redis(redis_url, 5)


def test_check_refuses_the_wrong_cluster_mode_at_once(
    redis_cluster: RedisClusterStack, redis_url: str
) -> None:
    started = time.monotonic()
    with pytest.raises(RedisUnavailable, match="is a Redis Cluster node: set STREAMS_REDIS_CL"):
        wait_for_redis(redis_cluster.url, 30)
    with pytest.raises(RedisUnavailable, match="is not in cluster mode, but STREAMS_REDIS_CL"):
        wait_for_redis(redis_url, 30, cluster=True)
    assert time.monotonic() - started < 10, "a mode mismatch is not worth waiting for"


def test_check_gives_up_on_a_replica_after_the_timeout(redis_server: RedisServer) -> None:
    replica = RedisServer().start()
    try:
        client = redis.Redis(host="127.0.0.1", port=replica.port)
        client.replicaof("127.0.0.1", redis_server.port)
        client.close()
        started = time.monotonic()
        with pytest.raises(RedisUnavailable) as raised:
            wait_for_redis(replica.url, 2, retry=0.5)
        assert 2 <= time.monotonic() - started < 10
        message = str(raised.value)
        assert "\n" not in message
        assert f"is a read-only replica (of 127.0.0.1:{redis_server.port})" in message
    finally:
        replica.close()


@pytest.mark.parametrize("cluster", [False, True])
def test_check_gives_up_on_an_unreachable_server(cluster: bool) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    with pytest.raises(RedisUnavailable, match="did not answer within 2 s: "):
        wait_for_redis(url, 2, cluster=cluster, retry=0.5)
    assert time.monotonic() - started < 10


def test_check_waits_out_a_cluster_that_is_not_ok(own_cluster: RedisClusterStack) -> None:
    """Two masters down: no majority to promote their replicas, the cluster stays failed;
    the check says so in one line once its time is up."""
    for node in own_cluster.masters()[:2]:
        node.kill()
    survivor = next(n for n in own_cluster.nodes if n.alive())
    deadline = time.monotonic() + 30
    while survivor.cluster_info().get("cluster_state") == "ok":
        assert time.monotonic() < deadline, "the cluster never noticed"
        time.sleep(0.2)
    with pytest.raises(RedisUnavailable) as raised:
        wait_for_redis(survivor.url, 3, cluster=True, retry=0.5)
    message = str(raised.value)
    assert "\n" not in message
    assert "Redis Cluster at" in message and "not usable after 3 s" in message


def test_the_worker_refuses_a_mode_mismatch_in_one_line(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    settings = isolated_settings(kafka_bootstrap, redis_url, RULES)
    settings["STREAMS_REDIS_CLUSTER"] = "true"
    done = subprocess.run(
        [sys.executable, "-m", "streams", "worker"],
        env={**_env(), **settings},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith(f"Redis at {redis_url} is not in cluster mode"), done.stderr
    assert "Traceback" not in done.stderr


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("STREAMS_")}


# --- the worker on a cluster ------------------------------------------------------------


def test_the_worker_on_a_cluster_emits_what_the_backtest_emits(
    kafka_bootstrap: str, redis_cluster: RedisClusterStack, tmp_path: Path
) -> None:
    lines = [orjson.dumps(a) for a in sample_activities(12_000, 300, 21)]
    expected = backtest(RULES, lines)
    assert len(expected.events) > 2000 and expected.rejected
    settings = isolated_settings(kafka_bootstrap, redis_cluster.url, RULES)
    settings["STREAMS_REDIS_CLUSTER"] = "true"
    settings["STREAMS_REDIS_WAIT_REPLICAS"] = "1"
    produce(kafka_bootstrap, settings["STREAMS_TOPIC_ACTIVITIES"], lines, lead_key)
    memberships = TopicReader(kafka_bootstrap, settings["STREAMS_TOPIC_MEMBERSHIPS"])
    dead = TopicReader(kafka_bootstrap, settings["STREAMS_TOPIC_DLQ"])
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        got = memberships.until(lambda v: len(v) >= len(expected.events), 240, worker.alive)
        letters = dead.until(lambda v: len(v) >= len(expected.rejected), 30, worker.alive)
    assert {e["eventId"]: e for e in got} == {e["eventId"]: e for e in expected.events}, (
        worker.log_tail()
    )
    assert len(got) == len(expected.events)
    assert per_lead(got) == per_lead(expected.events)
    assert Counter(d["error"]["code"] for d in letters) == Counter(
        d["error"]["code"] for d in expected.rejected
    )
    stored = asyncio.run(_stored(redis_cluster.url, settings["STREAMS_APP_ID"], expected.leads))
    assert _differences(stored, expected.leads) == []


async def _stored(url: str, app_id: str, leads: dict[int, LeadState]) -> dict[int, LeadState]:
    client = redis_client(url, cluster=True)
    try:
        return await RedisStore(client, app_id, 0).load(list(leads))
    finally:
        await client.aclose()


def _differences(stored: dict[int, LeadState], want: dict[int, LeadState]) -> list[int]:
    return [
        lead
        for lead, state in want.items()
        if (stored[lead].history, stored[lead].fields, stored[lead].runs, stored[lead].max_ts)
        != (state.history, state.fields, state.runs, state.max_ts)
        or set(stored[lead].seen) != set(state.seen)
    ]


def test_a_standalone_redis_without_replicas_fails_a_save_that_waits_for_one(
    redis_server: RedisServer,
) -> None:
    """The same WAIT on a single Redis: no replica, so the save is refused, named."""
    app_id = fresh_app_id()

    async def main() -> None:
        client = redis_client(redis_server.url)
        try:
            store = RedisStore(client, app_id, 600_000, wait_replicas=1, wait_timeout_ms=100)
            with pytest.raises(ReplicationTimeout, match=r"the server \(0\)"):
                await save_marks(client, store, "one")
            await save_marks(client, RedisStore(client, app_id, 600_000), "two")
        finally:
            await client.aclose()

    asyncio.run(main())
