"""The Kafka consumers of the activity reads: a small pool, the topic's partitions, and a
consumer seen as the merge's `Fetcher`.

Thread-safe: each read leases a KafkaConsumer (at most `size` idle ones are kept; a read
that finds none creates one), so concurrent reads run in parallel and a consumer is never
used by two threads at once. Consumers are assigned partitions directly: no consumer
group, nothing committed. A consumer that failed (a Kafka error) is closed, not pooled
again; a request's own error (`HistoryError`) leaves it healthy. A Kafka error while leased
becomes `HistoryUnavailable` (608), whose message (sent to the client) says only that Kafka
did not answer: the broker's address and the client library's words go to the server's
log, never to a caller.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from streams.api.history_errors import HistoryError, HistoryUnavailable
from streams.api.merge import Fetched

log = logging.getLogger(__name__)
UNAVAILABLE_MESSAGE = "Kafka did not answer; the request may be retried"


def _unavailable(bootstrap: str | list[str], exc: KafkaError) -> HistoryUnavailable:
    """The 608 for the caller; the detail for the operator's log."""
    log.warning("activity read: Kafka at %s: %s: %s", bootstrap, type(exc).__name__, exc)
    return HistoryUnavailable(UNAVAILABLE_MESSAGE)


def _close(consumer: Any) -> None:
    with suppress(Exception):  # closing a consumer whose broker is gone may raise
        consumer.close(autocommit=False, timeout_ms=1000)


class ConsumerPool:
    def __init__(
        self,
        bootstrap: str | list[str],
        topic: str,
        *,
        size: int,
        request_timeout: float,
        metadata_max_age: float,
        consumer_config: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.size = size
        self.request_timeout = request_timeout
        self.metadata_max_age = metadata_max_age
        """Seconds the topic's partition count is trusted before it is asked again."""
        self.consumer_config = dict(consumer_config or {})
        self._partition_count: int | None = None
        self._counted_at = 0.0
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False

    def _new_consumer(self) -> Any:
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "client_id": "streams-history",
            "group_id": None,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "isolation_level": "read_committed",
            "request_timeout_ms": int(self.request_timeout * 1000),
            "bootstrap_timeout_ms": int(self.request_timeout * 1000),
            "fetch_max_wait_ms": 100,
            "max_partition_fetch_bytes": 256 * 1024,
            "max_poll_records": 1000,
            **self.consumer_config,
        }
        try:
            return KafkaConsumer(**config)
        except KafkaError as exc:
            raise _unavailable(self.bootstrap, exc) from exc

    @contextmanager
    def lease(self) -> Iterator[Any]:
        with self._lock:
            if self._closed:
                raise RuntimeError("ActivityHistory is closed")
            consumer = self._idle.pop() if self._idle else None
        if consumer is None:
            consumer = self._new_consumer()
        healthy = False
        try:
            yield consumer
            healthy = True
        except HistoryError:
            healthy = True  # the request's fault, not the consumer's
            raise
        except KafkaError as exc:
            raise _unavailable(self.bootstrap, exc) from exc
        finally:
            if healthy:
                try:
                    consumer.assign([])  # stop fetching while idle
                except Exception:
                    healthy = False
            with self._lock:
                keep = healthy and not self._closed and len(self._idle) < self.size
                if keep:
                    self._idle.append(consumer)
            if not keep:
                _close(consumer)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for consumer in idle:
            _close(consumer)

    def partitions(
        self, consumer: Any, at_least: int = 0, fresh: bool = False
    ) -> list[TopicPartition]:
        """The topic's partitions. The count is cached for `metadata_max_age` seconds (a
        metadata request costs up to the client's 100 ms refresh backoff); a stale count
        loses nothing, since a partition a token does not know is read from its beginning
        once known, and a token that knows more partitions forces a refresh."""
        with self._lock:
            count, counted_at = self._partition_count, self._counted_at
        if (
            fresh
            or count is None
            or count < at_least
            or time.monotonic() - counted_at >= self.metadata_max_age
        ):
            consumer.topics()  # a metadata request for every topic: refreshes the cache
            ids = sorted(consumer.partitions_for_topic(self.topic) or ())
            if ids != list(range(len(ids))):
                raise HistoryUnavailable(f"topic {self.topic!r} has partitions {ids} (a gap)")
            count = len(ids)
            with self._lock:
                self._partition_count, self._counted_at = count, time.monotonic()
        return [TopicPartition(self.topic, p) for p in range(count)]


class ConsumerFetcher:
    """A leased consumer as the merge's `Fetcher`: assigned the partitions of `tps` that
    have something to read, each positioned at its start offset."""

    def __init__(
        self, consumer: Any, tps: Sequence[TopicPartition], start: Sequence[int], end: Sequence[int]
    ) -> None:
        self.consumer = consumer
        self.tps = list(tps)
        self._index = {tp: p for p, tp in enumerate(self.tps)}
        to_read = [p for p in range(len(self.tps)) if start[p] < end[p]]
        if to_read:
            consumer.assign([self.tps[p] for p in to_read])
            for p in to_read:
                consumer.seek(self.tps[p], start[p])

    def poll(self, timeout: float) -> dict[int, Sequence[Fetched]]:
        polled = self.consumer.poll(timeout_ms=max(1, int(timeout * 1000)), max_records=1000)
        return {self._index[tp]: records for tp, records in polled.items() if tp in self._index}

    def position(self, partition: int) -> int:
        position: int = self.consumer.position(self.tps[partition])
        return position

    def pause(self, partition: int) -> None:
        self.consumer.pause(self.tps[partition])

    def resume(self, partition: int) -> None:
        self.consumer.resume(self.tps[partition])
