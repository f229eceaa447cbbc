"""The native core's saves across batches (`stored.rs`: `payloads`, then `commit` moving the
checkpoint by what the payload changed) against `journal.write` on the Python engine's
states, byte for byte, batch by batch.

The core keeps a lead's checkpoint from one batch to the next (it is moved by `commit`, not
rebuilt from the whole history), while the reference (`JournalStore` of
test_history_index) remembers each lead afresh from what it stored: the same bytes prove
the checkpoint moved exactly. The streams hold long histories with pruning in the middle
(late activities past the retention), the bounds' trim, duplicates and redeliveries (`seen`
identities moved), Delete Lead (types gone), and journals outgrowing their snapshots (a
snapshot, then deltas again). Beneath the core is `CoreJournalStore`, the same layout in
memory as `RedisStore.load_core`/`save_core` use it (a lead the core holds is not read
again; a cold one is read natively from its snapshot and journal).

Skipped when there is no fresh native build (no cargo); under `CI=true` that fails.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams import ENGINE
from streams.engine.bounds import Limits
from streams.engine.leadstate import LeadState
from streams.pipeline import Processor, Record
from streams.state.codec import encode_state
from streams.state.journal import write
from tests.unit.test_history_index import NOW_US, JournalStore, load, ops, record
from tests.unit.test_history_index import write_index_rules as write_rules
from tests.unit.test_native_core import native  # noqa: F401  # the fixture

Written = list[dict[int, tuple[bool, bytes]]]
"""Per batch: per lead saved, (is a delta, the bytes stored)."""


class RecordingJournalStore(JournalStore):
    """The reference: `JournalStore`, each batch's payloads recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.written: Written = []

    async def save(self, states: Mapping[int, LeadState]) -> None:
        batch: dict[int, tuple[bool, bytes]] = {}
        for lead, state in states.items():
            is_delta, payload, _ = write(self.stored.pop(lead, None), state)
            batch[lead] = (is_delta, payload)
            if is_delta:
                self.journals[lead].append(payload)
                self.deltas += 1
            else:
                self.snapshots[lead], self.journals[lead] = payload, []
        self.written.append(batch)


class CoreJournalStore:
    """A snapshot and a journal per lead beneath the native core, as `RedisStore` keeps
    them for it; `cold` leads are forgotten by the core after each save (read again from
    their bytes), the others stay held with their checkpoints."""

    def __init__(self, cold: Collection[int] = ()) -> None:
        self.core: Any = None
        self.cold = set(cold)
        self.snapshots: dict[int, bytes] = {}
        self.journals: dict[int, list[bytes]] = {}
        self.written: Written = []

    def adopt_core(self, core: Any) -> None:
        self.core = core

    def release_core(self) -> None:
        raise AssertionError("the core was released")

    async def load_core(self, lead_ids: list[int]) -> None:
        core = self.core
        for lead in lead_ids:
            if lead in core:
                continue
            if lead in self.snapshots:
                assert core.read_stored(lead, self.snapshots[lead], self.journals[lead])
            else:
                core.put_state(lead, encode_state(LeadState()), 0, 0)

    async def save_core(self, lead_ids: list[int], payloads: list[tuple[int, bool, bytes]]) -> None:
        batch: dict[int, tuple[bool, bytes]] = {}
        for lead, is_delta, payload in payloads:
            batch[lead] = (is_delta, payload)
            if is_delta:
                self.journals[lead].append(payload)
            else:
                self.snapshots[lead], self.journals[lead] = payload, []
        self.written.append(batch)
        self.core.commit(lead_ids)
        self.core.evict([lead for lead in lead_ids if lead in self.cold])

    def evict_core(self, core: Any, lead_ids: list[int]) -> bool:
        core.evict(lead_ids)
        return False

    def count_core_fallback(self, reason: str) -> None:
        raise AssertionError(f"the core fell back: {reason}")

    async def load(self, lead_ids: Collection[int]) -> dict[int, LeadState]:
        raise AssertionError("the Python engine ran beneath the core's store")

    async def save(self, states: Mapping[int, LeadState]) -> None:
        raise AssertionError("the Python engine ran beneath the core's store")


@pytest.fixture(scope="module")
def index_rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_rules(tmp_path_factory.mktemp("rules"))


