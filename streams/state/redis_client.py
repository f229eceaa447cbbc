"""Clients for the per-lead state: one Redis, or a Redis Cluster reached through a seed node.

`STREAMS_REDIS_CLUSTER=true` makes `STREAMS_REDIS_URL` a seed node: redis-py's cluster
client asks it for the slot map and talks to every master itself. The store's keys are
hash-tagged by lead (`<app_id>:lead:{<lead_id>}`), so every command the store sends names
one slot: a load pipeline and a save pipeline are split by node and sent to the nodes at
once; each lead's compare-and-set script runs on the master of its slot.

What a failover does, and what handles it:
- a master dies: commands to it fail with connection errors; the cluster client resends
  a pipeline (`CLUSTER_RETRIES`, re-reading the slot map each time) and a command that
  meets MOVED/ASK is resent to the node named; a save still failing makes the worker exit
  1 and its batch is redelivered (the script makes a resent save idempotent). A reply lost
  with its connection comes back as an error in a save's pipeline (it is not resent): the
  batch fails, and is redelivered;
- the promoted replica has no script cache (SCRIPT LOAD is not replicated): the store's
  NOSCRIPT path loads the script on every master (`SCRIPT LOAD` goes to all primaries)
  and resends only those leads;
- a write acknowledged by a master but not yet copied to its replica is lost when that
  replica takes over (replication is asynchronous). `queue_replica_waits` closes the gap:
  the save's pipeline ends with a WAIT per master written to, and the save fails unless
  each confirms `STREAMS_REDIS_WAIT_REPLICAS` replicas, so no batch's events are sent nor
  offsets committed before its state is on a replica. A master without a replica in sync
  then fails every batch that touches it (the worker exits 1, the batch is redelivered)
  until one is back: durability before availability, by choice of that setting.

`wait_for_redis` is the start-time check: a bounded wait, then one clear line for an
unreachable server, a replica given as the single Redis, a node whose cluster mode is not
the one asked, or a cluster whose state is not ok.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any, Final, TypeAlias

import hiredis
import redis
import redis.cluster
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry
from redis.utils import HIREDIS_AVAILABLE

log = logging.getLogger(__name__)

StateClient: TypeAlias = Redis | RedisCluster
"""What the store talks to: `redis_client` builds one or the other from the settings."""

CLUSTER_RETRIES: Final = 20
"""Times the cluster client resends a command or pipeline that met a connection error,
CLUSTERDOWN or TRYAGAIN, re-reading the slot map each time (about 0.25 s apart for a
pipeline): 5 s or more. A failover that ends sooner is ridden out (measured: 3.5 s with
cluster-node-timeout 1.5 s, no worker exit); a longer one fails the batch, the worker
exits 1 and the batch is redelivered."""


class RedisUnavailable(RuntimeError):
    """Redis did not answer within the allowed time, or is not what the settings say."""


class ReplicationTimeout(RuntimeError):
    """A master did not confirm that its replicas hold the batch's writes in time."""


def redis_client(url: str, *, cluster: bool = False) -> StateClient:
    """A client for the store: bytes replies (the state is JSON bytes), bounded waits so a
    dead server surfaces as an error instead of a hung worker, and a PING before reusing a
    connection idle for 30 s (proxies and load balancers drop idle connections).

    `cluster`: `url` is a seed node of a Redis Cluster (redis-py's cluster client, which
    discovers the other nodes). Single: redis-py's default retry (exponential backoff, up
    to 10 retries) rides out a short outage."""
    if cluster:
        retry = Retry(ExponentialWithJitterBackoff(base=0.1, cap=1.0), CLUSTER_RETRIES)
        cluster_client: RedisCluster = RedisCluster.from_url(
            url,
            retry=retry,
            decode_responses=False,
            socket_connect_timeout=5.0,
            socket_timeout=10.0,
            socket_keepalive=True,
            health_check_interval=30,
        )
        return cluster_client
    client: Redis = Redis.from_url(
        url,
        decode_responses=False,
        socket_connect_timeout=5.0,
        socket_timeout=10.0,
        socket_keepalive=True,
        health_check_interval=30,
    )
    pool = client.connection_pool
    pool.connection_class = hiredis_packing(pool.connection_class)
    return client


