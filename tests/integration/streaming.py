"""Helpers for tests that run the real worker: isolated settings, producing a stream,
reading topics back, and the backtest's answer for the same stream."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from streams.engine.compiler import load_plan
from streams.engine.leadstate import LeadState
from streams.pipeline import Processor, Record
from streams.runtime.connections import ensure_topics
from streams.state.memory import MemoryStore

PARTITIONS = 4


def isolated_settings(bootstrap: str, redis_url: str, rules: Path) -> dict[str, str]:
    """STREAMS_* variables with topics and an app id of their own, so tests sharing a
    broker and a Redis see nothing of each other."""
    run = uuid.uuid4().hex[:8]
    settings = {
        "STREAMS_BROKER": bootstrap,
        "STREAMS_REDIS_URL": redis_url,
        "STREAMS_RULES_DIR": str(rules),
        "STREAMS_APP_ID": f"test-{run}",
        "STREAMS_TOPIC_ACTIVITIES": f"activities-{run}",
        "STREAMS_TOPIC_MEMBERSHIPS": f"memberships-{run}",
        "STREAMS_TOPIC_DLQ": f"dlq-{run}",
        "STREAMS_PARTITIONS": str(PARTITIONS),
        "STREAMS_SESSION_TIMEOUT": "6",
        "STREAMS_CONNECT_TIMEOUT": "20",
    }
    ensure_topics(
        bootstrap,
        {
            settings[k]: PARTITIONS
            for k in ("STREAMS_TOPIC_ACTIVITIES", "STREAMS_TOPIC_MEMBERSHIPS", "STREAMS_TOPIC_DLQ")
        },
    )
    return settings


def produce(
    bootstrap: str, topic: str, lines: Iterable[bytes], key: Callable[[bytes], bytes | None]
) -> int:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    count = 0
    for line in lines:
        producer.send(topic, key=key(line), value=line)
        count += 1
    producer.flush(timeout=60)
    producer.close()
    return count


def lead_key(line: bytes) -> bytes | None:
    try:
        return str(orjson.loads(line)["leadId"]).encode()
    except Exception:
        return b"unparsable"


@dataclass
class TopicReader:
    """Reads a topic from the beginning, without a consumer group, as records arrive."""

    bootstrap: str
    topic: str
    values: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        self.consumer.assign([TopicPartition(self.topic, p) for p in range(PARTITIONS)])
        self.consumer.seek_to_beginning()

    def poll(self) -> None:
        for records in self.consumer.poll(timeout_ms=500).values():
            self.values.extend(orjson.loads(r.value) for r in records)

    def until(
        self,
        done: Callable[[list[dict[str, Any]]], bool],
        timeout: float,
        alive: Callable[[], bool] = lambda: True,
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while not done(self.values) and time.monotonic() < deadline and alive():
            self.poll()
        return self.values

    def close(self) -> None:
        self.consumer.close()


@dataclass
class Expected:
    events: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    leads: dict[int, LeadState]

    @property
    def ids(self) -> set[str]:
        return {e["eventId"] for e in self.events}


def backtest(rules: Path, lines: Sequence[bytes]) -> Expected:
    """What the backtest emits for the stream in this order (one partition), and the
    state it leaves."""
    store = MemoryStore()
    processor = Processor(load_plan(rules), store)
    records = [Record(line, "file", 0, i) for i, line in enumerate(lines)]
    result = asyncio.run(processor.process(records, time.time_ns() // 1000))
    return Expected(result.events, result.dead_letters, store.leads)


def per_lead(events: Iterable[dict[str, Any]]) -> dict[int, list[str]]:
    """Each lead's eventIds in order of appearance, first occurrence only."""
    seen: set[str] = set()
    out: dict[int, list[str]] = {}
    for event in events:
        if event["eventId"] not in seen:
            seen.add(event["eventId"])
            out.setdefault(event["leadId"], []).append(event["eventId"])
    return out


def listening_address(port: int) -> str:
    """The local address a TCP socket listens on at `port` (from /proc/net/tcp)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if int(hex_port, 16) == port and state == "0A":  # LISTEN
            return socket.inet_ntoa(bytes.fromhex(address)[::-1])
    raise AssertionError(f"nothing listens on port {port}")
