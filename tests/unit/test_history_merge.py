"""The page logic of the activity reads (streams.api.merge), pure: partitions as lists of
records, fetched a few at a time, and a fake clock that a poll with nothing to return moves
forward. The k-way merge order, the next offsets when a page fills, gaps, end offsets that
lie, the deadlines and the backpressure, with no broker and no waiting;
tests/integration/test_history.py runs the same reads against Apache Kafka."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.api.merge import Fetched, Limits, Page, merge


@dataclass(frozen=True)
class Record:
    offset: int
    timestamp: int
    value: bytes | None


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Log:
    """Partitions to fetch from, `chunk` records a poll, positioned at the merge's start;
    `ends` may claim more than there is (positions then stop short of them)."""

    partitions: list[list[Record]]
    clock: Clock
    ends: list[int] | None = None
    chunk: int = 7
    markers_at_end: bool = True
    """A partition fetched to its last record moves its position to its end (the rest
    being control records, as transaction markers are)."""
    positions: dict[int, int] = field(default_factory=dict)
    paused: set[int] = field(default_factory=set)
    polls: int = 0

    def __post_init__(self) -> None:
        if self.ends is None:
            self.ends = [(log[-1].offset + 1 if log else 0) for log in self.partitions]

    def start(self, start: Sequence[int]) -> None:
        self.positions = dict(enumerate(start))
        self.paused.clear()

    def poll(self, timeout: float) -> dict[int, Sequence[Fetched]]:
        self.polls += 1
        assert self.ends is not None
        out: dict[int, Sequence[Fetched]] = {}
        for p, log in enumerate(self.partitions):
            if p in self.paused:
                continue
            batch = [r for r in log if r.offset >= self.positions[p]][: self.chunk]
            if batch:
                out[p] = batch
                self.positions[p] = batch[-1].offset + 1
            if len(batch) < self.chunk and self.markers_at_end:
                self.positions[p] = max(self.positions[p], self.ends[p])
        if not out:
            self.clock.now += timeout  # a poll that found nothing waited its timeout
        return out

    def position(self, partition: int) -> int:
        return self.positions[partition]

    def pause(self, partition: int) -> None:
        self.paused.add(partition)

    def resume(self, partition: int) -> None:
        self.paused.discard(partition)


def _value(guid: str, type_id: int, lead: int) -> bytes:
    return orjson.dumps({"guid": guid, "type": type_id, "lead": lead})


def _keep(type_id: int, lead: int | None = None) -> Any:
    def keep(partition: int, record: Fetched) -> dict[str, Any] | None:
        if record.value is None or not record.value.startswith(b"{"):
            return None  # a tombstone, or a record that does not decode
        value = orjson.loads(record.value)
        if value["type"] != type_id or (lead is not None and value["lead"] != lead):
            return None
        return {"guid": value["guid"]}

    return keep


def _limits(batch_size: int = 300, **kwargs: Any) -> Limits:
    return Limits(
        batch_size,
        max_scan=kwargs.get("max_scan", 50_000),
        max_wait=kwargs.get("max_wait", 5.0),
        idle_timeout=kwargs.get("idle_timeout", 1.0),
        pause_at=kwargs.get("pause_at", 5000),
    )


def _page(log: Log, start: list[int], limits: Limits, keep: Any = None) -> Page:
    assert log.ends is not None
    log.start(start)
    return merge(log, start, log.ends, keep or _keep(1), limits, log.clock)


def _page_all(log: Log, batch_size: int, lead: int | None = None) -> list[str]:
    assert log.ends is not None
    offsets = [0] * len(log.partitions)
    guids: list[str] = []
    for _ in range(10_000):
        page = _page(log, offsets, _limits(batch_size), _keep(1, lead))
        guids += [r["guid"] for r in page.results]
        offsets = page.next_offsets
        if not page.stalled and all(n >= e for n, e in zip(offsets, log.ends, strict=True)):
            assert offsets == log.ends  # consumed to the end
            return guids
    raise AssertionError("the reads never reached the end")


@st.composite
def logs_st(draw: st.DrawFn) -> list[list[Record]]:
    logs: list[list[Record]] = []
    for p in range(draw(st.integers(1, 5))):
        offset, log = 0, []
        for i in range(draw(st.integers(0, 40))):
            offset += draw(st.sampled_from([1, 1, 1, 2]))  # gaps: compaction, markers
            kind = draw(st.sampled_from(["visit", "form", "junk", "tombstone"]))
            value = {
                "visit": _value(f"{p}-{i}", 1, 1 + i % 3),
                "form": _value(f"{p}-{i}", 2, 1 + i % 3),
                "junk": b"not json",
                "tombstone": None,
            }[kind]
            log.append(Record(offset, draw(st.integers(0, 20)), value))
        logs.append(log)
    return logs


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_every_matching_record_once_whatever_the_page_size(data: st.DataObject) -> None:
    logs = data.draw(logs_st())
    ends = [(log[-1].offset + 1 if log else 0) + data.draw(st.integers(0, 2)) for log in logs]
    log = Log(logs, Clock(), ends)
    visits = [r.value for part in logs for r in part if r.value and b'"type":1,' in r.value]
    reference = _page_all(log, 300)
    assert sorted(reference) == sorted(orjson.loads(v)["guid"] for v in visits)
    batch_size = data.draw(st.integers(1, 12))
    assert _page_all(log, batch_size) == reference  # same order in any page size
    lead = data.draw(st.integers(1, 3))
    assert _page_all(log, batch_size, lead) == [
        g for g in reference if int(g.split("-")[1]) % 3 + 1 == lead
    ]


def test_partitions_merge_by_timestamp_and_a_full_page_skips_nothing() -> None:
    logs = [
        [Record(0, 10, _value("a0", 1, 1)), Record(1, 30, _value("a1", 1, 1))],
        [Record(0, 20, _value("b0", 1, 2)), Record(1, 40, _value("b1", 1, 2))],
    ]
    log = Log(logs, Clock())
    page = _page(log, [0, 0], _limits(3))
    assert [r["guid"] for r in page.results] == ["a0", "b0", "a1"]
    assert page.next_offsets == [2, 1] and not page.stalled  # b1 read ahead, not consumed
    page = _page(log, page.next_offsets, _limits(3))
    assert [r["guid"] for r in page.results] == ["b1"]
    assert page.next_offsets == [2, 2]


def test_the_merge_waits_for_the_partition_behind() -> None:
    """Partition 1 delivers nothing for a while (less than idle_timeout): its records still
    come first by timestamp, in the same page."""
    logs = [
        [Record(i, 100 + i, _value(f"late-{i}", 1, 1)) for i in range(3)],
        [Record(i, i, _value(f"early-{i}", 1, 1)) for i in range(3)],
    ]
    log = Log(logs, Clock())
    real_poll = log.poll
    calls = {"n": 0}

    def slow_second(timeout: float) -> dict[int, Sequence[Fetched]]:
        calls["n"] += 1
        if calls["n"] <= 3:  # partition 1 is slow: only partition 0 answers
            log.paused.add(1)
            try:
                return real_poll(timeout) or {}
            finally:
                log.paused.discard(1)
        return real_poll(timeout)

    log.poll = slow_second  # type: ignore[method-assign]
    page = _page(log, [0, 0], _limits(300, idle_timeout=1.0))
    assert [r["guid"] for r in page.results] == [
        "early-0",
        "early-1",
        "early-2",
        "late-0",
        "late-1",
        "late-2",
    ]
    assert not page.stalled


def test_end_offsets_that_lie_do_not_hang_a_call() -> None:
    """End offset 10, records only up to 4, and no position past them: after idle_timeout
    of fake time, the page returns what it has, stalled (moreResult)."""
    records = [Record(i, i, _value(f"r{i}", 1, 1)) for i in range(5)]
    log = Log([records], Clock(), ends=[10], markers_at_end=False)
    page = _page(log, [0], _limits(300, idle_timeout=0.2))
    assert [r["guid"] for r in page.results] == [f"r{i}" for i in range(5)]
    assert page.stalled and page.next_offsets == [5]
    assert 0.2 <= log.clock.now < 0.5  # left after the idle timeout, not later
    assert log.polls < 10


def test_a_page_ends_at_max_wait_however_slowly_records_come() -> None:
    """A partition trickling one record per poll, each poll taking 0.5 s: the page returns
    at max_wait with what it has, the rest left for the next call."""
    clock = Clock()
    records = [Record(i, i, _value(f"r{i}", 1, 1)) for i in range(100)]
    log = Log([records], clock, chunk=1)
    real_poll = log.poll

    def slow(timeout: float) -> dict[int, Sequence[Fetched]]:
        clock.now += 0.5
        return real_poll(timeout)

    log.poll = slow  # type: ignore[method-assign]
    page = _page(log, [0], _limits(300, max_wait=5.0, idle_timeout=1.0))
    assert page.stalled
    assert 9 <= len(page.results) <= 11  # about 5 s / 0.5 s per record
    assert page.next_offsets == [len(page.results)]
    assert 5.0 <= clock.now < 6.0


def test_max_scan_bounds_a_selective_read() -> None:
    records = [Record(i, i, _value(f"f{i}", 2, 1)) for i in range(1000)]  # none matches
    log = Log([records], Clock(), chunk=100)
    page = _page(log, [0], _limits(300, max_scan=250))
    assert page.results == [] and page.next_offsets == [250]


def test_a_partition_far_ahead_is_paused_then_resumed() -> None:
    """Partition 0 has 40 records ahead in time of partition 1's first: it is paused at
    pause_at buffered records while partition 1 is waited for, then resumed."""
    ahead = [Record(i, 1000 + i, _value(f"a{i}", 1, 1)) for i in range(40)]
    behind = [Record(i, i, _value(f"b{i}", 1, 1)) for i in range(3)]
    log = Log([ahead, behind], Clock(), chunk=5)
    events: list[tuple[str, int]] = []
    real_pause, real_resume, real_poll = log.pause, log.resume, log.poll
    behind_silent = {"polls": 4}

    def poll(timeout: float) -> dict[int, Sequence[Fetched]]:
        if behind_silent["polls"] > 0:
            behind_silent["polls"] -= 1
            was_paused = 1 in log.paused
            log.paused.add(1)
            try:
                return real_poll(timeout)
            finally:
                if not was_paused:
                    log.paused.discard(1)
        return real_poll(timeout)

    def pause(partition: int) -> None:
        events.append(("pause", partition))
        real_pause(partition)

    def resume(partition: int) -> None:
        events.append(("resume", partition))
        real_resume(partition)

    log.poll, log.pause, log.resume = poll, pause, resume  # type: ignore[method-assign]
    page = _page(log, [0, 0], _limits(300, pause_at=10))
    assert ("pause", 0) in events and ("resume", 0) in events
    assert events.index(("pause", 0)) < events.index(("resume", 0))
    assert [r["guid"] for r in page.results] == [f"b{i}" for i in range(3)] + [
        f"a{i}" for i in range(40)
    ]
    assert not page.stalled and page.next_offsets == [40, 3]


def test_nothing_to_read_fetches_nothing() -> None:
    log = Log([[], []], Clock())
    page = _page(log, [0, 0], _limits())
    assert page == Page([], [0, 0], False) and log.polls == 0
