"""Every command that talks to Kafka (worker, api, produce) works on the broker it is given
or refuses with one clear line and exit 1 within its bounded wait (STREAMS_CONNECT_TIMEOUT),
never a traceback or a hang: an unreachable cluster, a port that accepts connections but
never answers, a topic with the wrong partition count, with fewer replicas than its
min.insync.replicas, or compacted."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from streams.devstack.kafka import KafkaBroker
from streams.devstack.process import ServiceError, free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONNECT_TIMEOUT = 4
EMPTY = Path(tempfile.gettempdir()) / f"streams-empty-{os.getpid()}.jsonl"
"""An empty file of activities: `produce` checks Kafka before it reads a line."""
COMMANDS = {
    "worker": ["worker"],
    "api": ["api"],
    "produce": ["produce", str(EMPTY)],
}


def run(command: str, **settings: str) -> tuple[int, list[str], float]:
    """(exit code, stderr lines that are not log records, seconds taken)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STREAMS_")},
        "STREAMS_RULES_DIR": str(ROOT / "rules"),
        "STREAMS_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
        "STREAMS_API_CLIENTS": "probe:a-secret-of-some-length",
        "STREAMS_API_HOST": "127.0.0.1",
        "STREAMS_API_PORT": str(free_port()),
        "STREAMS_WEB_PORT": str(free_port()),
        "STREAMS_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        # Topics of its own: the session's broker holds other tests' topics.
        "STREAMS_TOPIC_MEMBERSHIPS": f"checks-memberships-{uuid.uuid4().hex[:8]}",
        "STREAMS_TOPIC_DLQ": f"checks-dlq-{uuid.uuid4().hex[:8]}",
        **settings,
    }
    argv = [sys.executable, "-m", "streams", *COMMANDS[command]]
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    took = time.monotonic() - started
    assert "Traceback" not in done.stderr, done.stderr
    # Log records have a timestamp and a level; what the command says to the user has not.
    said = [
        line
        for line in done.stderr.splitlines()
        if line.strip() and " WARNING " not in line and " INFO " not in line
    ]
    return done.returncode, said, took


@pytest.fixture(scope="module", autouse=True)
def empty_file() -> Iterator[None]:
    EMPTY.write_text("")
    yield
    EMPTY.unlink(missing_ok=True)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never answers: half-reachable."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_an_unreachable_cluster_is_one_line_and_exit_1(command: str) -> None:
    port = free_port()
    code, said, took = run(command, STREAMS_BROKER=f"127.0.0.1:{port}")
    assert code == 1
    assert len(said) == 1, said
    assert f"127.0.0.1:{port}" in said[0] and f"within {CONNECT_TIMEOUT} s" in said[0], said
    assert took < CONNECT_TIMEOUT + 25


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_port_that_never_answers_is_one_line_and_exit_1(command: str, silent_port: int) -> None:
    code, said, took = run(command, STREAMS_BROKER=f"127.0.0.1:{silent_port}")
    assert code == 1
    assert len(said) == 1 and f"127.0.0.1:{silent_port}" in said[0], said
    assert took < CONNECT_TIMEOUT + 25


def test_a_broker_advertising_an_unreachable_address_is_named() -> None:
    """Half-reachable: the bootstrap server answers, the address it advertises does not."""
    broker = KafkaBroker(advertised_port=free_port())
    try:
        broker.launch()
        assert broker.process is not None
        broker.process.wait_for_port("127.0.0.1", broker.port, 60)
    except (ServiceError, OSError) as exc:
        broker.close()
        if os.environ.get("CI", "").strip().lower() == "true":  # as conftest.py does
            pytest.fail(f"Apache Kafka is unavailable: {exc}", pytrace=False)
        pytest.skip(f"Apache Kafka is unavailable: {exc}")
    try:
        code, said, took = run("produce", STREAMS_BROKER=broker.bootstrap)
    finally:
        broker.close()
    assert code == 1
    assert len(said) == 1 and "check the brokers' advertised.listeners" in said[0], said
    assert took < CONNECT_TIMEOUT + 25


def _topic(bootstrap: str, partitions: int, configs: dict[str, str] | None = None) -> str:
    name = f"checks-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics(
            {
                name: {
                    "num_partitions": partitions,
                    "replication_factor": 1,
                    "configs": configs or {},
                }
            }
        )
        admin.wait_for_topics([name], timeout_ms=30_000)
    finally:
        admin.close()
    return name


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_topic_with_another_partition_count_is_refused(
    command: str, kafka_bootstrap: str
) -> None:
    topic = _topic(kafka_bootstrap, 2)
    code, said, _ = run(
        command,
        STREAMS_BROKER=kafka_bootstrap,
        STREAMS_TOPIC_ACTIVITIES=topic,
        STREAMS_PARTITIONS="4",
    )
    assert code == 1
    assert said == [
        f"topic {topic} has 2 partitions, the settings say 4 (STREAMS_PARTITIONS); "
        "set it to 2, or move to a new topic"
    ]


@pytest.mark.parametrize(
    ("configs", "words"),
    [
        ({"min.insync.replicas": "2"}, "has 1 replica(s) but min.insync.replicas=2"),
        ({"cleanup.policy": "compact"}, "has cleanup.policy=compact"),
    ],
)
def test_a_topic_that_would_lose_or_refuse_writes_is_refused(
    configs: dict[str, str], words: str, kafka_bootstrap: str
) -> None:
    topic = _topic(kafka_bootstrap, 2, configs)
    code, said, _ = run(
        "api",
        STREAMS_BROKER=kafka_bootstrap,
        STREAMS_TOPIC_ACTIVITIES=topic,
        STREAMS_PARTITIONS="2",
    )
    assert code == 1
    assert len(said) == 1 and said[0].startswith(f"topic {topic} {words}"), said