def hiredis_packing(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    """`connection_class` (the one redis-py chose for the URL's scheme: TCP, TLS or a Unix
    socket) packing its commands with hiredis (C), as redis-py's own synchronous
    connections do when hiredis is installed (`redis.connection.HiredisRespSerializer`);
    its asyncio connections pack in Python, argument by argument, which took 4-8% of the
    worker's busy samples at 15,000 activities/s (py-spy; a batch's save is an EVALSHA per
    256 leads, six arguments each: 12 ms of packing per 2,048 leads, 2.5 ms with hiredis,
    measured alone). Same bytes on the wire (tests/unit/test_redis_packing.py holds the two
    packers to each other); whatever hiredis refuses (a bool, None, a bytearray) and a
    first argument with a space in it ("CONFIG GET") go to redis-py's own packer, which
    packs or refuses them as ever (`DataError`). Without hiredis, `connection_class`."""
    if not HIREDIS_AVAILABLE or issubclass(connection_class, _HiredisPacking):
        return connection_class
    return type(
        f"HiredisPacking{connection_class.__name__}", (_HiredisPacking, connection_class), {}
    )


class _HiredisPacking(AbstractConnection):
    """The `pack_command` of `hiredis_packing` (mixed in before the scheme's class)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        head = args[0]
        if (type(head) is str and " " not in head) or (type(head) is bytes and b" " not in head):
            try:
                return [hiredis.pack_command(args)]
            except TypeError:
                pass
        return super().pack_command(*args)


def queue_replica_waits(
    pipe: Any, client: StateClient, keys: Iterable[bytes], replicas: int, timeout_ms: int
) -> list[str]:
    """Append to `pipe`, after the writes, one `WAIT replicas timeout_ms` per master that
    holds one of `keys`, and return those masters' names in the order of the WAITs.

    WAIT counts what was written on its own connection, which is why it rides in the
    save's pipeline: a pipeline sends each node's commands, in order, on one connection,
    so each WAIT follows that node's writes. Nothing is queued when `replicas` is 0."""
    if replicas <= 0:
        return []
    if isinstance(client, RedisCluster):
        nodes = {}
        for key in keys:
            node = client.get_node_from_key(key)  # type: ignore[arg-type] # bytes keys hash alike
            if node is not None:
                nodes[node.name] = node
        for node in nodes.values():
            pipe.execute_command("WAIT", replicas, timeout_ms, target_nodes=node)
        return list(nodes)
    pipe.execute_command("WAIT", replicas, timeout_ms)
    return ["the server"]


def check_replica_acks(masters: Sequence[str], acks: Sequence[Any], replicas: int) -> None:
    """`ReplicationTimeout` naming the masters whose WAIT got fewer than `replicas`."""
    short = [
        f"{name} ({ack if isinstance(ack, Exception) else int(ack)})"
        for name, ack in zip(masters, acks, strict=True)
        if isinstance(ack, Exception) or int(ack) < replicas
    ]
    if short:
        raise ReplicationTimeout(
            f"Redis master(s) did not confirm that {replicas} replica(s) hold the batch's "
            f"writes: {', '.join(short)} (STREAMS_REDIS_WAIT_REPLICAS)"
        )


def _describe(url: str, cluster: bool, connect_timeout: float) -> str | None:
    """None if the server is what the settings say and ready; else why not. Raises
    `redis.RedisError` when it cannot be reached; `_Mismatch` when waiting cannot help."""
    client = redis.Redis.from_url(
        url, socket_connect_timeout=connect_timeout, socket_timeout=connect_timeout
    )
    try:
        info = client.info()
        enabled = int(info.get("cluster_enabled", 0)) == 1
        seed_state = _cluster_state(client) if enabled and cluster else "ok"
    finally:
        client.close()
    if cluster and not enabled:
        raise _Mismatch(
            f"Redis at {url} is not in cluster mode, but STREAMS_REDIS_CLUSTER=true: point "
            "STREAMS_REDIS_URL at a node of the cluster, or set STREAMS_REDIS_CLUSTER=false"
        )
    if enabled and not cluster:
        raise _Mismatch(
            f"Redis at {url} is a Redis Cluster node: set STREAMS_REDIS_CLUSTER=true (the "
            "URL is then a seed node), or point STREAMS_REDIS_URL at a standalone Redis"
        )
    if not cluster:
        if info.get("role") != "master":
            master = f"{info.get('master_host')}:{info.get('master_port')}"
            return f"is a read-only replica (of {master}); point STREAMS_REDIS_URL at the master"
        return None
    if seed_state != "ok":
        return f"cluster state is {seed_state} (says the seed node)"
    try:
        probe = redis.cluster.RedisCluster.from_url(
            url, socket_connect_timeout=connect_timeout, socket_timeout=connect_timeout
        )
    except (redis.RedisError, OSError) as exc:
        return f"a node of the cluster is not reachable: {exc}"
    try:
        bad = []
        for node in probe.get_nodes():  # type: ignore[no-untyped-call] # untyped in redis-py
            try:
                answer = probe.cluster_info(target_nodes=node)
            except (redis.RedisError, OSError) as exc:
                bad.append(f"{node.name} is not reachable ({exc})")
                continue
            state = answer.get("cluster_state") if isinstance(answer, dict) else None
            if state != "ok":
                bad.append(f"{node.name} says {state}")
    finally:
        probe.close()
    if bad:
        return f"cluster state is not ok ({'; '.join(bad)})"
    return None


def _cluster_state(client: redis.Redis) -> str:
    """`cluster_state` of CLUSTER INFO on one node (`ok` or `fail`)."""
    reply = client.execute_command("CLUSTER INFO")  # type: ignore[no-untyped-call] # untyped in redis-py
    if isinstance(reply, dict):
        return str(reply.get("cluster_state", "?"))
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    fields = dict(line.split(":", 1) for line in text.split() if ":" in line)
    return fields.get("cluster_state", "?")


class _Mismatch(Exception):
    """A server that waiting will not change (the wrong cluster mode)."""


def wait_for_redis(url: str, timeout: float, *, cluster: bool = False, retry: float = 2.0) -> None:
    """Return once Redis answers and is what the settings say (a master, or a healthy
    cluster when `cluster`); one log line per failed try, and `RedisUnavailable` (one
    line saying why) after `timeout` seconds, or at once for a cluster-mode mismatch."""
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        attempt += 1
        left = deadline - time.monotonic()
        unreachable = False
        try:
            problem = _describe(url, cluster, max(0.5, min(2.0, left)))
        except _Mismatch as exc:
            raise RedisUnavailable(str(exc)) from None
        except (redis.RedisError, OSError) as exc:
            problem, unreachable = f"not reachable: {exc}", True
        if problem is None:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            what = "Redis Cluster" if cluster else "Redis"
            if unreachable:
                raise RedisUnavailable(
                    f"{what} at {url} did not answer within {timeout:.0f} s: "
                    f"{problem.removeprefix('not reachable: ')}"
                ) from None
            raise RedisUnavailable(
                f"{what} at {url} not usable after {timeout:.0f} s: {problem}"
            ) from None
        log.warning(
            "Redis at %s %s (try %d); retrying for %.0f s more", url, problem, attempt, left
        )
        time.sleep(min(retry, left))
