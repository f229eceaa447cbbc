"""A worker's connections at start: waiting, boundedly and loudly, for Kafka and Redis,
and creating the topics it needs."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

TOPIC_ALREADY_EXISTS: Final = 36

log = logging.getLogger(__name__)


class KafkaUnavailable(RuntimeError):
    """The cluster did not answer within the allowed time, or refused to create a topic."""


def _admin(bootstrap: Sequence[str] | str, timeout: float) -> Any:
    from kafka import KafkaAdminClient  # slow to import: only where it is used

    timeout_ms = max(1000, int(timeout * 1000))
    # bootstrap_timeout_ms too: kafka-python's default (30 s) would outlast a shorter
    # STREAMS_CONNECT_TIMEOUT, silently.
    return KafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms, bootstrap_timeout_ms=timeout_ms
    )


def wait_for_kafka(bootstrap: Sequence[str] | str, timeout: float, retry: float = 2.0) -> None:
    """Return once the cluster answers a metadata request; one log line per failed try,
    KafkaUnavailable after `timeout` seconds (never a silent hang)."""
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        attempt += 1
        try:
            with _admin(bootstrap, min(5.0, timeout)) as admin:
                admin.list_topics()
            return
        except Exception as exc:  # kafka-python raises many types for "not there"
            left = deadline - time.monotonic()
            if left <= 0:
                raise KafkaUnavailable(
                    f"Kafka at {bootstrap} did not answer within {timeout:.0f} s: {exc}"
                ) from None
            log.warning(
                "Kafka at %s not reachable (try %d: %s); retrying for %.0f s more",
                bootstrap,
                attempt,
                exc,
                left,
            )
            time.sleep(min(retry, left))


def ensure_topics(
    bootstrap: Sequence[str] | str,
    topics: Mapping[str, int],
    timeout: float = 30.0,
    replication_factor: int = 1,
) -> None:
    """Create each missing topic with its partition count and wait until every partition
    has a leader; an existing topic is left as it is (its partition count included)."""
    with _admin(bootstrap, timeout) as admin:
        result: dict[str, Any] = admin.create_topics(
            {
                name: {"num_partitions": n, "replication_factor": replication_factor}
                for name, n in topics.items()
            },
            raise_errors=False,
        )
        failed = [
            f"{t['name']}: {t.get('error_message') or t['error_code']}"
            for t in result["topics"]
            if t["error_code"] not in (0, TOPIC_ALREADY_EXISTS)
        ]
        if failed:
            raise KafkaUnavailable(f"cannot create topics: {'; '.join(failed)}")
        admin.wait_for_topics(list(topics), timeout_ms=int(timeout * 1000))
