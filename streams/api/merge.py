"""One page of an activity read: the k-way merge of a topic's partitions, with backpressure
and deadlines, and no I/O of its own.

`merge` reads partitions from `start` up to `end` (offsets, per partition) through a
`Fetcher` (the Kafka consumer, in `history`; a list of records, in the tests) and a clock,
both given: so it is tested with a fake clock and scripted fetches, and its result depends
on nothing else.

Order: records are consumed in (timestamp, partition, offset) order, each partition in its
offset order: a record is taken only while every partition still being read has one
buffered to compare with (a partition with nothing buffered is *starving*: the merge waits
for it). `keep` turns a consumed record into a result or None (filtered out, or not
decodable); the page stops at `batch_size` results or `max_scan` records consumed.
Records fetched but not reached when the page filled are not consumed: the next page gets
them. Hence every record is consumed exactly once across pages, in the same order whatever
the page size.

Backpressure: a partition with `pause_at` records buffered is paused (the merge is waiting
for a partition further behind in time) and resumed once half of them are consumed.

Deadlines: after `max_wait` seconds since the start, or `idle_timeout` seconds without any
record fetched while some partition is starving (its end offset promised more than came:
end offsets are not trusted blindly), the starving partitions are left for the next call
and the page is `stalled` (the caller answers `moreResult` true).

Next offsets: per partition, the offset after the last record consumed. A partition read to
its end with everything consumed moves to `end` even if the last offsets held no record
(transaction markers, compacted records), so that `moreResult` turns false.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

PAUSE_AT: Final = 5000
POLL_SECONDS: Final = 0.2
"""The longest a poll waits for records (shorter when `idle_timeout` is)."""


class Fetched(Protocol):
    """A record as the consumer returns it."""

    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def value(self) -> bytes | None: ...


class Fetcher(Protocol):
    """The partitions being read, by index: what `merge` asks of a consumer."""

    def poll(self, timeout: float) -> Mapping[int, Sequence[Fetched]]:
        """Records fetched since the last poll, by partition (waits up to `timeout` s)."""
        ...

    def position(self, partition: int) -> int:
        """The offset the next fetch of `partition` starts at."""
        ...

    def pause(self, partition: int) -> None: ...

    def resume(self, partition: int) -> None: ...


@dataclass(frozen=True)
class Limits:
    batch_size: int
    """Results at which the page is full."""
    max_scan: int
    """Records consumed (matching or not) after which the page ends."""
    max_wait: float
    """Seconds a page may take before it returns what it has."""
    idle_timeout: float
    """Seconds without any record fetched after which starving partitions are left."""
    pause_at: int = PAUSE_AT


@dataclass(frozen=True)
class Page:
    results: list[dict[str, Any]]
    next_offsets: list[int]
    stalled: bool
    """Some partition was left unread (idle or out of time): there may be more."""


Keep = Callable[[int, Fetched], dict[str, Any] | None]
"""A consumed record of a partition to its result, or None when it is not returned."""


def merge(
    fetcher: Fetcher,
    start: Sequence[int],
    end: Sequence[int],
    keep: Keep,
    limits: Limits,
    clock: Callable[[], float],
) -> Page:
    """Consume the partitions from `start` up to `end` in (timestamp, partition, offset)
    order; the fetcher is positioned at `start` for every partition with `start < end`."""
    next_offsets = list(start)
    to_read = [p for p in range(len(start)) if start[p] < end[p]]
    if not to_read:
        return Page([], next_offsets, False)
    buffers: dict[int, deque[Fetched]] = {p: deque() for p in to_read}
    last_buffered = {p: start[p] - 1 for p in to_read}
    reading = set(to_read)  # still fetching: the end offset not reached
    starving = set(to_read)  # reading, and nothing buffered: the merge must wait
    paused: set[int] = set()
    stalled = False
    heap: list[tuple[int, int, int]] = []  # (timestamp, partition, offset) of each head
    results: list[dict[str, Any]] = []
    scanned = 0
    began = last_data = clock()

    while True:
        # Merge while every partition still being read has a record to compare.
        while heap and not starving and len(results) < limits.batch_size:
            if scanned >= limits.max_scan:
                break
            _, p, _ = heapq.heappop(heap)
            buffer = buffers[p]
            record = buffer.popleft()
            next_offsets[p] = record.offset + 1
            scanned += 1
            if buffer:
                head = buffer[0]
                heapq.heappush(heap, (head.timestamp, p, head.offset))
            elif p in reading:
                starving.add(p)
            result = keep(p, record)
            if result is not None:
                results.append(result)
        if len(results) >= limits.batch_size or scanned >= limits.max_scan or not starving:
            break
        now = clock()
        if now - began >= limits.max_wait or now - last_data >= limits.idle_timeout:
            reading -= starving  # left for the next call
            starving.clear()
            stalled = True
            continue
        for p in [p for p in paused if len(buffers[p]) < limits.pause_at // 2]:
            fetcher.resume(p)
            paused.discard(p)
        polled = fetcher.poll(min(limits.idle_timeout, POLL_SECONDS))
        for p, records in polled.items():
            if p not in reading:
                continue
            buffer = buffers[p]
            was_empty = not buffer
            for record in records:
                if last_buffered[p] < record.offset < end[p]:
                    buffer.append(record)
                    last_buffered[p] = record.offset
            if buffer:
                last_data = clock()
                starving.discard(p)
                if was_empty:
                    heapq.heappush(heap, (buffer[0].timestamp, p, buffer[0].offset))
            if len(buffer) >= limits.pause_at and p not in paused:
                fetcher.pause(p)
                paused.add(p)
        for p in list(reading):
            if last_buffered[p] + 1 >= end[p] or fetcher.position(p) >= end[p]:
                reading.discard(p)
                starving.discard(p)

    for p in to_read:
        # Read to the end and all consumed: skip gaps (transaction markers, compacted
        # records) so that moreResult turns false.
        if (
            p not in reading
            and not buffers[p]
            and next_offsets[p] < end[p]
            and (last_buffered[p] + 1 >= end[p] or fetcher.position(p) >= end[p])
        ):
            next_offsets[p] = end[p]
    return Page(results, next_offsets, stalled)
