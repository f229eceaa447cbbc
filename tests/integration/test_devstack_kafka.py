"""The real Kafka broker from Maven Central jars serves produce/consume, and keeps what it
acknowledged across restart() and kill(): the broker-restart tests rely on it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer, KafkaProducer

from streams.devstack.kafka import KafkaBroker, create_topics, ensure_kafka_install

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker() -> Iterator[KafkaBroker]:
    t0 = time.monotonic()
    with KafkaBroker() as broker:
        print(f"kafka start {time.monotonic() - t0:.1f} s")
        yield broker
    assert not broker.alive()
    assert not broker.workdir.exists(), "the temporary data dir is removed on exit"


def _produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        futures = [producer.send(topic, key=k, value=v) for k, v in messages]
        producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=10)
    finally:
        producer.close()


def _consume(
    bootstrap: str, topic: str, expected: int, group: str
) -> list[tuple[int, bytes, bytes]]:
    """Everything in `topic` as (partition, key, value), read as a new consumer group."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    got: list[tuple[int, bytes, bytes]] = []
    deadline = time.monotonic() + 60
    try:
        while len(got) < expected and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=500).items():
                got += [(tp.partition, r.key, r.value) for r in records]
    finally:
        consumer.close()
    return got


def test_produce_and_consume_1000(broker: KafkaBroker) -> None:
    create_topics(broker.bootstrap, {"smoke": 4})
    create_topics(broker.bootstrap, {"smoke": 4})  # idempotent
    sent = [(f"k{i % 37}".encode(), f"v{i}".encode()) for i in range(1000)]
    _produce(broker.bootstrap, "smoke", sent)

    got = _consume(broker.bootstrap, "smoke", len(sent), group="smoke-reader")
    assert len(got) == len(sent)
    assert sorted((k, v) for _, k, v in got) == sorted(sent)
    assert {p for p, _, _ in got} == {0, 1, 2, 3}
    partition_of = {k: p for p, k, _ in got}
    assert all(partition_of[k] == p for p, k, _ in got), "one key, one partition"


def test_messages_survive_restart_and_kill(broker: KafkaBroker) -> None:
    port, workdir = broker.port, broker.workdir
    before = [(b"a", f"before-{i}".encode()) for i in range(100)]
    _produce(broker.bootstrap, "durable", before)  # auto-created, num.partitions=4

    t0 = time.monotonic()
    broker.restart()
    print(f"kafka restart {time.monotonic() - t0:.1f} s")
    assert (broker.port, broker.workdir) == (port, workdir)
    got = _consume(broker.bootstrap, "durable", len(before), group="after-restart")
    assert [(k, v) for _, k, v in got] == before, "one key: one partition, in order"

    after = [(b"a", f"after-{i}".encode()) for i in range(100)]
    _produce(broker.bootstrap, "durable", after)
    broker.kill()
    assert not broker.alive()
    t0 = time.monotonic()
    broker.start()
    print(f"kafka start after kill {time.monotonic() - t0:.1f} s")
    # Acknowledged writes are in the page cache, which a process crash does not lose.
    got = _consume(broker.bootstrap, "durable", 200, group="after-kill")
    assert [(k, v) for _, k, v in got] == before + after


def test_broker_runs_from_class_archives_the_jvm_can_map(broker: KafkaBroker) -> None:
    """The broker starts from the class-data-sharing archives (class_archive), and they
    are ones this JVM and classpath accept: `-Xshare:on` fails where `auto` (the broker's)
    would silently start slower."""
    assert broker.process is not None
    sharing = [a for a in broker.process.argv if a.startswith("-XX:SharedArchiveFile=")]
    assert len(sharing) == 1, broker.process.argv
    libs, java = ensure_kafka_install()
    done = subprocess.run(
        [java, "-Xshare:on", sharing[0], "-cp", f"{libs}/*", "kafka.Kafka", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().startswith("3.9"), done.stdout
