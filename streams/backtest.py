"""The offline backtest: a file of activities through the same pipeline as the workers,
with in-memory state, as if every line arrived in file order on one partition.

The state is the live objects of a `MemoryStore`. If the engine raises on a record, the
pipeline cannot redo that batch from live states (`StatesNotIsolated`): the backtest then
reads the file again from the start with a store that hands out copies, writing nothing
for the batches it already wrote (the same input gives the same output up to there), so
its output is the workers' whatever the engine does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from streams.engine.bounds import DEFAULT_LIMITS, Limits
from streams.engine.compiler import Plan
from streams.engine.datatypes import datetime_to_us
from streams.pipeline import Processor, Record, StatesNotIsolated
from streams.state.memory import MemoryStore
from streams.text import counted

FILE_TOPIC = "file"
DEFAULT_BATCH = 5_000


@dataclass
class BacktestStats:
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    events: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        rate = self.lines / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{counted(self.lines, 'activity', 'activities')}: {self.accepted} accepted, "
            f"{counted(self.duplicates, 'duplicate')}, {self.rejected} rejected; "
            f"{counted(self.events, 'membership')}; "
            f"{self.seconds:.2f} s ({rate:,.0f} activities/s)"
        )


def read_records(stream: BinaryIO) -> Iterator[Record]:
    """One record per line, the offset being the 0-based line number; blank lines are not
    records (they are counted in the numbering but neither processed nor rejected)."""
    for number, line in enumerate(stream):
        value = line.rstrip(b"\r\n")
        if value.strip():
            yield Record(value, FILE_TOPIC, 0, number)


def _reader(stream: BinaryIO) -> Callable[[], Iterator[Record]]:
    """`read_records` from the start of `stream`, each time it is called."""

    def records() -> Iterator[Record]:
        stream.seek(0)
        return read_records(stream)

    return records


def _batches(
    records: Iterator[Record], size: int, cuts: Sequence[int] = ()
) -> Iterator[list[Record]]:
    """Batches of at most `size` records; a batch also ends before each offset of `cuts`
    (the rules switches of a worker happen between batches)."""
    pending = sorted(cuts)
    batch: list[Record] = []
    for record in records:
        if batch and pending and record.offset >= pending[0]:
            yield batch
            batch = []
        while pending and record.offset >= pending[0]:
            pending.pop(0)
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def _run(
    plan: Plan,
    open_records: Callable[[], Iterator[Record]],
    on_event: Callable[[dict[str, Any]], None],
    on_rejected: Callable[[dict[str, Any]], None],
    dedup_horizon_us: int,
    batch_size: int,
    progress: Callable[[BacktestStats], None] | None,
    switches: Sequence[tuple[int, Plan]] = (),
    limits: Limits = DEFAULT_LIMITS,
) -> BacktestStats:
    """`open_records` reads the records from the start (called again after an engine error:
    module doc). `switches`: (offset, plan) in force from that offset on, as a worker's hot
    reload recorded them for the partition."""
    now_us = datetime_to_us_now()
    run = _Pass(plan, on_event, on_rejected, dedup_horizon_us, batch_size, progress, limits)
    try:
        return await run.through(open_records(), switches, now_us, MemoryStore(), 0)
    except _Again as again:
        written = again.written
    # Out of the `except` block, so that the log of the engine's error has no context.
    store = MemoryStore(copies=True)
    return await run.through(open_records(), switches, now_us, store, written)


class _Again(Exception):
    def __init__(self, written: int) -> None:
        self.written = written
        """Batches whose events and dead letters were written."""


@dataclass
class _Pass:
    plan: Plan
    on_event: Callable[[dict[str, Any]], None]
    on_rejected: Callable[[dict[str, Any]], None]
    dedup_horizon_us: int
    batch_size: int
    progress: Callable[[BacktestStats], None] | None
    limits: Limits

    async def through(
        self,
        records: Iterator[Record],
        switches: Sequence[tuple[int, Plan]],
        now_us: int,
        store: MemoryStore,
        written: int,
    ) -> BacktestStats:
        """One pass over the records; the first `written` batches' output is not written
        again. `_Again` when the pipeline cannot isolate an engine error with `store`."""
        processor = Processor(self.plan, store, self.dedup_horizon_us, self.limits)
        pending = sorted(switches, key=lambda s: s[0])
        stats = BacktestStats()
        started = time.perf_counter()
        cuts = [offset for offset, _ in pending]
        for number, batch in enumerate(_batches(records, self.batch_size, cuts)):
            while pending and batch[0].offset >= pending[0][0]:
                plan = pending.pop(0)[1]
                processor = Processor(plan, store, self.dedup_horizon_us, self.limits)
            try:
                result = await processor.process(batch, now_us)
            except StatesNotIsolated:
                if store.copies:
                    raise
                raise _Again(number) from None
            if number >= written:
                for event in result.events:
                    self.on_event(event)
                for letter in result.dead_letters:
                    self.on_rejected(letter)
            stats.lines += len(batch)
            stats.accepted += result.accepted
            stats.duplicates += result.duplicates
            stats.rejected += len(result.dead_letters)
            stats.events += len(result.events)
            stats.seconds = time.perf_counter() - started
            if self.progress is not None:
                self.progress(stats)
        stats.seconds = time.perf_counter() - started
        return stats


def datetime_to_us_now() -> int:
    """Processing time for the whole backtest: one instant, the wall clock at its start, so
    the result cannot depend on how long the run takes (the deduplication horizon and the
    future horizon of activity dates are measured in processing time)."""
    return datetime_to_us(datetime.now(UTC))


def run_backtest(
    plan: Plan,
    activities: Path,
    events_out: BinaryIO,
    rejected_out: BinaryIO | None,
    dedup_horizon_us: int,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[BacktestStats], None] | None = None,
    switches: Sequence[tuple[int, Plan]] = (),
    limits: Limits = DEFAULT_LIMITS,
) -> BacktestStats:
    def on_event(event: dict[str, Any]) -> None:
        events_out.write(orjson.dumps(event) + b"\n")

    def on_rejected(letter: dict[str, Any]) -> None:
        if rejected_out is not None:
            rejected_out.write(orjson.dumps(letter) + b"\n")

    with activities.open("rb") as stream:
        return asyncio.run(
            _run(
                plan,
                _reader(stream),
                on_event,
                on_rejected,
                dedup_horizon_us,
                batch_size,
                progress,
                switches,
                limits,
            )
        )


def backtest_to_lists(
    plan: Plan, activities: Path, dedup_horizon_us: int, batch_size: int = DEFAULT_BATCH
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], BacktestStats]:
    """The membership events and dead letters of a backtest, in memory (for `plan`)."""
    events: list[dict[str, Any]] = []
    letters: list[dict[str, Any]] = []
    with activities.open("rb") as stream:
        stats = asyncio.run(
            _run(
                plan,
                _reader(stream),
                events.append,
                letters.append,
                dedup_horizon_us,
                batch_size,
                None,
            )
        )
    return events, letters, stats
