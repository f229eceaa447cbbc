"""The native core beneath the worker's store (`RedisStore.load_core` / `save_core`,
`engine.native.NativeProcessor.process_stored`) against the Python engine on the same
store, on a real redis-server.

Each comparison runs the same batches through a worker-shaped `Processor` (a `TimedStore`
over a `RedisStore`, hot reloads as `hot_reload.switch_between_batches` makes them: a new
`Processor` over the same store) twice, in fresh namespaces seeded alike: once with
`native=False` (the Python engine, the reference) and once with the core. Both must give
the same events (eventIds, bytes, order), dead letters and counters per batch, and leave
the same Redis contents: per lead, the state decoded from snapshot + journal and its
generation. The streams are the indexed-evaluator test's (late dates, duplicates,
redeliveries, Delete Lead, field changes, pruning, trimming) made hostile, and the sample
stream over the sample rules; with the cache on (trusted, or checked with `HGET ver`) and
off, plan switches mid-stream (and to a plan the core refuses, and back), states seeded in
every format version (v1, v2, v3 with a journal), leads whose journal outgrows its
snapshot, and faults in the core (a Python callback raising inside it; a record its lead's
`seen` marks as faulted by the Python engine's isolation).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from streams import ENGINE
from streams.devstack.redis_cluster import RedisClusterStack
from streams.engine import native
from streams.engine.bounds import Limits
from streams.engine.compiler import Plan, load_plan
from streams.engine.datatypes import datetime_to_us
from streams.engine.evaluator import Engine
from streams.engine_select import ROOT
from streams.pipeline import Processor, Record
from streams.runtime.worker import TimedStore
from streams.samples import sample_activities
from streams.state.codec import encode_state
from streams.state.redis_client import redis_client
from streams.state.redis_store import RedisStore
from tests.unit.test_compiled_engine import mutate, mutations
from tests.unit.test_history_index import CAMPAIGNS, NOW_US, TYPE, ops, record
from tests.unit.test_native_core import LIMITS

pytestmark = pytest.mark.integration

TTL_MS = 10 * 60 * 1000
SAMPLE_NOW = datetime_to_us(datetime(2026, 9, 1, tzinfo=UTC))
Batches = list[list[tuple[bytes, str, int, int]]]


@pytest.fixture(scope="module", autouse=True)
def core_built() -> None:
    if ENGINE.native is None:
        message = f"no native core to compare: {ENGINE.describe()}"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="module")
def index_rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rules")
    (root / "activity-types").mkdir()
    (root / "campaigns").mkdir()
    (root / "activity-types" / "buy.yaml").write_text(TYPE)
    for name, body in CAMPAIGNS.items():
        (root / "campaigns" / f"{name}.yaml").write_text(body)
    return root


class Plans:
    """The plans a run switches between, by name: each switch builds a fresh `Plan` (what
    a hot reload does), "refused" one the core does not run (a retention beyond its
    bound)."""

    def __init__(self, rules: Path, retention_us: int | None) -> None:
        self.rules = rules
        self.retention_us = retention_us

    def plan(self, name: str) -> Plan:
        if name == "refused":
            return load_plan(self.rules, native.MAX_SPAN_US + 1)
        if name == "short":
            return load_plan(self.rules, 3 * 3_600_000_000)
        if self.retention_us is None:
            return load_plan(self.rules)
        return load_plan(self.rules, self.retention_us)


async def _contents(
    url: str, app_id: str, leads: set[int], cluster: bool = False
) -> dict[int, tuple[bytes, bytes]]:
    """Per lead: (the state as snapshot + journal decode to, its generation)."""
    client = redis_client(url, cluster=cluster)
    try:
        store = RedisStore(client, app_id, TTL_MS)
        states = await store.load(sorted(leads))
        out = {}
        for lead, state in states.items():
            ver = await client.hget(store.key(lead), b"ver")
            out[lead] = (encode_state(state), ver or b"")
        return out
    finally:
        await client.aclose()


async def _seed(url: str, app_id: str, seeds: dict[int, tuple[str, bytes, list[bytes]]]) -> None:
    client = redis_client(url)
    try:
        store = RedisStore(client, app_id, TTL_MS)
        for lead, (_, snapshot, journal) in seeds.items():
            await client.hset(store.key(lead), mapping={b"state": snapshot, b"ver": b"7"})
            if journal:
                await client.rpush(store.journal_key(lead), *journal)
    finally:
        await client.aclose()


@asynccontextmanager
async def _stored_by_python(
    url: str, plans: Plans, batches: Batches, now_us: int
) -> AsyncIterator[tuple[RedisStore, list[int]]]:
    """A new app's store after the Python engine processed `batches` at `now_us` on it,
    and the leads it holds in Redis (sorted); its client is closed on leaving."""
    app_id = f"seed-{uuid.uuid4().hex[:12]}"
    client = redis_client(url)
    try:
        store = RedisStore(client, app_id, TTL_MS)
        processor = Processor(plans.plan("default"), store, native=False)
        for batch in batches:
            await processor.process([Record(*r) for r in batch], now_us)
        leads = sorted(
            int(k.split(b"{")[1].split(b"}")[0])
            for k in await client.keys(f"{app_id}:lead:*".encode())
        )
        yield store, leads
    finally:
        await client.aclose()


def _old_formats(
    url: str, plans: Plans, batches: Batches
) -> dict[int, tuple[str, bytes, list[bytes]]]:
    """States of every format version, made by the Python engine over `batches`: the
    first lead as version 1 (no `v`, three-member `seen` entries), the second as version
    2, the others as this version's snapshot plus its journal, as stored."""

    async def go() -> dict[int, tuple[str, bytes, list[bytes]]]:
        async with _stored_by_python(url, plans, batches, NOW_US) as (store, leads):
            seeds: dict[int, tuple[str, bytes, list[bytes]]] = {}
            for n, lead in enumerate(leads):
                if n < 2:
                    state = (await store.load([lead]))[lead]
                    data = orjson.loads(encode_state(state))
                    data["s"] = {k: v[:3] for k, v in data["s"].items()}
                    if n == 0:
                        del data["v"]
                    else:
                        data["v"] = 2
                    seeds[lead] = (f"v{n + 1}", orjson.dumps(data), [])
                else:
                    snapshot = await store.client.hget(store.key(lead), b"state")
                    journal = await store.client.lrange(store.journal_key(lead), 0, -1)
                    seeds[lead] = ("v3", snapshot, journal)
            return seeds

    return asyncio.run(go())


