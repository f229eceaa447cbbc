"""Chaos on a three-node Kafka cluster (KRaft, default replication factor 3,
min.insync.replicas 2, the workers' producers acks=all): one broker SIGKILLed mid-stream
and started again ~5 s later. As in test_restarts.py, what comes out must equal one clean
backtest of the same lines (every eventId, no other, per-lead order, the same dead letters
and Redis state), and the workers must not stall: a worker that cannot get past a batch
exits and is restarted by the supervisor, and the stream completes in bounded time."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from streams.devstack.kafka import KafkaBroker, KafkaCluster
from streams.devstack.process import ServiceError
from streams.devstack.redis import RedisServer
from tests.chaos.test_restarts import (
    BATCH_FAILED,
    DEADLINE,
    PROGRESS_TIMEOUT,
    Run,
    Supervisor,
    report,
    started,
    unavailable,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DOWN = 5.0
"""Seconds between the SIGKILL and the start of the killed broker."""


@pytest.fixture
def cluster() -> Iterator[KafkaCluster]:
    cluster = KafkaCluster(3, replication=3, min_insync=2)
    try:
        cluster.start()
    except (ServiceError, OSError) as exc:
        cluster.close()
        unavailable("a three-node Kafka cluster", exc)
    try:
        yield cluster
    finally:
        cluster.close()


def _java_hash(text: str) -> int:
    """Java's String.hashCode, as Kafka uses it to place a group's offsets."""
    h = 0
    for char in text.encode("utf-16-be").decode("utf-16-be"):
        h = (31 * h + ord(char)) & 0xFFFFFFFF
    return h


def victim(cluster: KafkaCluster, which: str, settings: dict[str, str]) -> KafkaBroker:
    """The node leading partition 0 of the dead-letter topic (killing it moves a leadership
    that a produce waits on), or the consumer group's coordinator (the leader of the
    `__consumer_offsets` partition the group id hashes to: commits and heartbeats move)."""
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        if which == "dlq-leader":
            topic, partition = settings["STREAMS_TOPIC_DLQ"], 0
        else:
            (offsets,) = admin.describe_topics(["__consumer_offsets"])
            count = len(offsets["partitions"])
            topic = "__consumer_offsets"
            partition = (_java_hash(settings["STREAMS_APP_ID"]) & 0x7FFFFFFF) % count
        (described,) = admin.describe_topics([topic])
    finally:
        admin.close()
    replicas = {len(p["replica_nodes"]) for p in described["partitions"]}
    assert replicas == {3}, f"{topic} should have 3 replicas per partition: {described}"
    leader = next(
        p["leader_id"] for p in described["partitions"] if p["partition_index"] == partition
    )
    return next(node for node in cluster.nodes if node.node_id == leader)


class Progress:
    """The longest time the emitted count stood still while the stream was unfinished (the
    input is fed at a steady pace meanwhile, so any standstill is a stall)."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.count = 0
        self.since = time.monotonic()
        self.longest = 0.0

    def poll(self) -> None:
        self.run.poll()
        now = time.monotonic()
        count = self.run.emitted()
        if count != self.count:
            self.count, self.since = count, now
        elif count < len(self.run.expected.ids):
            self.longest = max(self.longest, now - self.since)


@pytest.mark.parametrize("which", ["dlq-leader", "group-coordinator"])
def test_a_broker_killed_mid_stream_loses_nothing_and_stalls_nothing(
    which: str, cluster: KafkaCluster, tmp_path: Path
) -> None:
    began = time.monotonic()
    server = started(RedisServer())
    run = Run.create(cluster.bootstrap, server.url, seed=46, paced=True)
    supervisor = Supervisor(run.settings, tmp_path)
    progress = Progress(run)
    try:
        supervisor.start("worker")
        reached = supervisor.run_until(run.fraction(0.25), PROGRESS_TIMEOUT, progress.poll)
        assert reached, f"a quarter of the events did not come out\n{supervisor.tails()}"
        at_failure = run.emitted()
        assert at_failure < len(run.expected.ids), "the stream ended before the failure"
        node = victim(cluster, which, run.settings)
        node.kill()
        supervisor.run_until(lambda: False, DOWN, progress.poll)
        node.start()
        done = supervisor.run_until(run.complete, DEADLINE, progress.poll)
        supervisor.stop_all()
        outputs = run.outputs()
        report(
            f"3-node cluster, {which} killed",
            outputs,
            supervisor,
            began,
            emitted_before_failure=at_failure,
            killed=f"node {node.node_id}",
            longest_stall_s=round(progress.longest, 1),
        )
        run.check(outputs, done, supervisor)
        session = float(run.settings["STREAMS_SESSION_TIMEOUT"])
        # A stall is bounded by the worker's wait for acknowledgements (3 session timeouts,
        # then it exits), the replacement's start and group join (a session timeout) and
        # some seconds of start-up on a shared machine; a failover alone takes the dead
        # broker's session (4 s here) and a new leader or coordinator.
        bound = 4 * session + 20
        assert progress.longest < bound, (
            f"the output stood still for {progress.longest:.0f} s (bound {bound:.0f} s); batch "
            f"failures logged: {supervisor.grep(BATCH_FAILED)}\n{supervisor.tails()}"
        )
    finally:
        supervisor.close()
        run.close()
        server.close()
        if os.environ.get("STREAMS_KEEP_LOGS"):
            print(f"logs in {tmp_path}")
