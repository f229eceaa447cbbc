"""Acking memberships in each partition's order, whatever order their calls end in.

Why: Faust commits, per partition, the end of the *first* run of consecutive acked
offsets, and checks that this run starts at the committed offset only when one is known
and non-zero (faust-streaming 0.15.3, `Consumer._new_offset`). In a new consumer group,
with memberships handled concurrently, offset 0 still calling while 1..99 were acked
committed 100: offset 0 was never called again (a lost call, found by
tests/integration/test_dispatcher.py). So a membership is acked only once it and every
membership received before it in its partition have ended; the acked offsets of a
partition are then always a prefix of what was received, which Faust commits correctly.

Invariants: `done(ticket)` acks nothing out of order; a ticket never done (its task was
cancelled at a stop) holds back every later ack of its partition, so those memberships
are redelivered. A record received again at or below an offset already held (the
partition was revoked and assigned again) starts that partition afresh: the older tickets
are never acked, and what they held is redelivered.
"""

from __future__ import annotations

from collections import deque
from typing import Any


class Ticket:
    __slots__ = ("ended", "event", "offset")

    def __init__(self, event: Any, offset: int) -> None:
        self.event = event
        self.offset = offset
        self.ended = False


class InOrderAcks:
    def __init__(self) -> None:
        self._queues: dict[tuple[str, int], deque[Ticket]] = {}

    def receive(self, event: Any) -> tuple[tuple[str, int], Ticket]:
        """Register an event, in the order the stream gives them."""
        message = event.message
        key = (message.topic, message.partition)
        queue = self._queues.setdefault(key, deque())
        if queue and queue[-1].offset >= message.offset:
            queue = self._queues[key] = deque()
        ticket = Ticket(event, message.offset)
        queue.append(ticket)
        return key, ticket

    def done(self, key: tuple[str, int], ticket: Ticket) -> int:
        """Mark a membership ended; ack it and the ended ones after it if nothing before
        them is still under way. Returns how many were acked."""
        ticket.ended = True
        queue = self._queues.get(key)
        acked = 0
        while queue and queue[0].ended:
            queue.popleft().event.ack()
            acked += 1
        return acked

    def pending(self) -> int:
        """Memberships received and not acked yet (under way, or ended behind one that is)."""
        return sum(len(queue) for queue in self._queues.values())