def run(
    url: str,
    plans: Plans,
    batches: Batches,
    *,
    use_core: bool,
    now_us: int,
    cache_leads: int = 1000,
    check_cached: bool = False,
    switches: dict[int, str] | None = None,
    seeds: dict[int, tuple[str, bytes, list[bytes]]] | None = None,
    limits: Limits | None = None,
    index_from: Any = "default",
    cluster: bool = False,
    fallbacks: list[str] | None = None,
    failing_saves: dict[int, str] | None = None,
) -> tuple[list[Any], dict[int, tuple[bytes, bytes]], int]:
    """(per batch: events, dead letters, counters; Redis contents per lead; batches the
    core ran). `fallbacks` gets the reason of each batch the core hands to the Python
    engine (`RedisStore.on_core_fallback`). `failing_saves`: batch number -> how its save
    fails (`_flaky_saves`); the batch is then evaluated again, as the worker's replay
    would, and that outcome is the batch's."""

    async def go() -> tuple[list[Any], dict[int, tuple[bytes, bytes]], int]:
        app_id = f"nw-{uuid.uuid4().hex[:12]}"
        if seeds:
            await _seed(url, app_id, seeds)
        client = redis_client(url, cluster=cluster)
        store = RedisStore(
            client,
            app_id,
            TTL_MS,
            cache_leads=cache_leads,
            check_cached=check_cached,
            on_core_fallback=None if fallbacks is None else fallbacks.append,
        )
        timed = TimedStore(store)
        limit = limits or Limits()
        failing = _flaky_saves(store)

        def processor(plan: Plan) -> Processor:
            made = Processor(plan, timed, limits=limit, native=use_core)
            if index_from != "default":
                made.engine = Engine(plan, index_from=index_from)
            return made

        current = processor(plans.plan("default"))
        outcomes: list[Any] = []
        leads: set[int] = set(seeds or ())
        ran_core = 0
        try:
            for n, batch in enumerate(batches):
                if switches and n in switches:
                    current = processor(plans.plan(switches[n]))
                records = [Record(*r) for r in batch]
                if failing_saves and n in failing_saves:
                    failing.append(failing_saves[n])
                    with pytest.raises((RedisConnectionError, RedisTimeoutError)):
                        await current.process(records, now_us)
                    assert not failing, "the save of the batch did not run"
                got = await current.process(records, now_us)
                if current.native is not None:
                    assert store.core is not None
                    ran_core += 1
                if store.core is not None:  # between batches: the leads cached, no other
                    assert set(store.core.lead_ids()) == set(store._held), f"batch {n}"
                outcomes.append(
                    (
                        [orjson.dumps(e) for e in got.events],
                        [orjson.dumps(d) for d in got.dead_letters],
                        got.accepted,
                        got.duplicates,
                        got.redelivered,
                    )
                )
                leads |= {e["leadId"] for e in got.events}
                for r in records:
                    try:
                        lead = orjson.loads(r.value)["leadId"]
                    except Exception:
                        continue
                    if type(lead) is int and 0 < lead < 2**62:
                        leads.add(lead)
        finally:
            await client.aclose()
        return outcomes, await _contents(url, app_id, leads, cluster), ran_core

    return asyncio.run(go())


def _flaky_saves(store: RedisStore) -> list[str]:
    """The store's saves, failing as the returned list asks (one mode per save, taken by
    the save): "applied", the save is stored on the server and then its reply is lost (a
    timeout); "one failed", every lead's call but one's is stored (the lead of the highest
    id), that one's reply is an error (on a Redis Cluster: one master's call failed, the
    others' not)."""
    real_run = store._run
    failing: list[str] = []

    async def flaky(calls: list[Any]) -> list[Any]:
        if not failing:
            return await real_run(calls)
        mode = failing.pop()
        if mode == "applied":
            await real_run(calls)
            raise RedisTimeoutError("injected: the save was applied, its reply lost")
        assert mode == "one failed"
        lost = max(calls, key=lambda c: c.lead_id)  # the same lead on either engine
        replies = iter(await real_run([c for c in calls if c is not lost]))
        error = RedisConnectionError("injected: one call failed")
        return [error if c is lost else next(replies) for c in calls]

    store._run = flaky  # type: ignore[method-assign]
    return failing


def same(url: str, plans: Plans, batches: Batches, **options: Any) -> list[Any]:
    """Both runs, compared; returns the reference's outcomes."""
    want, want_redis, python_ran = run(url, plans, batches, use_core=False, **options)
    got, got_redis, core_ran = run(url, plans, batches, use_core=True, **options)
    assert python_ran == 0
    assert core_ran > 0 or not batches, "the core never ran"
    assert len(got) == len(want)
    for n, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g == w, f"batch {n}"
    assert got_redis.keys() == want_redis.keys()
    for lead, stored in want_redis.items():
        assert got_redis[lead] == stored, f"lead {lead}"
    return want


