"""The hostile suite runs on the integration tests' real services (Kafka, Redis).

Poison records, corrupt state and hostile clients against real processes (workers, the
API, Apache Kafka, redis-server), asserting that nothing stops and nothing is lost. The
worker of the `test_worker_*` modules is one per session, `hostile_worker`; each module
uses leads of its own.

Its dead-letter topic refuses messages over `DLQ_MAX_MESSAGE_BYTES`, so that a dead letter
the broker refuses (issue 7, item 1) can be provoked with a record of a few hundred KB."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from streams.devstack.worker import WorkerProcess
from streams.samples import sample_activities
from tests.integration.conftest import kafka_bootstrap, redis_server, redis_url
from tests.integration.streaming import TopicReader, isolated_settings, lead_key

__all__ = ["kafka_bootstrap", "redis_server", "redis_url"]
"""The integration suite's service fixtures, for every hostile module (the API's too)."""

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
DLQ_MAX_MESSAGE_BYTES = 100_000


@dataclass
class Sent:
    """What a test produced: each line with the (partition, offset) it landed at."""

    lines: list[bytes]
    positions: list[tuple[int, int]]


def records_done(process: WorkerProcess) -> float:
    """Records a worker is done with, whatever their outcome (`streams_activities_total`)."""
    return sum(
        float(line.split()[1])
        for line in process.metrics().splitlines()
        if line.startswith("streams_activities_total{")
    )


@dataclass
class HostileWorker:
    """One worker process on topics and an app id of its own."""

    settings: dict[str, str]
    process: WorkerProcess
    memberships: TopicReader
    dead: TopicReader

    @property
    def bootstrap(self) -> str:
        return self.settings["STREAMS_BROKER"]

    def send(self, records: Iterable[tuple[bytes | None, bytes]]) -> Sent:
        """Produce (key, value) pairs to the activities topic, in order, and wait for each
        one's position. Accepts records up to the broker's default limit (1 MB)."""
        producer = KafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", linger_ms=5, max_request_size=1_100_000
        )
        try:
            topic = self.settings["STREAMS_TOPIC_ACTIVITIES"]
            pairs = list(records)
            futures = [producer.send(topic, key=key, value=value) for key, value in pairs]
            producer.flush(timeout=60)
            metas = [f.get(timeout=60) for f in futures]
        finally:
            producer.close()
        return Sent([v for _, v in pairs], [(m.partition, m.offset) for m in metas])

    def events_of(self, leads: set[int], count: int, timeout: float = 120) -> list[dict[str, Any]]:
        """The memberships of `leads` once there are at least `count` of them."""
        got = self.memberships.until(
            lambda v: sum(e["leadId"] in leads for e in v) >= count, timeout, self.process.alive
        )
        return [e for e in got if e["leadId"] in leads]

    def letters_of(self, sent: Sent, count: int, timeout: float = 120) -> list[dict[str, Any]]:
        """The dead letters of the records `sent`, once there are at least `count`."""
        positions = set(sent.positions)

        def mine(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [d for d in values if (d["partition"], d["offset"]) in positions]

        return mine(self.dead.until(lambda v: len(mine(v)) >= count, timeout, self.process.alive))

    def processed(self) -> float:
        return records_done(self.process)

    def wait_processed(self, count: float, timeout: float = 120) -> None:
        """Until `processed()` reaches `count`: every record sent is done with."""
        deadline = time.monotonic() + timeout
        while self.processed() < count and time.monotonic() < deadline:
            assert self.process.alive(), self.process.log_tail()
            time.sleep(0.3)
        assert self.processed() >= count, self.process.log_tail()

    def metric(self, name: str) -> float:
        for line in self.process.metrics().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0.0

    def assert_healthy(self) -> None:
        """Still running, never restarted, no batch failed."""
        assert self.process.alive(), self.process.log_tail()
        log = self.process.log_tail(10_000)
        assert "failed; exiting" not in log, log


def _limit_dlq_messages(bootstrap: str, topic: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    topic,
                    configs={"max.message.bytes": str(DLQ_MAX_MESSAGE_BYTES)},
                )
            ]
        )
    finally:
        admin.close()


@pytest.fixture(scope="session")
def hostile_worker(
    kafka_bootstrap: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[HostileWorker]:
    settings = isolated_settings(kafka_bootstrap, redis_url, RULES)
    settings["STREAMS_BATCH_SIZE"] = "200"
    _limit_dlq_messages(kafka_bootstrap, settings["STREAMS_TOPIC_DLQ"])
    log = tmp_path_factory.mktemp("hostile") / "worker.log"
    with running_worker(kafka_bootstrap, settings, log) as worker:
        yield worker


@contextlib.contextmanager
def running_worker(
    kafka_bootstrap: str, settings: dict[str, str], log: Path
) -> Iterator[HostileWorker]:
    """A worker process on `settings`, ready, with readers of its two output topics."""
    memberships = TopicReader(kafka_bootstrap, settings["STREAMS_TOPIC_MEMBERSHIPS"])
    dead = TopicReader(kafka_bootstrap, settings["STREAMS_TOPIC_DLQ"])
    with WorkerProcess(settings, log) as process:
        process.wait_ready()
        try:
            yield HostileWorker(settings, process, memberships, dead)
        finally:
            memberships.close()
            dead.close()


def sample_lines(count: int, leads: int, seed: int, first_lead: int) -> list[bytes]:
    """The sample stream (valid records and the usual rejections) on leads numbered from
    `first_lead`, so that each test module has leads of its own on the shared worker."""
    lines = []
    for activity in sample_activities(count, leads, seed):
        activity["leadId"] = int(activity["leadId"]) - 1000 + first_lead
        lines.append(orjson.dumps(activity))
    return lines


def keyed(lines: Iterable[bytes]) -> list[tuple[bytes | None, bytes]]:
    return [(lead_key(line), line) for line in lines]


def leads_in(lines: Iterable[bytes]) -> set[int]:
    out = set()
    for line in lines:
        with contextlib.suppress(Exception):
            out.add(int(orjson.loads(line)["leadId"]))
    return out
