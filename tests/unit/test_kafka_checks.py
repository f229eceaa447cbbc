"""The pure parts of the start-up checks: which broker features are missing, what is wrong
with a topic, and what counts as a local run."""

from __future__ import annotations

from typing import Any

from streams.runtime.connections import (
    API_FEATURES,
    FEATURES,
    WORKER_FEATURES,
    is_local,
    missing_features,
    topic_problems,
)

ALL = {key: (0, 9) for requests in FEATURES.values() for key in requests}


def test_a_broker_without_idempotent_producers_is_named() -> None:
    versions = {k: v for k, v in ALL.items() if k != 22}
    assert missing_features(versions, API_FEATURES) == ["idempotent producer (InitProducerId)"]
    assert missing_features(versions, WORKER_FEATURES) == []
    assert missing_features(ALL, API_FEATURES) == []


def _topic(partitions: int, replicas: int) -> dict[str, Any]:
    return {
        "name": "activities",
        "partitions": [
            {"partition_index": i, "replica_nodes": list(range(1, replicas + 1))}
            for i in range(partitions)
        ],
    }


def test_topic_problems() -> None:
    ok = {"min.insync.replicas": "2", "cleanup.policy": "delete"}
    assert topic_problems(_topic(8, 3), ok, 8, local=False) == ([], [])
    errors, _ = topic_problems(_topic(4, 3), ok, 8, local=False)
    assert errors == [
        "topic activities has 4 partitions, the settings say 8 (STREAMS_PARTITIONS); "
        "set it to 4, or move to a new topic"
    ]
    errors, _ = topic_problems(_topic(8, 1), ok, 8, local=True)
    assert errors == [
        "topic activities has 1 replica(s) but min.insync.replicas=2: every acks=all write "
        "to it would fail (NotEnoughReplicas)"
    ]
    errors, _ = topic_problems(_topic(8, 3), {"cleanup.policy": "compact,delete"}, 8, False)
    assert len(errors) == 1 and "cleanup.policy=compact,delete" in errors[0]
    single = {"min.insync.replicas": "1"}
    assert topic_problems(_topic(8, 1), single, 8, local=True) == ([], [])
    errors, warnings = topic_problems(_topic(8, 1), single, 8, local=False)
    assert errors == [] and len(warnings) == 1 and "replication factor 1" in warnings[0]


def test_is_local() -> None:
    assert is_local("127.0.0.1:9092,localhost:9093")
    assert is_local(["[::1]:9092", "kafka://127.0.0.2:9092"])
    assert not is_local("127.0.0.1:9092,kafka-1:9092")
    assert not is_local(["10.0.0.5:9092"])
