"""The embedded Tansu broker takes topics, produces and consumes like Kafka for the demo."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from streams.devstack.tansu import TansuBroker, kafka_metadata_ok

pytestmark = pytest.mark.integration

N = 500


def test_produce_and_consume_500_over_two_partitions() -> None:
    t0 = time.monotonic()
    with TansuBroker() as broker:
        started = time.monotonic() - t0
        assert broker.bootstrap == f"127.0.0.1:{broker.port}"

        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
        try:
            admin.create_topics([NewTopic("devstack-check", 2, 1)])
            (described,) = admin.describe_topics(["devstack-check"])
        finally:
            admin.close()
        assert len(described["partitions"]) == 2

        t1 = time.monotonic()
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5)
        for i in range(N):
            producer.send("devstack-check", key=str(i % 11).encode(), value=str(i).encode())
        producer.flush(timeout=30)
        producer.close()
        produced = time.monotonic() - t1

        # Read until every value arrived or 30 s pass; Tansu under-reports end offsets,
        # so "caught up to the end offset" would stop too early.
        t2 = time.monotonic()
        consumer = KafkaConsumer(
            "devstack-check",
            bootstrap_servers=broker.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        seen: set[int] = set()
        partitions: set[int] = set()
        try:
            while len(seen) < N and time.monotonic() - t2 < 30:
                for tp, records in consumer.poll(timeout_ms=500).items():
                    partitions.add(tp.partition)
                    seen.update(int(r.value) for r in records)
        finally:
            consumer.close()
        consumed = time.monotonic() - t2

    assert seen == set(range(N))
    assert partitions == {0, 1}
    assert not broker.alive()
    assert not kafka_metadata_ok(broker.bootstrap, 1.0)
    print(f"tansu start {started:.3f} s, produce {produced:.3f} s, consume {consumed:.3f} s")
