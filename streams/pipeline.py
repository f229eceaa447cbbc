"""One batch of records through the engine: the code the backtest and the workers share.

Order, and why:
1. decode every record (a rejection becomes a dead letter and touches no state);
2. load the state of every lead in the batch in one call (and repair a state stored with
   dates beyond the future horizon, from before the decoder refused them);
3. evaluate the activities in record order (per-lead order is what the spec fixes), and
   bring each lead's state within the limits after each of its activities (`bounds`);
4. save the states in one call, atomic per lead;
5. the caller then writes events and dead letters, and only after that commits offsets.
A crash anywhere before 5 replays the batch: each activity is found in its lead's `seen`
at the same position, changes nothing, and re-emits the events it emitted the first time,
with the same `eventId`s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.engine.activity import Activity, Decoder, dead_letter
from streams.engine.bounds import DEFAULT_LIMITS, Limits, drop_future, enforce
from streams.engine.compiler import Plan
from streams.engine.evaluator import DEFAULT_DEDUP_HORIZON_US, Engine
from streams.engine.standard_types import FIELD_TYPES
from streams.state.store import Store


@dataclass(frozen=True, slots=True)
class Record:
    value: bytes
    topic: str
    partition: int
    offset: int


@dataclass
class BatchResult:
    events: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    redelivered: int = 0


class Processor:
    def __init__(
        self,
        plan: Plan,
        store: Store,
        dedup_horizon_us: int = DEFAULT_DEDUP_HORIZON_US,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.plan = plan
        self.store = store
        self.limits = limits
        self.engine = Engine(plan, dedup_horizon_us)
        self.decoder = Decoder(plan.catalog, limits.future_horizon_us)

    async def process(self, records: Sequence[Record], now_us: int) -> BatchResult:
        """`now_us` is the processing clock: the deduplication horizon and the future
        horizon of activity dates count from it."""
        result = BatchResult()
        decode = self.decoder.decode
        letter_bytes = self.limits.dead_letter_record_max_bytes
        activities: list[Activity] = []
        for record in records:
            position = f"{record.topic}/{record.partition}/{record.offset}"
            decoded = decode(record.value, position, now_us)
            if isinstance(decoded, Activity):
                activities.append(decoded)
            else:
                result.dead_letters.append(
                    dead_letter(
                        record.value,
                        decoded,
                        record.topic,
                        record.partition,
                        record.offset,
                        letter_bytes,
                    )
                )
        if not activities:
            return result
        states = await self.store.load({a.lead_id for a in activities})
        future = now_us + self.limits.future_horizon_us
        for state in states.values():
            drop_future(state, future)
        process = self.engine.process
        limits = self.limits
        events = result.events
        for activity in activities:
            state = states[activity.lead_id]
            outcome = process(state, activity, now_us)
            enforce(state, limits, activity.type_id, activity.type_id in FIELD_TYPES)
            if outcome.duplicate:
                result.duplicates += 1
                continue
            if outcome.redelivered:
                result.redelivered += 1
            else:
                result.accepted += 1
            events.extend(outcome.events)
        await self.store.save(states)
        return result
