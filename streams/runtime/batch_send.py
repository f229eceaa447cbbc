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
  it was not delivered, so awaiting them all is awaiting every record (`issue_each`
  returns the delivery of each record's batch, in the records' order: the worker's dead
  letters, each of which is sent again alone when its batch is refused);
- a record without a key (a dead letter of a keyless record) goes where the partitioner
  puts it, asked for that record (never remembered).
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
        deliveries, _ = await self._issue(topic, records)
        return deliveries

    async def issue_each(
        self, topic: str, records: Iterable[tuple[bytes | None, bytes]]
    ) -> list[Awaitable[Any]]:
        """`issue`, returning for each record the delivery of the batch it went into, in
        the records' order (a record without a key goes to a partition the partitioner
        picks for it alone, as a `send` would): a refused batch fails each of its
        records, which the caller may then send again one by one."""
        deliveries, batch_of = await self._issue(topic, records)
        return [deliveries[n] for n in batch_of]

    async def _issue(
        self, topic: str, records: Iterable[tuple[bytes | None, bytes]]
    ) -> tuple[list[Awaitable[Any]], list[int]]:
        """(the deliveries of the batches queued, the batch of each record)."""
        kafka = self.producer._ensure_producer()
        await kafka.client._wait_on_metadata(topic)
        partition_of = self._partition_of(kafka, topic)
        grouped: dict[int, list[tuple[int, bytes | None, bytes]]] = {}
        count = 0
        for key, value in records:
            partition = partition_of(key)
            group = grouped.get(partition)
            if group is None:
                grouped[partition] = [(count, key, value)]
            else:
                group.append((count, key, value))
            count += 1
        deliveries: list[Awaitable[Any]] = []
        batch_of = [0] * count
        for partition, group in grouped.items():
            batch = kafka.create_batch()
            append = batch.append
            for n, key, value in group:
                if append(timestamp=None, key=key, value=value) is None:  # full
                    deliveries.append(await kafka.send_batch(batch, topic, partition=partition))
                    batch = kafka.create_batch()
                    append = batch.append
                    append(timestamp=None, key=key, value=value)  # an empty batch takes any
                batch_of[n] = len(deliveries)
            deliveries.append(await kafka.send_batch(batch, topic, partition=partition))
        return deliveries, batch_of

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

        def partition_of(key: bytes | None) -> int:
            partition = None if key is None else remembered.get(key)
            if partition is None:
                available = list(metadata.available_partitions_for_topic(topic))
                partition = partitioner(key, all_partitions, available)
                if key is not None and remembered is known[1]:
                    remembered[key] = partition
            return partition

        return partition_of
