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
from streams.engine.evaluator import Engine
from streams.engine.leadstate import LeadState
from streams.pipeline import Processor, Record
from streams.state.codec import decode_state, encode_state
from streams.state.journal import apply_delta, write
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
    rules: Path,
    records: list[Record],
    batch: int,
    limits: Limits,
    cold: Collection[int] = (),
    reloads: Mapping[int, int] | None = None,
) -> Written:
    """`records` `batch` at a time through the Python engine over `RecordingJournalStore`
    and through the core over `CoreJournalStore`: the same events and counters and the
    same bytes saved, batch by batch. `reloads`: before the batch of that number, a new
    plan (a hot reload) with a retention of that many hours. Returns the reference's
    saves."""
    if ENGINE.native is None:
        pytest.skip(f"this process does not run the native core: {ENGINE.describe()}")
    plan = load(rules)

    async def run(store: Any, native_core: bool) -> list[Any]:
        processor = Processor(plan, store, limits=limits, native=native_core)
        outcomes = []
        for n, i in enumerate(range(0, len(records), batch)):
            if reloads and n in reloads:
                processor.engine = Engine(load(rules, reloads[n]))
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


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stream=st.lists(ops, min_size=1, max_size=300),
    batch=st.integers(1, 40),
    hours=st.lists(st.sampled_from([1, 2, 3, 12]), min_size=1, max_size=4),
    every=st.integers(1, 4),
    cold=st.sampled_from([(), (1, 2, 3)]),
)
def test_a_hot_reload_changing_the_retention_saves_as_journal_writes(
    native: Any,  # noqa: F811  # the fixture
    index_rules: Path,
    stream: list[Any],
    batch: int,
    hours: list[int],
    every: int,
    cold: tuple[int, ...],
) -> None:
    """A new plan every few batches with another retention (1 to 12 hours): a shorter one
    prunes much of a held lead's history at its next activity (from the head and, with
    dates out of order, from further in); the checkpoints held across the reload move as
    the payloads changed, byte for byte the reference's."""
    reloads = {n * every: h for n, h in enumerate(hours, start=1)}
    written = _same_saves(index_rules, _records(stream), batch, Limits(), cold, reloads)
    assert written


def _replayed(snapshot: bytes, journal: list[bytes]) -> bytes:
    """What a store holds, read back in Python (`decode_state`, `apply_delta`)."""
    state = decode_state(snapshot)
    for delta in journal:
        apply_delta(state, delta)
    return encode_state(state)


class UnreliableCoreStore(CoreJournalStore):
    """`CoreJournalStore` where the saves of some batches (`lost`) are handed out by the
    core but never stored nor committed, and the lead stays held with its checkpoint (the
    core's own contract: a checkpoint moves only on `commit`, so the next payload is still
    computed against what the store holds); where `twice`, the core hands the payloads out
    once more before the ones stored (the last handed out is the one `commit` takes).
    After each save stored, what the store holds, read back in Python, is the state the
    core holds."""

    def __init__(self, lost: Collection[int], twice: Collection[int]) -> None:
        super().__init__()
        self.lost, self.twice = set(lost), set(twice)
        self.batches = 0
        self.checked = 0

    async def save_core(self, lead_ids: list[int], payloads: list[tuple[int, bool, bytes]]) -> None:
        n, self.batches = self.batches, self.batches + 1
        if n in self.lost:
            return
        if n in self.twice:
            again = self.core.payloads(lead_ids)
            assert again == payloads  # nothing changed in between
            payloads = again
        await super().save_core(lead_ids, payloads)
        for lead in lead_ids:
            held = self.core.encode_state(lead)
            assert _replayed(self.snapshots[lead], self.journals[lead]) == held, (n, lead)
            self.checked += 1

    async def flush(self) -> None:
        """Every lead held saved (what the lost saves left out included)."""
        self.lost.clear()
        leads = list(self.core.lead_ids())
        await self.save_core(leads, self.core.payloads(leads))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stream=st.lists(ops, min_size=2, max_size=300),
    batch=st.integers(1, 30),
    lost=st.sets(st.integers(0, 30), max_size=10),
    twice=st.sets(st.integers(0, 30), max_size=10),
    limits=st.sampled_from([Limits(), Limits(max_history=4), Limits(max_seen=3)]),
)
def test_a_save_never_stored_leaves_the_checkpoint_where_the_store_is(
    native: Any,  # noqa: F811  # the fixture
    index_rules: Path,
    stream: list[Any],
    batch: int,
    lost: set[int],
    twice: set[int],
    limits: Limits,
) -> None:
    """Payloads handed out and never committed (a save lost, the lead still held), and
    payloads handed out twice before one commit: the next save stored makes the store hold
    exactly the core's state (checked after every save stored); once every lead is saved
    at the end, the store holds the Python engine's states."""
    if ENGINE.native is None:
        pytest.skip(f"this process does not run the native core: {ENGINE.describe()}")
    records = _records(stream)
    store = UnreliableCoreStore(lost, twice)
    reference = RecordingJournalStore()

    async def run(store: Any, native_core: bool) -> None:
        processor = Processor(load(index_rules), store, limits=limits, native=native_core)
        for i in range(0, len(records), batch):
            await processor.process(records[i : i + batch], NOW_US)
        assert (processor.native is not None) == native_core
        if native_core:
            await store.flush()

    asyncio.run(run(reference, False))
    asyncio.run(run(store, True))
    assert store.checked
    assert {
        lead: _replayed(store.snapshots[lead], store.journals[lead]) for lead in store.snapshots
    } == reference.states()


def test_an_entry_trimmed_beside_an_equal_one_appended_saves_as_journal_writes(
    native: Any,  # noqa: F811  # the fixture
    index_rules: Path,
) -> None:
    """The bounds' trim drops, of two equal entries (same date, item and attributes, two
    identities), the one stored and keeps the one appended: `journal._diff` compares the
    kept part by equality (the appended one stands for the stored one), the core by
    sequence number; the bytes must be the same all the same."""
    shaped = [
        (0, 1, 10, "x", 2, 1),  # a: the oldest, trimmed
        (0, 1, 50, "x", 2, 2),  # b: kept
        (0, 1, 20, "x", 2, 3),  # c: trimmed
        (0, 1, 20, "x", 2, 203),  # c': an entry equal to c's (the same `due`), kept
        (0, 1, 60, "x", 2, 4),  # d: kept
    ]
    written = _same_saves(index_rules, _records(shaped), 3, Limits(max_history=3))
    assert [is_delta for w in written for is_delta, _ in w.values()] == [False, True]


def test_a_type_new_to_a_lead_below_one_it_has_saves_as_journal_writes(
    native: Any,  # noqa: F811  # the fixture
    index_rules: Path,
) -> None:
    """A lead with purchases (type 100001) gets its first field change (type 13) and a
    purchase in one batch: the delta names both types, in the order of their ids (the
    core's history is ordered by id, the Python state's by when the lead got each type)."""
    shaped = [(0, 1, 100 + i, "x", 2, i) for i in range(20)]
    shaped += [(1, 1, 130, "x", 2, 30), (0, 1, 131, "x", 2, 31)]
    written = _same_saves(index_rules, _records(shaped), 20, Limits())
    delta = written[1][1]
    assert delta[0] and delta[1].startswith(b'{"d":1,"h":{"13":[0,[[')
