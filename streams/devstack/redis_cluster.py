"""A throwaway Redis Cluster on loopback: three masters with one replica each, in cluster
mode, joined by `redis-cli --cluster create`, for the integration tests and benchmarks.

Invariants: every node keeps its port, its data directory and its node id for the
cluster's whole life, so a node that is killed and started again rejoins as what it is
now (a master killed long enough comes back as its promoted replica's replica). A node's
cluster bus listens on its port + 10000, so both ports are checked free when it is
chosen. `close()` stops every node and removes the files.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

import redis

from streams.devstack.process import ServiceError, free_port, port_open
from streams.devstack.redis import HOST, RedisServer

BUS_OFFSET = 10_000
"""Redis Cluster's bus port is the node's port + 10000."""
MASTERS = 3
REPLICAS_PER_MASTER = 1


def cluster_port() -> int:
    """A free port whose bus port (+10000) is free and valid too."""
    for _ in range(200):
        port = free_port()
        if port + BUS_OFFSET < 65536 and not port_open(HOST, port + BUS_OFFSET):
            return port
    raise ServiceError("no free port pair (port, port + 10000) found for a cluster node")


def _online_replicas(replication: dict[str, object]) -> int:
    """Replicas of a master that finished their first sync (state `online`)."""
    return sum(
        1
        for key, value in replication.items()
        if key.startswith("slave") and isinstance(value, dict) and value.get("state") == "online"
    )


class ClusterNode(RedisServer):
    """One `redis-server --cluster-enabled yes`; AOF on (appendfsync everysec), as the
    single-node fixture."""

    kind = "redis-node"

    def __init__(self, workdir: Path, node_timeout_ms: int) -> None:
        super().__init__(cluster_port(), workdir)
        self.node_timeout_ms = node_timeout_ms

    def argv(self, binary: str) -> list[str]:
        return [
            *super().argv(binary),
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            str(self.node_timeout_ms),
            # A replica's first sync starts at once rather than after 5 s.
            "--repl-diskless-sync-delay",
            "0",
        ]

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def info(self, section: str) -> dict[str, object]:
        client = redis.Redis(host=HOST, port=self.port, socket_timeout=2, socket_connect_timeout=2)
        try:
            return dict(client.info(section))
        finally:
            client.close()

    def cluster_info(self) -> dict[str, str]:
        client = redis.Redis(host=HOST, port=self.port, socket_timeout=2, socket_connect_timeout=2)
        try:
            text = client.execute_command("CLUSTER INFO")  # type: ignore[no-untyped-call] # redis-py leaves it untyped
        finally:
            client.close()
        if isinstance(text, bytes):
            text = text.decode()
        if isinstance(text, dict):
            return {str(k): str(v) for k, v in text.items()}
        return dict(line.split(":", 1) for line in str(text).split() if ":" in line)


class RedisClusterStack:
    """Six nodes (three masters, one replica each) on free ports; `url` is a seed node.

    `node_timeout_ms` is Redis' cluster-node-timeout: how long a master may be silent
    before its replica takes over (short here, so failover tests take seconds)."""

    def __init__(self, node_timeout_ms: int = 2000, start_timeout: float = 60.0) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="streams-redis-cluster-"))
        self.node_timeout_ms = node_timeout_ms
        self.start_timeout = start_timeout
        self.nodes = [
            ClusterNode(self.root / f"node-{n}", node_timeout_ms)
            for n in range(MASTERS * (1 + REPLICAS_PER_MASTER))
        ]

    @property
    def url(self) -> str:
        """A seed node's URL: the cluster client discovers the others from it."""
        return self.nodes[0].url

    def start(self) -> Self:
        for node in self.nodes:
            node.start()
        cli = shutil.which("redis-cli")
        if cli is None:
            raise ServiceError("redis-cli is not on PATH (it comes with redis-server)")
        create = [
            cli,
            "--cluster",
            "create",
            *(node.address for node in self.nodes),
            "--cluster-replicas",
            str(REPLICAS_PER_MASTER),
            "--cluster-yes",
        ]
        done = subprocess.run(
            create,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=self.start_timeout,
            check=False,
        )
        if done.returncode != 0:
            raise ServiceError(
                f"redis-cli --cluster create exited {done.returncode}:\n"
                f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            )
        self.wait_healthy(self.start_timeout)
        return self

    def masters(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.alive() and n.info("replication")["role"] == "master"]

    def replicas(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.alive() and n.info("replication")["role"] == "slave"]

    def healthy(self) -> bool:
        """Every live node sees the cluster ok, three masters, each with a replica in sync."""
        try:
            alive = [n for n in self.nodes if n.alive()]
            if any(n.cluster_info().get("cluster_state") != "ok" for n in alive):
                return False
            masters = self.masters()
            return len(masters) == MASTERS and all(
                _online_replicas(m.info("replication")) >= REPLICAS_PER_MASTER for m in masters
            )
        except redis.RedisError:
            return False

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if time.monotonic() > deadline:
                states = {}
                for n in self.nodes:
                    try:
                        states[n.address] = n.cluster_info().get("cluster_state", "?")
                    except redis.RedisError as exc:
                        states[n.address] = f"unreachable ({exc})"
                raise ServiceError(f"Redis cluster not healthy within {timeout:.0f} s: {states}")
            time.sleep(0.2)

    def wait_ok(self, timeout: float) -> None:
        """Until every live node says cluster_state:ok (a failover is over), without
        asking for a replica per master (the killed one may still be down)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                alive = [n for n in self.nodes if n.alive()]
                masters = self.masters()
                if len(masters) == MASTERS and all(
                    n.cluster_info().get("cluster_state") == "ok" for n in alive
                ):
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise ServiceError(f"Redis cluster not ok within {timeout:.0f} s")
            time.sleep(0.2)

    def close(self) -> None:
        for node in self.nodes:
            node.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()
