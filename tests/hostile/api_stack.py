"""The API side of the hostile suite: two `python -m streams api` processes on one topic of
a real Kafka broker, a client for each, and the checks every probe ends with: both APIs
still answer, and the topic holds exactly the records the APIs answered `added` (nothing
lost, nothing extra).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from tests.integration.test_api import PARTITIONS, Api, api_settings, record, start_api

SETTLE = 2.0
"""Seconds the topic is read past the expected count, to see records that should not be."""


@dataclass
class Stack:
    """Two APIs sharing their settings and topic, and the identities they answered added."""

    bootstrap: str
    apis: list[Api]
    added: set[str] = field(default_factory=set)

    @property
    def topic(self) -> str:
        return self.apis[0].topic

    def add(self, api: Api, path: str, payload: Any) -> dict[str, Any]:
        """A write call; its `added` identities are remembered for `assert_nothing_lost`."""
        body = api.post(path, payload)
        assert body["success"] is True, body
        for entry in body["result"]:
            if entry["status"] == "added":
                self.added.add(entry["marketoGUID"])
        return body

    def assert_answering(self) -> None:
        """Every API answers /health and accepts a valid record."""
        for number, api in enumerate(self.apis):
            assert api.http.get("/health").status_code == 200
            lead = 900_000 + number
            body = self.add(
                api,
                "/rest/v1/activities/external.json",
                {"input": [record(lead, f"alive-{time.monotonic_ns()}")]},
            )
            assert body["result"][0]["status"] == "added", body

    def assert_nothing_lost(self) -> None:
        """The topic holds exactly the identities answered added (each at least once: a
        producer retry may store a record twice, with the same identity)."""
        expected = set(self.added)
        guids = topic_guids(self.bootstrap, self.topic, expected)
        assert guids == expected, (
            f"missing {len(expected - guids)}: {sorted(expected - guids)[:5]}; "
            f"unexpected {len(guids - expected)}: {sorted(map(str, guids - expected))[:5]}"
        )


def topic_guids(bootstrap: str, topic: str, expected: set[str], timeout: float = 60) -> set[str]:
    """The marketoGUIDs on the topic: read until `expected` are all there (or `timeout`),
    then `SETTLE` seconds more, so that records that should not be there are seen too."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    consumer.seek_to_beginning()
    guids: set[str] = set()
    deadline = time.monotonic() + timeout
    settled: float | None = None
    try:
        while time.monotonic() < (settled or deadline):
            for records in consumer.poll(timeout_ms=300).values():
                guids.update(str(orjson.loads(r.value).get("marketoGUID")) for r in records)
            if settled is None and expected <= guids:
                settled = time.monotonic() + SETTLE
    finally:
        consumer.close()
    return guids


def start_stack(bootstrap: str, logs: Path, count: int = 2, **settings: str) -> Stack:
    shared = api_settings(bootstrap, **settings)
    apis: list[Api] = []
    try:
        for number in range(count):
            process = start_api(shared, logs / f"api-{number}.log")
            apis.append(Api(process, shared))
    except BaseException:
        for api in apis:
            api.close()
        raise
    return Stack(bootstrap, apis)


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Two APIs with the default limits but a generous rate limit, shared by a module."""
    running = start_stack(kafka_bootstrap, tmp_path_factory.mktemp("apis"))
    try:
        yield running
    finally:
        for api in running.apis:
            api.close()


def raw_http(url: str, timeout: float = 30) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=timeout)