def _same_saves(
    rules: Path, records: list[Record], batch: int, limits: Limits, cold: Collection[int] = ()
) -> Written:
    """`records` `batch` at a time through the Python engine over `RecordingJournalStore`
    and through the core over `CoreJournalStore`: the same events and counters and the
    same bytes saved, batch by batch. Returns the reference's saves."""
    if ENGINE.native is None:
        pytest.skip(f"this process does not run the native core: {ENGINE.describe()}")
    plan = load(rules)

    async def run(store: Any, native_core: bool) -> list[Any]:
        processor = Processor(plan, store, limits=limits, native=native_core)
        outcomes = []
        for i in range(0, len(records), batch):
            got = await processor.process(records[i : i + batch], NOW_US)
            outcomes.append(
                (got.events, got.dead_letters, got.accepted, got.duplicates, got.redelivered)
            )
        assert (processor.native is not None) == native_core
        return outcomes

    reference, core_store = RecordingJournalStore(), CoreJournalStore(cold)
    want = asyncio.run(run(reference, False))
    got = asyncio.run(run(core_store, True))
    for n, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g == w, f"batch {n}"
    assert len(core_store.written) == len(reference.written)
    for n, (g, w) in enumerate(zip(core_store.written, reference.written, strict=True)):
        assert g.keys() == w.keys(), f"batch {n}"
        for lead in w:
            assert g[lead] == w[lead], f"batch {n}, lead {lead}"
    return reference.written


def _records(shaped: list[tuple[int, int, int, str, int, int]]) -> list[Record]:
    return [Record(record(op), "t", 0, i) for i, op in enumerate(shaped)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stream=st.lists(ops, min_size=1, max_size=300),
    batch=st.integers(1, 40),
    redeliver=st.integers(0, 3),
    limits=st.sampled_from(
        [Limits(), Limits(max_history=4), Limits(max_history=40, max_seen=12), Limits(max_seen=1)]
    ),
    cold=st.sampled_from([(), (1,), (1, 2, 3)]),
)
def test_the_cores_saves_are_journal_writes_batch_by_batch(
    native: Any,  # noqa: F811  # the fixture
    index_rules: Path,
    stream: list[Any],
    batch: int,
    redeliver: int,
    limits: Limits,
    cold: tuple[int, ...],
) -> None:
    """Generated streams (dates out of order over a retention of 3 hours, duplicates,
    Delete Lead, field changes), some batches delivered again, bounds small enough to trim
    history and `seen`, leads held across batches or read again after each save."""
    records = _records(stream)
    if redeliver:
        at = min(redeliver * batch, len(records))
        records = [*records[:at], *records[max(0, at - batch) : at], *records[at:]]
    written = _same_saves(index_rules, records, batch, limits, cold)
    assert written


@pytest.mark.parametrize(
    ("late_every", "late_by", "max_history", "batch"),
    [(10, 37, 20_000, 50), (2, 150, 20_000, 13), (10, 37, 300, 50), (3, 170, 20_000, 100)],
)
def test_a_long_history_pruned_in_the_middle_saves_as_journal_writes(
    native: Any,  # noqa: F811  # the fixture
    index_rules: Path,
    late_every: int,
    late_by: int,
    max_history: int,
    batch: int,
) -> None:
    """One busy lead (3,000 purchases, one a minute, a share of them late), beside a quiet
    one: the retention of 3 hours prunes on most activities, from the head and, for a late
    activity's entry past the retention, from further in; with `max_history` 300 the
    bounds trim too. Both kinds of drop and both kinds of save (delta, snapshot) occur."""
    shaped = [
        (
            0,
            1 + (i % 40 == 0),
            i - (late_by - i % 7 if i % late_every == 1 else 0),
            "xyz"[i % 3],
            i % 10,
            i,
        )
        for i in range(3000)
    ]
    shaped += [(0, 1, 2990 + i % 5, "x", 1, i % 25) for i in range(0, 60, 3)]  # duplicates
    written = _same_saves(index_rules, _records(shaped), batch, Limits(max_history=max_history))
    saves = [w[1] for w in written if 1 in w]
    deltas = [payload for is_delta, payload in saves if is_delta]
    assert len(deltas) > len(saves) // 2 and len(deltas) < len(saves)  # both kinds
    assert any(b'"100001":[[' in d for d in deltas), "no drop from further in"
    if late_every >= 10:  # else some entry is late past the retention in every batch
        assert any(re.search(rb'"100001":\[[1-9]', d) for d in deltas), "no drop from the head"