def index_batches(
    stream: list[Any], hostile: list[tuple[int, Any]], batch: int, drift: list[int], redeliver: int
) -> Batches:
    minutes = 0
    values = []
    for i, (kind, lead, late, item, qty, guid) in enumerate(stream):
        minutes += drift[i % len(drift)] * 7
        values.append(record((kind, lead, minutes - (late if late < 300 else 0), item, qty, guid)))
    for i, mutation in hostile:
        if i < len(values):
            values[i] = mutate(values[i], mutation)
    records = [(v, "t", 0, i) for i, v in enumerate(values)]
    batches = [records[i : i + batch] for i in range(0, len(records), batch)]
    if redeliver and batches:
        at = min(redeliver, len(batches))
        batches.insert(at, batches[at - 1])
    return batches


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stream=st.lists(ops, min_size=1, max_size=120),
    hostile=st.lists(st.tuples(st.integers(0, 119), mutations), max_size=8),
    batch=st.integers(1, 30),
    drift=st.lists(st.integers(0, 4), min_size=1, max_size=4),
    redeliver=st.integers(0, 5),
    cache=st.sampled_from([(1000, False), (1000, True), (0, False), (2, False)]),
    switch=st.sampled_from([{}, {2: "short"}, {1: "refused", 3: "default"}, {2: "default"}]),
    limits=st.just(Limits()) | st.just(Limits(max_history=4)) | LIMITS,
    index_from=st.sampled_from(["default", None, 3]),
    seeded=st.booleans(),
)
def test_the_core_beneath_the_redis_store_matches_the_python_engine(
    redis_url: str,
    index_rules: Path,
    stream: list[Any],
    hostile: list[tuple[int, Any]],
    batch: int,
    drift: list[int],
    redeliver: int,
    cache: tuple[int, bool],
    switch: dict[int, str],
    limits: Limits,
    index_from: Any,
    seeded: bool,
) -> None:
    plans = Plans(index_rules, 3 * 3_600_000_000)
    batches = index_batches(stream, hostile, batch, drift, redeliver)
    seeds = None
    if seeded:  # the stream's first half, stored in every format version, then all of it
        seeds = _old_formats(redis_url, plans, batches[: len(batches) // 2 + 1])
    same(
        redis_url,
        plans,
        batches,
        now_us=NOW_US,
        cache_leads=cache[0],
        check_cached=cache[1],
        switches=switch,
        seeds=seeds,
        limits=limits,
        index_from=index_from,
    )


def sample_batches(seed: int, batch: int, count: int = 600, leads: int = 40) -> Batches:
    values = [orjson.dumps(a) for a in sample_activities(count, leads=leads, seed=seed)]
    values += [b"not json", b'{"leadId": 1, "activityTypeId": 999999}']  # dead letters
    records = [(v, "activities", 0, i) for i, v in enumerate(values)]
    return [records[i : i + batch] for i in range(0, len(records), batch)]


@pytest.mark.parametrize(
    ("batch", "cache_leads", "check_cached"), [(100, 1000, False), (37, 0, False), (250, 5, True)]
)
def test_the_sample_stream_matches_and_is_not_empty(
    redis_url: str, batch: int, cache_leads: int, check_cached: bool
) -> None:
    plans = Plans(ROOT / "rules", None)
    want = same(
        redis_url,
        plans,
        sample_batches(1, batch),
        now_us=SAMPLE_NOW,
        cache_leads=cache_leads,
        check_cached=check_cached,
        switches={3: "default"},
    )
    assert sum(len(events) for events, *_ in want) > 0
    assert sum(len(letters) for _, letters, *_ in want) >= 2


def test_the_sample_stream_matches_on_a_redis_cluster(redis_cluster: RedisClusterStack) -> None:
    """On a Redis Cluster (one script call per lead, split by slot) as on one Redis."""
    plans = Plans(ROOT / "rules", None)
    same(
        redis_cluster.url,
        plans,
        sample_batches(6, 120, count=400),
        now_us=SAMPLE_NOW,
        cluster=True,
        switches={2: "default"},
    )


def test_a_busy_lead_outgrows_its_journal_and_is_snapshotted(redis_url: str) -> None:
    """One lead, many batches: its journal outgrows the snapshot, which is then rewritten
    (both paths), and the core's deltas replay to the Python engine's states."""
    plans = Plans(ROOT / "rules", None)
    values = [orjson.dumps(a) for a in sample_activities(900, leads=1, seed=5)]
    records = [(v, "activities", 0, i) for i, v in enumerate(values)]
    batches = [records[i : i + 9] for i in range(0, len(records), 9)]
    same(redis_url, plans, batches, now_us=SAMPLE_NOW)
    written: list[bytes] = []

    async def modes() -> None:  # what the core writes: deltas, and snapshots now and then
        client = redis_client(redis_url)
        store = RedisStore(client, f"nw-{uuid.uuid4().hex[:12]}", TTL_MS, cache_leads=10)
        processor = Processor(plans.plan("default"), store)
        original = store._store

        async def spy(calls: Any) -> Any:
            written.extend(c.mode for c in calls)
            return await original(calls)

        store._store = spy  # type: ignore[method-assign]
        try:
            for batch in batches:
                await processor.process([Record(*r) for r in batch], SAMPLE_NOW)
            assert processor.native is not None
        finally:
            await client.aclose()

    asyncio.run(modes())
    assert written.count(b"s") >= 2 and written.count(b"d") > written.count(b"s"), written


@pytest.fixture
def faulty_parse(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The core's callback for a field read as a date raises on every other call (the
    Python engine does not use it): the core fails on those batches."""
    calls: list[str] = []
    real = native._parse

    def parse(kind: int, text: str) -> float | int | None:
        calls.append(text)
        if len(calls) % 2:
            raise RuntimeError(f"boom on {text!r}")
        return real(kind, text)

    monkeypatch.setattr(native, "_parse", parse)
    yield calls


def test_a_fault_in_the_core_redoes_the_batch_on_the_python_engine(
    redis_url: str, faulty_parse: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The core raising on a batch (a callback of its raising) evicts the batch's leads
    and the Python engine redoes it: the same outcome as the Python engine throughout,
    the partition goes on, and the next batches run on the core again."""
    plans = Plans(ROOT / "rules", None)
    same(redis_url, plans, sample_batches(2, 50), now_us=SAMPLE_NOW)
    assert len(faulty_parse) >= 2, "the fault was never injected"
    assert "the native core failed on a batch" in caplog.text


def test_a_record_marked_as_faulted_is_the_same_dead_letter_again(
    redis_url: str, index_rules: Path
) -> None:
    """A batch whose record the Python engine raised on (its `seen` entry marked as
    faulted, `engine_error`), read again at the same position (a replay after a crash):
    the core hands the batch to the Python engine, which gives the same dead letter."""
    plans = Plans(index_rules, 3 * 3_600_000_000)
    stream = [(0, 1 + i % 3, 10 * i, "x", i, i) for i in range(20)]
    batches = index_batches(stream, [], 20, [1], 0)

    async def marked() -> dict[int, tuple[str, bytes, list[bytes]]]:
        """What the Python engine's isolation stores when its engine raises on "g7" (a
        compiled `Engine` cannot be subclassed to raise): the batch without it, and its
        lead's `seen` entry marked as faulted."""
        app_id = f"seed-{uuid.uuid4().hex[:12]}"
        client = redis_client(redis_url)
        try:
            store = RedisStore(client, app_id, TTL_MS)
            processor = Processor(plans.plan("default"), store, native=False)
            others = [Record(*r) for r in batches[0] if r[3] != 7]
            await processor.process(others, NOW_US)
            lead = stream[7][1]
            state = (await store.load([lead]))[lead]
            state.seen["g7"] = [NOW_US, "t/0/7", [], {"": "RuntimeError: boom"}]
            await store.save({lead: state})
            seeds = {}
            for lead in (1, 2, 3):
                snapshot = await client.hget(store.key(lead), b"state")
                journal = await client.lrange(store.journal_key(lead), 0, -1)
                seeds[lead] = ("v3", snapshot, journal)
            return seeds
        finally:
            await client.aclose()

    seeds = asyncio.run(marked())
    want = same(redis_url, plans, batches, now_us=NOW_US, seeds=seeds)
    letters = [orjson.loads(d) for d in want[0][1]]
    assert [d["error"]["code"] for d in letters] == ["engine_error"]


@pytest.mark.parametrize("evict_fails", [False, True])
def test_a_state_the_core_cannot_hold_runs_on_the_python_engine(
    redis_url: str,
    index_rules: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    evict_fails: bool,
) -> None:
    """A stored state with a value beyond the core's integers (an attribute of 2**63, which
    JSON and the Python engine take): its batches run on the Python engine, every time,
    and the others on the core; each such batch is counted (`on_core_fallback`), the lead
    named in one WARNING, not one per batch, with what the core cannot hold and where.
    `evict_fails`: the core panics evicting the first such batch's leads: it drops every
    lead, and that failure of the core is counted as one `fault` besides (not hidden in
    `cannot_hold`), the outcome the same."""
    monkeypatch.setattr(native, "CANNOT_HOLD_LOG", native.CannotHoldLog())
    if evict_fails:
        _wrap_cores(monkeypatch, _EvictFailsAfterRefusing)
    plans = Plans(index_rules, 3 * 3_600_000_000)
    stream = [(0, 1 + i % 3, 10 * i, "x", i, i) for i in range(30)]
    batches = index_batches(stream, [], 5, [1], 0)
    big = orjson.dumps(
        {
            "v": 3,
            "h": {"100001": [[NOW_US - 10**9, "x", {"qty": 2**63}]]},
            "f": {},
            "r": {},
            "s": {},
            "m": NOW_US - 10**9,
        }
    )
    fallbacks: list[str] = []
    with caplog.at_level("WARNING", logger="streams"):
        want = same(
            redis_url,
            plans,
            batches,
            now_us=NOW_US,
            seeds={2: ("v3", big, [])},
            fallbacks=fallbacks,
        )
    assert sum(n for *_, n, _, _ in want) > 0
    touching = sum(1 for b in batches if any(orjson.loads(r[0])["leadId"] == 2 for r in b))
    assert touching > 2
    assert sorted(fallbacks) == ["cannot_hold"] * touching + ["fault"] * evict_fails
    assert caplog.text.count("the native core failed evicting") == evict_fails
    lines = [r.getMessage() for r in caplog.records if r.name == "streams.engine.native"]
    held = [line for line in lines if "hold a state the native core cannot" in line]
    assert len(held) == 1 and held[0].startswith("engine: lead(s) 2 hold"), lines
    where = 'the history of type 100001, entry 0, attribute "qty": an integer beyond 64 bits'
    assert f"lead 2: a state the core cannot hold: {where}" in held[0], held[0]
    assert not any("the native core failed on a batch" in line for line in lines)


@pytest.mark.parametrize(
    ("check_cached", "evict_fails"), [(False, False), (True, False), (False, True)]
)
def test_a_lead_saved_by_another_worker_is_read_again(
    redis_url: str, check_cached: bool, evict_fails: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Trusted cache: `forget_cached` (partition revoked) drops the core's leads; checked
    cache (`HGET ver`): a generation someone else wrote makes the lead cold. Either way
    the next batch reads the other worker's state: no conflict, and the outcome of the
    Python engine reading it. `evict_fails`: the core panics half way through evicting
    them (its test-only seam): it drops every lead (`RedisStore.evict_core`), counted as
    a `fault`, said once, and the outcome is the same."""
    plans = Plans(ROOT / "rules", None)
    batches = sample_batches(3, 100, count=300, leads=5)
    fallbacks: list[str] = []

    async def go(use_core: bool) -> tuple[list[Any], dict[int, tuple[bytes, bytes]]]:
        app_id = f"nw-{uuid.uuid4().hex[:12]}"
        client = redis_client(redis_url)
        store = RedisStore(
            client,
            app_id,
            TTL_MS,
            cache_leads=100,
            check_cached=check_cached,
            on_core_fallback=fallbacks.append,
        )
        processor = Processor(plans.plan("default"), TimedStore(store), native=use_core)
        outcomes = []
        try:
            result = await processor.process([Record(*r) for r in batches[0]], SAMPLE_NOW)
            outcomes.append(len(result.events))
            if use_core:
                assert processor.native is not None and len(store.core) > 1
                if evict_fails:
                    store.core.test_only_panic_in("evict", 1)
            if not check_cached:
                store.forget_cached()
                if use_core:
                    assert len(store.core) == 0
            # Another worker saves the leads meanwhile: this one must read their new state.
            other = RedisStore(client, app_id, TTL_MS)
            theirs = Processor(plans.plan("default"), other, native=False)
            await theirs.process([Record(*r) for r in batches[1]], SAMPLE_NOW)
            for batch in batches[2:]:
                result = await processor.process([Record(*r) for r in batch], SAMPLE_NOW)
                outcomes.append([orjson.dumps(e) for e in result.events])
        finally:
            await client.aclose()
        return outcomes, await _contents(redis_url, app_id, set(range(1000, 1010)))

    with caplog.at_level("WARNING", logger="streams.state.redis_store"):
        want = asyncio.run(go(False))
        got = asyncio.run(go(True))
    assert got == want
    assert fallbacks == (["fault"] if evict_fails else [])
    assert caplog.text.count("the native core failed evicting") == evict_fails


def test_the_backtest_survives_a_fault_in_the_core(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a `MemoryStore` the core raising makes the backtest run again with copies on the
    Python engine (`StatesNotIsolated`): the same output as without the fault."""
    from streams.backtest import backtest_to_lists
    from streams.engine.evaluator import DEFAULT_DEDUP_HORIZON_US

    source = tmp_path / "in.jsonl"
    lines = [orjson.dumps(a) for a in sample_activities(400, leads=20, seed=4)]
    source.write_bytes(b"\n".join(lines) + b"\n")
    plan = load_plan(ROOT / "rules")
    want = backtest_to_lists(plan, source, DEFAULT_DEDUP_HORIZON_US, 50)
    calls: list[str] = []

    def parse(kind: int, text: str) -> float | int | None:
        calls.append(text)
        raise RuntimeError("boom")

    monkeypatch.setattr(native, "_parse", parse)
    got = backtest_to_lists(plan, source, DEFAULT_DEDUP_HORIZON_US, 50)
    assert calls, "the fault was never injected"
    assert got[0] == want[0] and got[1] == want[1]
    assert want[0], "no events to compare"


def test_with_save_overlap_a_lead_is_read_after_its_save(redis_url: str) -> None:
    """`STREAMS_SAVE_OVERLAP`: the next batch is evaluated while a batch's save is in
    flight (slowed down here); a lead of both is loaded into the core only once that save
    returned, so the outcome is the sequential one."""
    plans = Plans(ROOT / "rules", None)
    batches = sample_batches(8, 60, count=600, leads=6)
    want, want_redis, _ = run(redis_url, plans, batches, use_core=False, now_us=SAMPLE_NOW)

    async def overlapped() -> tuple[list[Any], dict[int, tuple[bytes, bytes]]]:
        app_id = f"nw-{uuid.uuid4().hex[:12]}"
        client = redis_client(redis_url)
        store = RedisStore(client, app_id, TTL_MS, cache_leads=1000, check_cached=False)
        original = store._run
        saves: list[int] = []

        async def slow(calls: Any) -> Any:
            saves.append(len(calls))
            await asyncio.sleep(0.02)
            return await original(calls)

        store._run = slow  # type: ignore[method-assign]
        processor = Processor(plans.plan("default"), TimedStore(store))
        tasks = []
        try:
            for n, batch in enumerate(batches):
                task = asyncio.ensure_future(
                    processor.process([Record(*r) for r in batch], SAMPLE_NOW)
                )
                # As the worker (`start_evaluation`): the next batch once this one's save
                # has begun.
                while not task.done() and len(saves) <= n:
                    await asyncio.sleep(0)
                tasks.append(task)
            results = [await t for t in tasks]
            assert processor.native is not None
        finally:
            await client.aclose()
        outcomes = [
            (
                [orjson.dumps(e) for e in r.events],
                [orjson.dumps(d) for d in r.dead_letters],
                r.accepted,
                r.duplicates,
                r.redelivered,
            )
            for r in results
        ]
        return outcomes, await _contents(redis_url, app_id, set(want_redis))

    got, got_redis = asyncio.run(overlapped())
    assert got == want
    assert got_redis == want_redis


def test_what_counts_as_the_cores_failure() -> None:
    """An exception, or a Rust panic (PyO3 raises `PanicException`, a `BaseException`),
    is the core's failure on the batch; an interruption is passed on."""
    panic = type("PanicException", (BaseException,), {})
    assert native.core_fault(panic("a panic")) and native.core_fault(ValueError("x"))
    assert not native.core_fault(asyncio.CancelledError())
    assert not native.core_fault(KeyboardInterrupt())


@pytest.mark.parametrize("cache_leads", [1000, 0])
def test_cold_leads_are_read_by_the_core_and_hostile_ones_as_python_reads_them(
    redis_url: str, index_rules: Path, cache_leads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """States seeded in every format version (v1, v2: read by Python), v3 with its journal
    (read by the core itself), and v3 made hostile (a journal entry of junk, one of an
    unknown shape, a truncated snapshot, a value beyond the core's integers, an unknown
    member): the same outcomes and Redis contents as the Python engine's, quarantines
    included, and the core did read the well-formed v3 leads itself."""
    plans = Plans(index_rules, 3 * 3_600_000_000)
    stream = [(0, 1 + i % 9, 10 * i, "x", i, i) for i in range(90)]
    batches = index_batches(stream, [], 7, [1], 0)
    seeds = _old_formats(redis_url, plans, batches[:6])
    v3 = [lead for lead in sorted(seeds) if seeds[lead][0] == "v3"]
    journaled = [lead for lead in v3 if seeds[lead][2]]
    bare = [lead for lead in v3 if not seeds[lead][2]]
    assert len(journaled) >= 3 and len(bare) >= 4, seeds
    hostile: dict[int, Any] = {
        journaled[1]: lambda s, j: (s, [*j, b"junk"]),
        journaled[2]: lambda s, j: (s, [*j[:-1], j[-1].replace(b'"d":1', b'"d":1,"x":[]', 1)]),
        bare[1]: lambda s, j: (s[:-9], j),
        bare[2]: lambda s, j: (s.replace(b'"qty":', b'"qty":99999999999999999999', 1), j),
        bare[3]: lambda s, j: (s[:-1] + b',"x":1}', j),
    }
    for lead, change in hostile.items():
        kind, snapshot, journal = seeds[lead]
        seeds[lead] = (kind, *change(snapshot, journal))
    first_read: dict[int, bool] = {}
    """Lead -> whether the core read its seeded state itself (the first cold read; later
    ones read what the core saved)."""
    read_native = RedisStore._read_native

    def spy(self: RedisStore, core: Any, ids: list[int], replies: list[Any]) -> Any:
        slow, slow_replies = read_native(self, core, ids, replies)
        for i in ids:
            first_read.setdefault(i, i not in slow)
        return slow, slow_replies

    monkeypatch.setattr(RedisStore, "_read_native", spy)
    same(redis_url, plans, batches, now_us=NOW_US, cache_leads=cache_leads, seeds=seeds)
    first = [lead for lead in seeds if lead not in hostile and seeds[lead][0] == "v3"]
    taken = {lead for lead, native in first_read.items() if native}
    assert set(first) <= taken, "a well-formed v3 lead was not read by the core"
    assert not taken & {lead for lead, (kind, *_) in seeds.items() if kind != "v3"}
    assert not taken & set(hostile)


def test_a_fault_while_the_core_decodes_leaves_no_stale_lead_in_it(
    redis_url: str, index_rules: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The core failing in its decoding step (a Python callback raising there: the leads
    of the batch are not known yet) and the Python engine redoing the batch, which saves
    a lead the core held from an earlier batch: the core must not go on with its copy
    (trusted cache), else the next batch of that lead fails the compare-and-set."""
    plans = Plans(index_rules, 3 * 3_600_000_000)
    stream = [(0, 1, 10 * i, "x", i, i) for i in range(3)]
    batches = index_batches(stream, [], 1, [1], 0)
    unknown = orjson.dumps(
        {
            "marketoGUID": "u1",
            "leadId": 1,
            "activityDate": "2026-01-01T00:00:00Z",
            "activityTypeId": 999,
        }
    )
    batches[1].append((unknown, "t", 0, 99))
    real = Processor.decode_one
    raised: list[int] = []

    def decode_one(self: Processor, record: Record, now_us: int) -> Any:
        if record.offset == 99 and not raised:
            raised.append(record.offset)
            raise RuntimeError("a defect in a callback, once")
        return real(self, record, now_us)

    monkeypatch.setattr(Processor, "decode_one", decode_one)

    async def go() -> tuple[list[int], bytes, list[Any]]:
        app_id = f"nw-{uuid.uuid4().hex[:12]}"
        client = redis_client(redis_url)
        store = RedisStore(client, app_id, TTL_MS, cache_leads=100, check_cached=False)
        processor = Processor(plans.plan("default"), TimedStore(store))
        try:
            accepted = []
            for batch in batches:
                result = await processor.process([Record(*r) for r in batch], NOW_US)
                accepted.append(result.accepted)
            assert processor.native is not None
            state = (await RedisStore(client, app_id, TTL_MS).load([1]))[1]
            ver = await client.hget(store.key(1), b"ver")
            return accepted, ver, state.history.get(100001, [])
        finally:
            await client.aclose()

    accepted, ver, history = asyncio.run(go())
    assert raised, "the fault was never injected"
    assert accepted == [1, 1, 1]
    assert ver == b"3" and len(history) == 3


@pytest.mark.parametrize("use_core", [True, False])
def test_a_lead_revoked_while_its_save_is_in_flight_is_read_again(
    redis_url: str, use_core: bool
) -> None:
    """Trusted cache: the partitions revoked (`forget_cached`) while a batch's save is in
    flight, another worker saving its leads next: the save that returns after the
    revocation must not cache (or leave held in the core) what may be stale from then on,
    else the next batch of those leads fails the compare-and-set (under save overlap the
    worker exits)."""
    plans = Plans(ROOT / "rules", None)
    batches = sample_batches(3, 100, count=300, leads=5)

    async def go() -> list[int]:
        app_id = f"nw-{uuid.uuid4().hex[:12]}"
        client = redis_client(redis_url)
        store = RedisStore(client, app_id, TTL_MS, cache_leads=100, check_cached=False)
        original = store._run
        revoked: list[int] = []

        async def revoked_meanwhile(calls: Any) -> Any:
            replies = await original(calls)
            if not revoked:
                revoked.append(store.forget_cached())
            return replies

        store._run = revoked_meanwhile  # type: ignore[method-assign]
        processor = Processor(plans.plan("default"), TimedStore(store), native=use_core)
        try:
            await processor.process([Record(*r) for r in batches[0]], SAMPLE_NOW)
            assert revoked, "the revocation was never injected"
            assert (processor.native is not None) == use_core
            other = RedisStore(client, app_id, TTL_MS)
            theirs = Processor(plans.plan("default"), other, native=False)
            await theirs.process([Record(*r) for r in batches[1]], SAMPLE_NOW)
            result = await processor.process([Record(*r) for r in batches[2]], SAMPLE_NOW)
            return [len(result.events), result.accepted]
        finally:
            await client.aclose()

    assert asyncio.run(go())[1] > 0


@pytest.mark.parametrize("use_core", [True, False])
def test_a_revocation_during_a_checked_load_reads_the_leads_in_full(
    redis_url: str, use_core: bool
) -> None:
    """Checked cache (`HGET ver`): the partitions revoked (`forget_cached`) while a batch
    asks Redis whether its cached leads are current: the batch reads them in full (it
    does not fail on the cache emptied under it)."""
    plans = Plans(ROOT / "rules", None)
    batches = sample_batches(4, 100, count=200, leads=5)

    async def go() -> list[Any]:
        app_id = f"nw-{uuid.uuid4().hex[:12]}"
        client = redis_client(redis_url)
        store = RedisStore(client, app_id, TTL_MS, cache_leads=100, check_cached=True)
        processor = Processor(plans.plan("default"), TimedStore(store), native=use_core)
        try:
            await processor.process([Record(*r) for r in batches[0]], SAMPLE_NOW)
            pipeline = client.pipeline
            armed = [True]

            def revoking(*args: Any, **kwargs: Any) -> Any:
                pipe = pipeline(*args, **kwargs)
                execute = pipe.execute

                async def revoked_meanwhile(*args: Any, **kwargs: Any) -> Any:
                    replies = await execute(*args, **kwargs)
                    if armed:  # the batch's first round trip: its load
                        armed.clear()
                        store.forget_cached()
                    return replies

                pipe.execute = revoked_meanwhile
                return pipe

            client.pipeline = revoking  # type: ignore[method-assign]
            result = await processor.process([Record(*r) for r in batches[1]], SAMPLE_NOW)
            assert not armed, "the revocation was never injected"
            return [orjson.dumps(e) for e in result.events]
        finally:
            await client.aclose()

    want, *_ = run(redis_url, plans, batches[:2], use_core=False, now_us=SAMPLE_NOW)
    assert asyncio.run(go()) == want[1][0]


def _a_batch_failing_on_redis(
    redis_url: str, evict_panics: bool, **store_options: Any
) -> tuple[int, list[int], list[int]]:
    """On the core, through a `RedisStore` of `cache_leads=3` (and `store_options`): a
    batch, then one whose load fails on Redis, raising the store's error (not a panic),
    the core panicking as that batch's leads are evicted if `evict_panics`. Returns how
    many leads the core held after the first batch, and the leads the core and the
    store's cache hold after the second."""
    plans = Plans(ROOT / "rules", None)
    batches = sample_batches(5, 100, count=200, leads=8)

    async def go() -> tuple[int, list[int], list[int]]:
        app_id = f"nw-{uuid.uuid4().hex[:12]}"
        client = redis_client(redis_url)
        store = RedisStore(client, app_id, TTL_MS, cache_leads=3, **store_options)
        processor = Processor(plans.plan("default"), TimedStore(store))
        original = store._read_full

        async def failing(*args: Any) -> None:
            raise RedisConnectionError("the connection dropped")

        try:
            await processor.process([Record(*r) for r in batches[0]], SAMPLE_NOW)
            held = len(store.core)
            store._read_full = failing  # type: ignore[method-assign]
            if evict_panics:
                store.core.test_only_panic_in("evict", 1)
            with pytest.raises(RedisConnectionError):
                await processor.process([Record(*r) for r in batches[1]], SAMPLE_NOW)
            store._read_full = original  # type: ignore[method-assign]
            return held, sorted(store.core.lead_ids()), sorted(store._held)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_a_batch_failing_on_redis_leaves_none_of_its_leads_in_the_core(redis_url: str) -> None:
    """A batch whose load fails on Redis (the error is the batch's, as on the Python
    engine): the leads it took out of the cache are not left in the core, outside the
    cache's bound, for good."""
    held, in_core, _ = _a_batch_failing_on_redis(redis_url, False, check_cached=False)
    assert held == 3
    assert in_core == [], f"{len(in_core)} leads left in the core, out of its cache"


class _WrappedCore:
    """A test's wrapper of a native core: what the wrapper does not define is the core's."""

    def __init__(self, core: Any) -> None:
        self._core = core

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core, name)

    def __contains__(self, lead_id: object) -> bool:
        return lead_id in self._core

    def __len__(self) -> int:
        return len(self._core)


_Wrapper = TypeVar("_Wrapper", bound=_WrappedCore)


def _wrap_cores(monkeypatch: pytest.MonkeyPatch, wrap: Callable[[Any], _Wrapper]) -> list[_Wrapper]:
    """From now on (in this test) every core the native module makes is `wrap(core)`; the
    list of those wrappers, filled as they are made."""
    module = native._module()
    assert module is not None
    wrapped: list[_Wrapper] = []

    class WrappingModule:
        def __getattr__(self, name: str) -> Any:
            return getattr(module, name)

        @staticmethod
        def Core(*args: Any) -> _Wrapper:
            wrapped.append(wrap(module.Core(*args)))
            return wrapped[-1]

    monkeypatch.setattr(native, "_module", lambda: WrappingModule())
    return wrapped


class _EvictFailsAfterRefusing(_WrappedCore):
    """The core, whose next `evict` panics (its test-only seam) once `put_state` first
    refused a state: that of the batch's leads, handed to the Python engine."""

    def __init__(self, core: Any) -> None:
        super().__init__(core)
        self.armed = False

    def put_state(self, *args: Any) -> Any:
        try:
            return self._core.put_state(*args)
        except ValueError:
            if not self.armed:
                self.armed = True
                self._core.test_only_panic_in("evict", 1)
            raise


class _FailingPayloads(_WrappedCore):
    """The core, except that `payloads` (what the store saves) raises on its `fail_at`th
    call: the core failing after it evaluated a batch."""

    def __init__(self, core: Any, fail_at: int) -> None:
        super().__init__(core)
        self.fail_at = fail_at
        self.calls = 0

    def payloads(self, leads: list[int]) -> Any:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("injected: the core failed making the payloads")
        return self._core.payloads(leads)


def test_a_fault_making_the_payloads_redoes_the_batch_on_the_python_engine(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The core's last step (the payloads the store saves) is inside the core's fault
    handling: a failure there evicts the batch's leads and the Python engine redoes the
    batch, rather than failing it (which, the fault being deterministic, would fail it
    again on every redelivery). The outcome is the Python engine's."""
    wrapped = _wrap_cores(monkeypatch, lambda core: _FailingPayloads(core, fail_at=2))
    with caplog.at_level("WARNING", logger="streams.engine.native"):
        same(redis_url, Plans(ROOT / "rules", None), sample_batches(11, 100), now_us=SAMPLE_NOW)
    assert wrapped and wrapped[0].calls > 2, "the core did not go on after the fault"
    assert "the Python engine redoes it" in caplog.text


Seam = Literal["decode", "read_stored", "put_state", "evaluate", "events", "payloads", "commit"]


class _Panicky(_WrappedCore):
    """The core, armed at one of its test-only seams (`Core.test_only_panic_in`: the `at`th
    call of `seam` panics; where, `native/src/lib.rs` `SEAMS` says), recording how many
    batches it evaluates, what it raised, and the leads of the batch (or commit) that
    raised. `evict_too`: once the seam panicked, the next `evict` panics too (the core
    failing again as its leads are evicted)."""

    def __init__(self, core: Any, at: int, seam: Seam, evict_too: bool = False) -> None:
        super().__init__(core)
        core.test_only_panic_in(seam, at)
        self.evict_too = evict_too
        self.evaluated = 0
        self.panics: list[BaseException] = []
        self.batch_leads: list[int] = []
        self.panicked_leads: list[int] = []

    def decode(self, *args: Any) -> Any:
        self.batch_leads = []  # not known until it returns
        out = self._recording(self.batch_leads, self._core.decode, *args)
        self.batch_leads = list(out[0])
        return out

    def evaluate(self, *args: Any) -> Any:
        self.evaluated += 1
        return self._recording(self.batch_leads, self._core.evaluate, *args)

    def read_stored(self, *args: Any) -> Any:
        return self._recording(self.batch_leads, self._core.read_stored, *args)

    def put_state(self, *args: Any) -> Any:
        return self._recording(self.batch_leads, self._core.put_state, *args)

    def payloads(self, *args: Any) -> Any:
        return self._recording(self.batch_leads, self._core.payloads, *args)

    def commit(self, lead_ids: list[int]) -> None:
        self._recording(list(lead_ids), self._core.commit, lead_ids)

    def evict(self, lead_ids: list[int]) -> None:
        self._recording(list(lead_ids), self._core.evict, lead_ids)

    def _recording(self, leads: list[int], call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args)
        except BaseException as exc:
            if self.evict_too and not self.panics:
                self._core.test_only_panic_in("evict", 1)
            self.panics.append(exc)
            self.panicked_leads = leads
            raise

    def assert_panicked(self, *seams: str) -> None:
        """Real Rust panics (PyO3's `PanicException`), one per seam named, in that order."""
        assert [type(e).__name__ for e in self.panics] == ["PanicException"] * len(seams)
        for exc, seam in zip(self.panics, seams, strict=True):
            assert f"test-only fault injection: a panic in {seam} " in str(exc), exc


def _checking_fallbacks(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """Per batch the core hands to the Python engine (`process_stored` returns None): the
    leads of the batch that panicked still held by the core then (none, if evicted)."""
    redone: list[list[int]] = []
    process_stored = native.NativeProcessor.process_stored

    async def checked(self: native.NativeProcessor, records: Any, now_us: int) -> Any:
        done = await process_stored(self, records, now_us)
        if done is None:
            redone.append([lead for lead in self.core.panicked_leads if lead in self.core])
        return done

    monkeypatch.setattr(native.NativeProcessor, "process_stored", checked)
    return redone


def _same_with_one_fault(
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
    logger: str,
    said: str,
    batches: Batches,
    **options: Any,
) -> list[Any]:
    """`same` on the rules' plans at `SAMPLE_NOW`, `logger`'s WARNINGs captured: the core's
    failure counted as exactly one `fault` fallback and `said` logged exactly once;
    returns the reference's outcomes."""
    fallbacks: list[str] = []
    with caplog.at_level("WARNING", logger=logger):
        want = same(
            redis_url,
            Plans(ROOT / "rules", None),
            batches,
            now_us=SAMPLE_NOW,
            fallbacks=fallbacks,
            **options,
        )
    assert fallbacks == ["fault"]
    assert caplog.text.count(said) == 1
    return want


@pytest.mark.parametrize(
    ("seam", "at"),
    [
        ("decode", 3),
        ("read_stored", 3),
        ("put_state", 1),
        ("evaluate", 3),
        ("events", 40),
        ("payloads", 3),
    ],
)
@pytest.mark.parametrize("cache_leads", [1000, 0])
def test_a_rust_panic_in_the_core_on_a_batch_redoes_it_on_the_python_engine(
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    seam: Seam,
    at: int,
    cache_leads: int,
) -> None:
    """A real Rust panic at each step of the core on a batch (the core's test-only seams:
    decoding its records; reading a cold lead's stored state, `read_stored`, or the bytes
    of one Python read, `put_state`, once the lead is held; evaluating, its first
    activity's lead half-changed; building its events; making the payloads to save):
    PyO3 raises `PanicException`, the batch's leads are evicted from the core, the Python
    engine redoes the batch, it counts as one `fault`, and the next batches run on the
    core again: the same events (none lost, none doubled), dead letters, counters and
    Redis contents as the Python engine throughout (`same`), states seeded in every
    format version (v1 and v2 read by Python and handed over, v3 read by the core)."""
    batches = sample_batches(12, 60, count=600, leads=30)
    seeds = _old_formats(redis_url, Plans(ROOT / "rules", None), batches[:3])
    wrapped = _wrap_cores(monkeypatch, lambda core: _Panicky(core, at=at, seam=seam))
    redone = _checking_fallbacks(monkeypatch)
    logger, said = "streams.engine.native", "the Python engine redoes it"
    want = _same_with_one_fault(
        redis_url, caplog, logger, said, batches, cache_leads=cache_leads, seeds=seeds
    )
    assert sum(len(events) for events, *_ in want) > at, "too few events to panic in"
    (core,) = wrapped
    core.assert_panicked(seam)
    assert seam == "decode" or core.panicked_leads, "the panic was not in a batch"
    assert redone == [[]], f"leads of the panicked batch left in the core: {redone}"
    assert core.evaluated > 3, "the core did not go on after the panic"
    assert "PanicException" in caplog.text


def test_a_plan_the_core_did_not_take_is_given_to_it_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A new plan on the `Processor` (a new `Engine`) is handed to the core before the next
    batch; if the core raises taking it, the batch fails, and the next batch hands it
    again: the core never runs the old plan taken for the new (`NativeProcessor._prepare`
    records the plan once the core took it)."""
    from streams.state.memory import MemoryStore

    class RefusingOnce(_WrappedCore):
        def __init__(self, core: Any) -> None:
            super().__init__(core)
            self.refuse = False
            self.taken = 0

        def set_plan(self, description: Any) -> None:
            if self.refuse:
                self.refuse = False
                raise ValueError("injected: the core refuses the plan")
            self._core.set_plan(description)
            self.taken += 1

    wrapped = _wrap_cores(monkeypatch, RefusingOnce)
    plans = Plans(ROOT / "rules", None)
    batches = sample_batches(3, 50, count=150, leads=8)

    async def go() -> None:
        processor = Processor(plans.plan("default"), MemoryStore())
        await processor.process([Record(*r) for r in batches[0]], SAMPLE_NOW)
        assert processor.native is not None
        (core,) = wrapped
        taken = core.taken
        short = plans.plan("short")
        processor.engine = Engine(short)
        core.refuse = True
        with pytest.raises(ValueError, match="injected"):
            await processor.process([Record(*r) for r in batches[1]], SAMPLE_NOW)
        assert processor.native.plan is not short, "the plan recorded, the core without it"
        await processor.process([Record(*r) for r in batches[1]], SAMPLE_NOW)
        assert core.taken == taken + 1 and processor.native.plan is short

    asyncio.run(go())


def test_no_production_path_arms_the_panic_seams() -> None:
    """The seams are a method of the core that only tests call: no module of `streams`
    calls it, so no setting, record or request reaches them."""
    package = Path(native.__file__).parents[1]
    callers = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "test_only_panic_in(" in path.read_text("utf-8")
    ]
    assert callers == []


@pytest.mark.parametrize("cache_leads", [1000, 0])
def test_a_rust_panic_after_a_save_evicts_its_leads_and_goes_on(
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    cache_leads: int,
) -> None:
    """A real Rust panic in the core's `commit` (the test-only seam: once the first lead's
    checkpoint moved), after Redis stored the batch: the batch stands (its events are
    those of the states saved), the batch's leads are evicted from the core (a checkpoint
    half moved would make the next delta wrong), it counts as a `fault` fallback, and the
    next batches run on the core: the same events, dead letters, counters and Redis
    contents as the Python engine throughout (`same`)."""
    wrapped = _wrap_cores(monkeypatch, lambda core: _Panicky(core, at=3, seam="commit"))
    left: list[list[int]] = []  # per save whose commit panicked: its leads still held
    save_core = RedisStore.save_core

    async def checked(self: RedisStore, lead_ids: list[int], payloads: Any) -> None:
        await save_core(self, lead_ids, payloads)
        core = self.core
        if core.panics and len(left) < len(core.panics):
            left.append([lead for lead in core.panicked_leads if lead in core])

    monkeypatch.setattr(RedisStore, "save_core", checked)
    logger, said = "streams.state.redis_store", "the native core failed after a save"
    batches = sample_batches(13, 100, count=800, leads=30)
    _same_with_one_fault(redis_url, caplog, logger, said, batches, cache_leads=cache_leads)
    (core,) = wrapped
    core.assert_panicked("commit")
    assert len(core.panicked_leads) > 1, "the panic did not come half way through"
    assert left == [[]], f"leads of the panicked commit left in the core: {left}"
    assert core.evaluated > 3, "the core did not go on after the panic"


@pytest.mark.parametrize("seam", ["evaluate", "commit"])
@pytest.mark.parametrize("cache_leads", [1000, 0])
def test_a_core_failing_to_evict_drops_every_lead_and_goes_on(
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    seam: Seam,
    cache_leads: int,
) -> None:
    """The core panics on a batch (in `evaluate`: the batch is redone by the Python
    engine) or after its save (in `commit`: the batch stands), and panics again while its
    leads are evicted (the test-only seam of `evict`, half way through): what it holds is
    no longer known, so it drops every lead (`RedisStore.evict_core`), each read again from
    Redis; the fault counts once, one WARNING says so, the worker goes on (no exception
    out of the batch) and the core runs the next batches: the same events, dead letters,
    counters and Redis contents as the Python engine throughout (`same`, which also holds
    the core to holding exactly the leads the store's cache says after each batch)."""
    wrapped = _wrap_cores(monkeypatch, lambda core: _Panicky(core, at=3, seam=seam, evict_too=True))
    batches = sample_batches(14, 100, count=800, leads=30)
    said = "the native core failed evicting"
    _same_with_one_fault(redis_url, caplog, "streams", said, batches, cache_leads=cache_leads)
    (core,) = wrapped
    core.assert_panicked(seam, "evict")
    assert len(core.panicked_leads) > 1, "the evict did not panic half way through"
    assert core.evaluated > 4, "the core did not go on after the panics"


@pytest.mark.parametrize("mode", ["applied", "one failed"])
@pytest.mark.parametrize("cache_leads", [1000, 0])
def test_a_save_that_fails_after_being_applied_leaves_no_checkpoint_behind(
    redis_url: str, mode: str, cache_leads: int
) -> None:
    """The core's checkpoints move only when a save returns stored (`commit`). A save
    stored on the server whose reply is lost (a timeout), or whose leads' calls fail for
    one and succeed for the others (a Redis Cluster's masters), raises: the batch's leads
    are evicted, and the batch evaluated again (the worker's replay) reads each as Redis
    holds it: redelivered where the save was stored, processed where not. The same events,
    counters and Redis contents as the Python engine under the same failures; a checkpoint
    left behind would write a delta against a state Redis does not hold."""
    batches = sample_batches(13, 60, count=600, leads=12)
    same(
        redis_url,
        Plans(ROOT / "rules", None),
        batches,
        now_us=SAMPLE_NOW,
        cache_leads=cache_leads,
        failing_saves={2: mode, 5: mode, 6: mode},
    )


class _EvictFailsAtSave(_WrappedCore):
    """The core, whose `evict` panics (its test-only seam, half way through) from the
    `at`th batch's `payloads` on: the next `evict` is that of the batch's save."""

    def __init__(self, core: Any, at: int) -> None:
        super().__init__(core)
        self.at = at
        self.batches = 0

    def payloads(self, leads: list[int]) -> Any:
        self.batches += 1
        if self.batches == self.at:
            self._core.test_only_panic_in("evict", 1)
        return self._core.payloads(leads)


@pytest.mark.parametrize("mode", ["applied", "one failed"])
def test_a_core_failing_to_evict_after_a_failed_save_drops_every_lead(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    """A save that raises (stored, its reply lost; one lead's call failed) evicts the
    batch's leads; the core panicking at that drops every lead instead, the batch fails
    with the store's error (not the panic: the worker replays it as any failed save),
    counted as one `fault`, said once; the replay and the next batches are the Python
    engine's outcome (`same`)."""
    _wrap_cores(monkeypatch, lambda core: _EvictFailsAtSave(core, at=3))
    logger, said = "streams.state.redis_store", "the native core failed evicting"
    batches = sample_batches(16, 60, count=480, leads=12)
    _same_with_one_fault(redis_url, caplog, logger, said, batches, failing_saves={2: mode})


class _EvictFailsAtTrim(_WrappedCore):
    """The core, whose third `evict` from the `at`th batch's `payloads` on panics (its
    test-only seam, once the first lead is evicted): in a save Redis answered, the third
    is the eviction of the leads saved longest ago, beyond `cache_leads` (after those of
    the conflicts and of the revoked)."""

    def __init__(self, core: Any, at: int) -> None:
        super().__init__(core)
        self.at = at
        self.batches = 0
        self.trimmed: list[list[int]] = []
        self.batch_leads: list[int] = []

    def payloads(self, leads: list[int]) -> Any:
        self.batches += 1
        if self.batches == self.at:
            self._core.test_only_panic_in("evict", 3)
            self.batch_leads = list(leads)
        return self._core.payloads(leads)

    def evict(self, lead_ids: list[int]) -> None:
        if self.batches == self.at:
            self.trimmed.append(list(lead_ids))
        self._core.evict(lead_ids)


def test_a_core_failing_to_evict_the_leads_beyond_its_cache_holds_none_of_them(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """After a save, the leads saved longest ago beyond `cache_leads` are evicted; the core
    panicking half way through that (they are not the batch's leads) leaves none of them
    in the core outside the store's cache (`run` checks the core holds exactly the cached
    leads after every batch): it drops every lead (`RedisStore.evict_core`), one `fault`,
    said once; the batch stands, the outcome is the Python engine's."""
    wrapped = _wrap_cores(monkeypatch, lambda core: _EvictFailsAtTrim(core, at=4))
    logger, said = "streams.state.redis_store", "the native core failed evicting"
    batches = sample_batches(10, 60, count=400, leads=200)
    _same_with_one_fault(redis_url, caplog, logger, said, batches, cache_leads=10)
    (core,) = wrapped
    trimmed = core.trimmed[2]
    assert len(trimmed) > 1 and set(trimmed[1:]) - set(core.batch_leads), "only its leads"


def test_a_batch_failing_on_redis_and_a_core_failing_to_evict_counts_one_fault(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch whose load fails on Redis (the store's error is raised, as on the Python
    engine) and the core panicking as the batch's leads are evicted: the core drops every
    lead (none left outside the cache), said once, and the core's failure is counted as
    one `fault` (as after a save that raised), the store's error raised, not the panic."""
    fallbacks: list[str] = []
    with caplog.at_level("WARNING", logger="streams.state.redis_store"):
        held, in_core, cached = _a_batch_failing_on_redis(
            redis_url, True, on_core_fallback=fallbacks.append
        )
    assert held == 3
    assert in_core == cached == []
    assert caplog.text.count("the native core failed evicting") == 1
    assert fallbacks == ["fault"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    limits=LIMITS,
    batch=st.sampled_from([9, 40]),
    cache=st.sampled_from([(1000, False), (0, False), (3, True)]),
)
def test_bounds_drawn_small_through_the_redis_store(
    redis_url: str, limits: Limits, batch: int, cache: tuple[int, bool]
) -> None:
    """The sample stream, then its first records again (redeliveries, duplicates past a
    trimmed `seen`), under per-lead bounds drawn small: every drop the bounds make (from
    the head of a history type, of `seen`, fields) goes through the core's deltas and
    checkpoints; the same outcome and Redis contents as the Python engine."""
    batches = sample_batches(19, batch, count=300, leads=10)
    again = [r for b in batches for r in b][:80]
    batches += [again[i : i + batch] for i in range(0, len(again), batch)]
    same(
        redis_url,
        Plans(ROOT / "rules", None),
        batches,
        now_us=SAMPLE_NOW,
        limits=limits,
        cache_leads=cache[0],
        check_cached=cache[1],
    )


def test_a_save_failing_for_one_master_of_a_redis_cluster_moves_no_checkpoint(
    redis_cluster: RedisClusterStack,
) -> None:
    """On a Redis Cluster (one script call per lead): one lead's call fails while the
    others' are stored; the same outcome and contents as the Python engine."""
    same(
        redis_cluster.url,
        Plans(ROOT / "rules", None),
        sample_batches(14, 80, count=400, leads=16),
        now_us=SAMPLE_NOW,
        cluster=True,
        failing_saves={1: "one failed", 3: "applied"},
    )


@pytest.mark.parametrize("seam", ["decode", "evaluate", "events"])
def test_the_backtest_survives_a_rust_panic_in_the_core(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seam: Seam
) -> None:
    """On a `MemoryStore` a real Rust panic inside a batch (the test-only seams of the
    steps the backtest's core runs: decoding, evaluating, building the events) makes the
    backtest run again with copies on the Python engine (`StatesNotIsolated`): the same
    output as without it."""
    from streams.backtest import backtest_to_lists
    from streams.engine.evaluator import DEFAULT_DEDUP_HORIZON_US

    source = tmp_path / "in.jsonl"
    lines = [orjson.dumps(a) for a in sample_activities(400, leads=20, seed=4)]
    source.write_bytes(b"\n".join(lines) + b"\n")
    plan = load_plan(ROOT / "rules")
    want = backtest_to_lists(plan, source, DEFAULT_DEDUP_HORIZON_US, 50)
    panics: list[str] = []

    class Armed(_WrappedCore):
        def __init__(self, core: Any) -> None:
            super().__init__(core)
            core.test_only_panic_in(seam, 3)

        def process(self, *args: Any) -> Any:
            try:
                return self._core.process(*args)
            except BaseException as exc:
                panics.append(type(exc).__name__)
                raise

    _wrap_cores(monkeypatch, Armed)
    got = backtest_to_lists(plan, source, DEFAULT_DEDUP_HORIZON_US, 50)
    assert panics == ["PanicException"]
    assert got[0] == want[0] and got[1] == want[1]
    assert want[0], "no events to compare"


@pytest.mark.parametrize("end", [-(2**63), 2**63 - 1])
@pytest.mark.parametrize("dates", ["seen, runs", "history, max_ts"])
def test_dates_at_the_ends_of_64_bits_in_a_stored_state_compare_as_python_does(
    redis_url: str, end: int, dates: str
) -> None:
    """A stored state whose dates are at either end of 64 bits (a corrupt or hostile
    state: the core reads any 64-bit integer, as Python does): `seen` times and membership
    dates (`runs`), where `now - processed_at` against the dedup horizon and `date - last
    run` against a campaign's period overflow 64 bits, which the core compares as Python's
    integers do (saturating), not wrapped around (which made every such identity a
    duplicate and every such campaign never fire again); or the history's dates and the
    latest date (`max_ts`: the retention's horizon, windows, intervals, the trim's
    order). The stream is run, its states so rewritten, then run again: the same outcome
    as the Python engine."""
    plans = Plans(ROOT / "rules", None)
    batches = sample_batches(15, 100, count=400, leads=10)

    async def seeded() -> dict[int, tuple[str, bytes, list[bytes]]]:
        async with _stored_by_python(redis_url, plans, batches, SAMPLE_NOW) as (store, leads):
            states = await store.load(leads)
            for state in states.values():
                if dates == "seen, runs":
                    state.runs = dict.fromkeys(state.runs, end)
                    state.seen = {k: [end, *v[1:]] for k, v in state.seen.items()}
                else:
                    state.max_ts = end
                    for entries in state.history.values():
                        entries[::2] = [[end, *e[1:]] for e in entries[::2]]
            return {lead: ("v3", encode_state(state), []) for lead, state in states.items()}

    seeds = asyncio.run(seeded())
    assert any(orjson.loads(s)["r"] for _, s, _ in seeds.values()), "no memberships to age"
    want = same(redis_url, plans, batches, now_us=SAMPLE_NOW, seeds=seeds)
    assert sum(len(events) for events, *_ in want) > 0
