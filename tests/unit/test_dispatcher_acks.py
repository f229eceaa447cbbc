"""Acks of the dispatcher: in each partition's order (`InOrderAcks`), and none by the
stream itself once the agent stops (`stop_stream_acks`), with the Faust internals they
rely on checked so that an upgrade changing them fails here."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from faust.streams import Stream
from faust.transport.consumer import Consumer
from intervaltree import IntervalTree

from streams.actions.acks import InOrderAcks
from streams.actions.dispatcher import stop_stream_acks


@dataclass
class Message:
    topic: str
    partition: int
    offset: int


@dataclass
class Event:
    message: Message
    acked: list[tuple[int, int]] = field(default_factory=list)

    def ack(self) -> None:
        self.acked.append((self.message.partition, self.message.offset))


def events(log: list[tuple[int, int]], partition: int, offsets: range) -> list[Event]:
    return [Event(Message("m", partition, o), log) for o in offsets]


def test_a_membership_is_acked_only_after_every_earlier_one_of_its_partition() -> None:
    log: list[tuple[int, int]] = []
    acks = InOrderAcks()
    tickets = [acks.receive(e) for e in events(log, 0, range(5))]
    for index in (4, 2, 1):
        assert acks.done(*tickets[index]) == 0
    assert log == [] and acks.pending() == 5
    assert acks.done(*tickets[0]) == 3
    assert log == [(0, 0), (0, 1), (0, 2)]
    assert acks.done(*tickets[3]) == 2
    assert log == [(0, o) for o in range(5)] and acks.pending() == 0


def test_partitions_are_independent() -> None:
    log: list[tuple[int, int]] = []
    acks = InOrderAcks()
    first = [acks.receive(e) for e in events(log, 0, range(2))]
    second = [acks.receive(e) for e in events(log, 1, range(2))]
    acks.done(*second[0])
    acks.done(*first[1])  # behind offset 0 of partition 0, still under way
    assert log == [(1, 0)]


def test_a_ticket_never_done_holds_back_its_partition() -> None:
    log: list[tuple[int, int]] = []
    acks = InOrderAcks()
    tickets = [acks.receive(e) for e in events(log, 0, range(3))]
    acks.done(*tickets[1])
    acks.done(*tickets[2])  # ticket 0 is cancelled at a stop: never done
    assert log == [] and acks.pending() == 3


def test_a_partition_received_again_starts_afresh() -> None:
    """Revoked and assigned again, a partition is read from its committed offset: the
    older tickets are forgotten (what they held is redelivered), the new ones ack."""
    log: list[tuple[int, int]] = []
    acks = InOrderAcks()
    old = [acks.receive(e) for e in events(log, 0, range(10, 13))]
    new = [acks.receive(e) for e in events(log, 0, range(10, 12))]
    acks.done(*new[0])
    acks.done(*new[1])
    acks.done(*old[1])
    assert log == [(0, 10), (0, 11)]


def test_after_stop_stream_acks_the_stream_acks_nothing_itself() -> None:
    class FakeStream:
        enable_acks = True

    stream = FakeStream()

    async def take() -> AsyncIterator[list[Any]]:
        stream.enable_acks = False
        try:
            yield []
            yield []
        finally:
            stream.enable_acks = True  # what noack_take does when closed

    async def scenario() -> None:
        generator = take()
        await anext(generator)
        assert stream.enable_acks is False
        await stop_stream_acks(stream, generator)

    asyncio.run(scenario())
    assert stream.enable_acks is False


def test_faust_reads_enable_acks_per_event_and_noack_take_restores_it() -> None:
    """The internals `stop_stream_acks` relies on (faust-streaming 0.15.x)."""
    iterator = inspect.getsource(Stream._py_aiter)
    assert "do_ack = self.enable_acks" in iterator
    noack = inspect.getsource(Stream.noack_take)
    assert "self.enable_acks = False" in noack
    assert "self.enable_acks = stream_enable_acks" in noack


def test_faust_commits_a_run_of_acks_that_skips_unacked_offsets_in_a_new_group() -> None:
    """Why `InOrderAcks` exists: if Faust ever checks that the run starts at the committed
    offset, this fails, and the in-order acking becomes a belt to keep, not a need."""

    tp = ("memberships", 0)
    state = SimpleNamespace(  # only the state `_new_offset` reads
        _acked={tp: list(range(1, 100))},  # offset 0 still calling
        _acked_index={tp: set(range(1, 100))},
        _gap={tp: IntervalTree()},
        _committed_offset={tp: None},
    )
    assert Consumer._new_offset(state, tp) == 100


def test_mode_stops_on_a_signal_through_stop_on_signal() -> None:
    """`run_worker(before_stop=...)` overrides `mode.Worker._stop_on_signal`, which the
    SIGINT/SIGTERM handlers schedule."""
    from mode.worker import Worker

    from streams.runtime.faust_app import _Worker

    assert "self._stop_on_signal(signal)" in inspect.getsource(Worker._schedule_shutdown)
    assert list(inspect.signature(Worker._stop_on_signal).parameters) == ["self", "signal"]
    assert issubclass(_Worker, Worker)
