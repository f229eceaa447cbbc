"""A batch's keyed records appended to a topic as one Kafka record batch per partition.

Why: `producer.send` per record (Faust's, then aiokafka's) costs a coroutine, a metadata
wait, the serializer and size checks, aiokafka's pure-Python murmur2 partitioner and an
accumulator append, each per record; measured, the worker spent about a tenth of its event
loop's CPU there (py-spy, bench/stream.py's sustained phase). `BatchSender.issue` does
what aiokafka's own `create_batch`/`send_batch` API is for (the raw aiokafka loop of
bench/passthrough.py uses it): group the records by partition, append each group to a
`BatchBuilder` and queue it, one delivery future per batch.

Same outcome as a `send` per record:
- the partition of a key is the producer's partitioner's answer (`_partitioner(key,
  all_partitions, available)`, as aiokafka's `_partition` calls it), remembered per key
  while the topic's partitions stay the same (aiokafka's `DefaultPartitioner`, Faust's
  default, hashes the key alone; another partitioner is asked every time);
- records of one partition keep their order (one builder at a time per partition, queued
  in order; a full builder is queued and the next one started);
- each returned delivery completes when the broker acknowledged its batch and raises if
  it was not delivered, so awaiting them all is awaiting every record.
Records of different partitions are independent in Kafka anyway.

What this relies on, checked by tests/unit/test_faust_internals.py: Faust's aiokafka
producer's `_ensure_producer()` (the `AIOKafkaProducer`), and on that `create_batch`,
`send_batch(batch, topic, partition=)`, `_partitioner`, `_metadata.partitions_for_topic`,
`_metadata.available_partitions_for_topic` and `client._wait_on_metadata`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import Any, Final

from aiokafka.partitioner import DefaultPartitioner

KEYS_REMEMBERED: Final = 100_000
"""Keys whose partition is remembered per topic; past this the memory starts afresh."""


class BatchSender:
    """Sends through a Faust app's producer (`app.producer`, started) a batch's keyed
    records, one record batch per partition (module doc)."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        self._partitions: dict[str, tuple[list[int], dict[bytes, int]]] = {}
        """Topic -> (its partitions as last seen, key -> partition for those)."""

    async def warm_up(self, topic: str) -> None:
        """Fetch `topic`'s metadata now, as the first `issue` to it would."""
        await self.producer._ensure_producer().client._wait_on_metadata(topic)

    async def issue(
        self, topic: str, records: Iterable[tuple[bytes, bytes]]
    ) -> list[Awaitable[Any]]:
        """Queue (key, value) pairs, in order per partition, on the producer; return the
        delivery futures of their batches without waiting for them (each waits only while
        its partition still has an earlier batch not yet sent)."""
        kafka = self.producer._ensure_producer()
        await kafka.client._wait_on_metadata(topic)
        partition_of = self._partition_of(kafka, topic)
        grouped: dict[int, list[tuple[bytes, bytes]]] = {}
        for key, value in records:
            partition = partition_of(key)
            group = grouped.get(partition)
            if group is None:
                grouped[partition] = [(key, value)]
            else:
                group.append((key, value))
        deliveries: list[Awaitable[Any]] = []
        for partition, group in grouped.items():
            batch = kafka.create_batch()
            append = batch.append
            for key, value in group:
                if append(timestamp=None, key=key, value=value) is None:  # full
                    deliveries.append(await kafka.send_batch(batch, topic, partition=partition))
                    batch = kafka.create_batch()
                    append = batch.append
                    append(timestamp=None, key=key, value=value)  # an empty batch takes any
            deliveries.append(await kafka.send_batch(batch, topic, partition=partition))
        return deliveries

    def _partition_of(self, kafka: Any, topic: str) -> Any:
        """key -> partition, as the producer's partitioner decides for `topic` now."""
        metadata = kafka._metadata
        all_partitions = list(metadata.partitions_for_topic(topic))
        known = self._partitions.get(topic)
        if known is None or known[0] != all_partitions or len(known[1]) > KEYS_REMEMBERED:
            known = self._partitions[topic] = (all_partitions, {})
        remembered = known[1]
        partitioner = kafka._partitioner
        if not isinstance(partitioner, DefaultPartitioner):
            remembered = {}  # another partitioner may weigh `available` in: not remembered

        def partition_of(key: bytes) -> int:
            partition = remembered.get(key)
            if partition is None:
                available = list(metadata.available_partitions_for_topic(topic))
                partition = partitioner(key, all_partitions, available)
                if remembered is known[1]:
                    remembered[key] = partition
            return partition

        return partition_of
