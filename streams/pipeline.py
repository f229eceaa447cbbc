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

An exception the engine raises on one record (a defect, not bad input: bad input is a
`Rejection` of the decoder) must not fail the batch: the replay would raise again, a crash
loop. Step 3 runs without any snapshot; when it raises, `_isolate` redoes the batch from
states loaded again (`Store.load` before `save` returns them as last saved) with a copy of
the lead's state before each record. The record the engine raises on becomes an
`engine_error` dead letter, its lead's state is the copy (nothing of its partial work
stays) plus a `seen` entry marked as faulted (`leadstate`), and every other record gets
the outcome it would have without it. The mark makes the fault deterministic: the same
record read again at the same position (a replay of the batch after a crash) is that dead
letter again, without evaluating it against a state that later records of the batch
changed; at another position (the record sent again, e.g. from the dead-letter topic once
the defect is fixed) it is evaluated afresh. Only exceptions of the evaluation itself are
isolated: the store's (`load`, `save`) and the caller's (Kafka) fail the batch as before.
The decoder raising (rather than returning a `Rejection`) is handled alike, by
`_decode_isolated`: nothing of the record reached a state, so there is nothing to undo.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeGuard

from streams import ENGINE
from streams.engine.activity import (
    INVALID_VALUE,
    MALFORMED,
    TYPE_NOT_APPROVED,
    UNKNOWN_ACTIVITY_TYPE,
    UNKNOWN_ATTRIBUTE,
    Activity,
    Decoder,
    Rejection,
    dead_letter,
)
from streams.engine.bounds import DEFAULT_LIMITS, Limits, drop_future, enforce
from streams.engine.compiler import Plan
from streams.engine.evaluator import DEFAULT_DEDUP_HORIZON_US, Engine
from streams.engine.leadstate import LeadState, SeenEntry
from streams.engine.standard_types import FIELD_TYPES
from streams.state.store import Store

if TYPE_CHECKING:
    from streams.engine.native import NativeProcessor

ENGINE_ERROR: Final = "engine_error"
"""The dead-letter code of a record the engine raised on (README: choices where the spec
is silent)."""
DEAD_LETTER_CODES: Final = (
    MALFORMED,
    UNKNOWN_ACTIVITY_TYPE,
    TYPE_NOT_APPROVED,
    UNKNOWN_ATTRIBUTE,
    INVALID_VALUE,
    ENGINE_ERROR,
)
"""Every code a dead letter of the pipeline carries: the spec's five and `engine_error`."""
ENGINE_ERROR_MAX_CHARS: Final = 300
"""The longest message of an `engine_error`, kept in the lead's `seen` too."""
_FAULT: Final = ""
"""The key that marks a `seen` entry as faulted (`leadstate`); no lead field has it."""

log = logging.getLogger(__name__)


class StatesNotIsolated(Exception):
    """The engine raised on a record, and the store's second `load` handed out the objects
    the first one did (`MemoryStore` without `copies`): the states before the batch are
    gone, so the batch cannot be redone here. The backtest runs again with copies.
    (An `Exception`, not a `RuntimeError`: mypyc, which compiles this module on the
    `compiled` branch, cannot compile a class that inherits from `RuntimeError`.)"""


class _Refault(Exception):
    """A record seen before was marked as faulted: the slow path decides what it is."""


@dataclass(frozen=True, slots=True)
class Record:
    value: bytes
    topic: str
    partition: int
    offset: int


class RecordLike(Protocol):
    """What the pipeline reads of a record: a `Record` (the backtest's), or any object with
    these attributes, such as the Faust `Message`s the worker fetched (handed over as they
    are: a copy per record cost the worker a few percent of its CPU at high rates). Only
    read, never changed."""

    @property
    def value(self) -> bytes: ...

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...


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
        *,
        native: bool = True,
    ) -> None:
        """`native` False: the Python engine even where the native core would run (tests
        of the Python engine's own workings)."""
        self.plan = plan
        self.store = store
        self.limits = limits
        self.engine = Engine(plan, dedup_horizon_us)
        self.decoder = Decoder(plan.catalog, limits.future_horizon_us)
        self.native: NativeProcessor | None = None
        """The native core beneath this processor (`engine.native`: chosen by
        `STREAMS_ENGINE`, for the plans and stores it supports; decided at the first
        batch), else None."""
        self._native_pending = native and ENGINE.native is not None

    async def process(self, records: Sequence[RecordLike], now_us: int) -> BatchResult:
        """`now_us` is the processing clock: the deduplication horizon and the future
        horizon of activity dates count from it."""
        if self._native_pending:
            self._native_pending = False
            from streams.engine.native import attach

            self.native = attach(self)
        if self.native is not None:
            if not self.native.stored:
                return BatchResult(*self.native.process(records, now_us))
            done = await self.native.process_stored(records, now_us)
            if done is not None:
                return BatchResult(*done)
            # The core failed on the batch: the Python engine redoes it (`NativeProcessor`).
        result = BatchResult()
        decode = self.decoder.decode
        letter_bytes = self.limits.dead_letter_record_max_bytes
        activities: list[Activity] = []
        try:
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
        except Exception:  # a defect of the decoder: each record on its own, out of this block
            decoded_all = False
        else:
            decoded_all = True
        if not decoded_all:
            activities, result.dead_letters = self._decode_isolated(records, now_us)
        if not activities:
            return result
        states = await self.store.load({a.lead_id for a in activities})
        future = now_us + self.limits.future_horizon_us
        for state in states.values():
            drop_future(state, future)
        process = self.engine.process
        limits = self.limits
        events = result.events
        try:
            for activity in activities:
                state = states[activity.lead_id]
                outcome = process(state, activity, now_us)
                enforce(state, limits, activity.type_id, activity.type_id in FIELD_TYPES)
                if outcome.duplicate:
                    if _faulted(state.seen.get(activity.id)):
                        raise _Refault  # the engine raised on it before: `_isolate` decides
                    result.duplicates += 1
                    continue
                if outcome.redelivered:
                    if _faulted(state.seen.get(activity.id)):
                        raise _Refault
                    result.redelivered += 1
                else:
                    result.accepted += 1
                events.extend(outcome.events)
        except Exception as exc:  # the engine's: redone record by record, out of this block
            fault: Exception | None = exc
        else:
            fault = None
        if fault is not None:
            letters = result.dead_letters  # the decoder's: the loop adds none
            states, result = await self._isolate(
                records, activities, letters, states, now_us, fault
            )
        await self.store.save(states)
        return result

    async def _isolate(
        self,
        records: Sequence[RecordLike],
        activities: list[Activity],
        rejected: list[dict[str, Any]],
        spoilt: dict[int, LeadState],
        now_us: int,
        cause: Exception,
    ) -> tuple[dict[int, LeadState], BatchResult]:
        """Step 3 again, record by record, from the states as last saved (module doc)."""
        states = await self.store.load(spoilt)
        if any(states[lead_id] is state for lead_id, state in spoilt.items()):
            raise StatesNotIsolated(
                "the engine raised on a record and the store hands out live states"
            ) from cause
        future = now_us + self.limits.future_horizon_us
        for state in states.values():
            drop_future(state, future)
        by_position = {f"{r.topic}/{r.partition}/{r.offset}": (n, r) for n, r in enumerate(records)}
        result = BatchResult()
        letters: list[tuple[int, dict[str, Any]]] = []
        limits = self.limits
        for activity in activities:
            lead_id = activity.lead_id
            number, record = by_position[activity.position]
            state = states[lead_id]
            seen = state.seen.get(activity.id)
            if _faulted(seen) and now_us - seen[0] <= self.engine.dedup_horizon_us:
                if seen[1] == activity.position:  # a replay: the same dead letter again
                    fault = Rejection(ENGINE_ERROR, seen[3][_FAULT])
                    letters.append((number, self._letter(record, fault)))
                    continue
                del state.seen[activity.id]  # sent again: evaluated afresh
            before = state.copy()
            try:
                outcome = self.engine.process(state, activity, now_us)
                enforce(state, limits, activity.type_id, activity.type_id in FIELD_TYPES)
            except Exception as exc:
                message = _fault(exc, activity.position, f"the engine (lead {lead_id})")
                before.seen.pop(activity.id, None)  # re-inserted last: processing order
                before.seen[activity.id] = [now_us, activity.position, [], {_FAULT: message}]
                enforce(before, limits, activity.type_id, False)
                states[lead_id] = before
                letters.append((number, self._letter(record, Rejection(ENGINE_ERROR, message))))
                continue
            if outcome.duplicate:
                result.duplicates += 1
                continue
            if outcome.redelivered:
                result.redelivered += 1
            else:
                result.accepted += 1
            result.events.extend(outcome.events)
        # Dead letters in record order, the decoder's and the engine's alike.
        for letter in rejected:
            position = f"{letter['topic']}/{letter['partition']}/{letter['offset']}"
            letters.append((by_position[position][0], letter))
        result.dead_letters = [letter for _, letter in sorted(letters, key=lambda n: n[0])]
        return states, result

    def _decode_isolated(
        self, records: Sequence[RecordLike], now_us: int
    ) -> tuple[list[Activity], list[dict[str, Any]]]:
        """The decoding of step 1 again, record by record: a record the decoder raises on
        (a defect: bad input is a `Rejection`) is an `engine_error` dead letter. Nothing
        about it reached a state, so there is nothing to undo."""
        activities: list[Activity] = []
        letters: list[dict[str, Any]] = []
        for record in records:
            decoded = self.decode_one(record, now_us)
            if isinstance(decoded, Activity):
                activities.append(decoded)
            else:
                letters.append(decoded)
        return activities, letters

    def decode_one(self, record: RecordLike, now_us: int) -> Activity | dict[str, Any]:
        """One record's activity, or its dead letter (an `engine_error` one when the decoder
        raises): step 1 for a record on its own (the native core's path for every record
        its fast path leaves to the Python decoder)."""
        position = f"{record.topic}/{record.partition}/{record.offset}"
        try:
            decoded = self.decoder.decode(record.value, position, now_us)
        except Exception as exc:
            decoded = Rejection(ENGINE_ERROR, _fault(exc, position, "the decoder"))
        if isinstance(decoded, Activity):
            return decoded
        return self._letter(record, decoded)

    def _letter(self, record: RecordLike, rejection: Rejection) -> dict[str, Any]:
        return dead_letter(
            record.value,
            rejection,
            record.topic,
            record.partition,
            record.offset,
            self.limits.dead_letter_record_max_bytes,
        )


def _fault(exc: Exception, position: str, where: str) -> str:
    """The message of an `engine_error`, logged once with the traceback."""
    message = f"{type(exc).__name__}: {exc}"[:ENGINE_ERROR_MAX_CHARS]
    log.error(
        "%s: %s raised on the record (%s); it goes to the dead letters as %s, and the "
        "lead's state stays as it was before it",
        position,
        where,
        message,
        ENGINE_ERROR,
        exc_info=exc,
    )
    return message


def _faulted(entry: SeenEntry | None) -> TypeGuard[SeenEntry]:
    """Whether a `seen` entry records a record the engine raised on (`leadstate`)."""
    return entry is not None and len(entry) > 3 and _FAULT in entry[3]
