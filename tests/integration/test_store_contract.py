"""The `Store` contract, one suite run against `MemoryStore` and `RedisStore`; then what only
the Redis store promises: its key schema and TTL, one round trip per load and per save,
the compare-and-set that fences off a zombie worker, and state that outlives a restart."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from typing import Any, Protocol, TypeVar

import orjson
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import Connection
from redis.crc import key_slot

from streams.devstack.redis import RedisServer
from streams.engine.leadstate import LeadState
from streams.state.codec import FORMAT_VERSION, encode_state
from streams.state.memory import MemoryStore
from streams.state.redis_client import StateClient, redis_client
from streams.state.redis_store import (
    SAVE_CHUNK,
    SAVE_LEADS_LUA,
    RedisStore,
    StateConflict,
    lead_ttl_ms,
)
from streams.state.store import Store

pytestmark = pytest.mark.integration

TTL_MS = 10 * 60 * 1000
"""Short enough that keys left on a shared STREAMS_REDIS_URL server clean themselves up."""

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def fresh_app_id() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


# --- the harness: the same contract over either store ------------------------------------


class Harness(Protocol):
    """One fresh namespace of a store. `open()` gives a handle on it; for Redis each call
    is a new client and a new `RedisStore`, so a second handle sees only what was stored."""

    async def open(self) -> Store: ...

    async def aclose(self) -> None: ...


class MemoryHarness:
    def __init__(self, copies: bool = False) -> None:
        self.store = MemoryStore(copies)

    async def open(self) -> Store:
        return self.store

    async def aclose(self) -> None:
        pass


class RedisHarness:
    def __init__(
        self, url: str, cluster: bool = False, cache_leads: int = 0, check_cached: bool = True
    ) -> None:
        self.url = url
        self.cluster = cluster
        self.app_id = fresh_app_id()
        self.clients: list[StateClient] = []
        self.cache_leads = cache_leads
        self.check_cached = check_cached

    async def open(self) -> RedisStore:
        client = redis_client(self.url, cluster=self.cluster)
        self.clients.append(client)
        return RedisStore(
            client,
            self.app_id,
            TTL_MS,
            cache_leads=self.cache_leads,
            check_cached=self.check_cached,
        )

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


@pytest.fixture(
    scope="module",
    params=["memory", "memory-copies", "redis", "redis-cached", "redis-trusted", "redis-cluster"],
)
def make_harness(request: pytest.FixtureRequest) -> Callable[[], Harness]:
    """Module-scoped so that hypothesis may call it once per example. `redis-cluster`:
    the same contract through the cluster client, on three masters with replicas."""
    if request.param == "memory":
        return MemoryHarness
    if request.param == "memory-copies":
        return lambda: MemoryHarness(copies=True)
    if request.param == "redis-cluster":
        seed: str = request.getfixturevalue("redis_cluster").url
        return lambda: RedisHarness(seed, cluster=True)
    url: str = request.getfixturevalue("redis_url")
    if request.param == "redis-trusted":  # the worker's: cached leads used without a read
        return lambda: RedisHarness(url, cache_leads=100, check_cached=False)
    return lambda: RedisHarness(url, cache_leads=100 if request.param == "redis-cached" else 0)


def with_harness(make: Callable[[], Harness], body: Callable[[Harness], Awaitable[None]]) -> None:
    async def main() -> None:
        harness = make()
        try:
            await body(harness)
        finally:
            await harness.aclose()

    run(main())


# --- LeadState contents ------------------------------------------------------------------

int64 = st.integers(-(2**63), 2**63 - 1)
timestamps = st.integers(0, 2**62)
values = (
    st.none()
    | st.booleans()
    | int64
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
history_entries = st.tuples(
    timestamps, values, st.dictionaries(st.text(max_size=8), values, max_size=4)
).map(list)
seen_entries = st.tuples(
    timestamps, st.text(max_size=16), st.lists(st.integers(1, 10**9), max_size=3)
).map(list)
lead_states = st.builds(
    LeadState,
    history=st.dictionaries(
        st.integers(0, 10_000), st.lists(history_entries, max_size=4), max_size=3
    ),
    fields=st.dictionaries(st.text(max_size=8), st.text(max_size=16), max_size=4),
    runs=st.dictionaries(st.integers(1, 10**9), timestamps, max_size=3),
    seen=st.dictionaries(st.text(min_size=1, max_size=16), seen_entries, max_size=4),
    max_ts=st.none() | timestamps,
)
lead_ids = st.integers(1, 2**40)


def sample_state(n: int) -> LeadState:
    return LeadState(
        history={100_001: [[1_700_000_000_000_000 + n, "Web", {"score": 1.5, "ok": True}]]},
        fields={"email": f"lead{n}@example.com"},
        runs={7: 1_700_000_000_000_000 + n},
        seen={f"guid-{n}": [1_700_000_000_000_001, f"activities/0/{n}", [7]]},
        max_ts=1_700_000_000_000_000 + n,
    )


def assert_same(got: Mapping[int, LeadState], want: Mapping[int, LeadState]) -> None:
    """Equal, and equal as JSON too: `==` alone takes True for 1 and 1.0 for 1."""
    assert got == want
    assert {k: encode_state(v) for k, v in got.items()} == {
        k: encode_state(v) for k, v in want.items()
    }


# --- the contract ------------------------------------------------------------------------


def test_unknown_lead_gets_an_empty_state(make_harness: Callable[[], Harness]) -> None:
    async def body(harness: Harness) -> None:
        store = await harness.open()
        assert await store.load([]) == {}
        got = await store.load([1, 2**40])
        assert got == {1: LeadState(), 2**40: LeadState()}
        assert all(state.is_empty() for state in got.values())

    with_harness(make_harness, body)


@settings(max_examples=30, deadline=None)
@given(states=st.dictionaries(lead_ids, lead_states, min_size=1, max_size=5))
def test_save_then_load_gives_equal_states(
    make_harness: Callable[[], Harness], states: dict[int, LeadState]
) -> None:
    async def body(harness: Harness) -> None:
        store = await harness.open()
        await store.load(states.keys())
        await store.save(states)
        again = await (await harness.open()).load(states.keys())
        assert_same(again, states)

    with_harness(make_harness, body)


def test_consecutive_batches_see_each_others_state(make_harness: Callable[[], Harness]) -> None:
    async def body(harness: Harness) -> None:
        store = await harness.open()
        for batch in range(3):
            states = await store.load([1, 2])
            for lead_id, state in states.items():
                state.fields[f"batch{batch}"] = str(lead_id)
            await store.save(states)
        got = await (await harness.open()).load([1, 2, 3])
        assert got[1].fields == {"batch0": "1", "batch1": "1", "batch2": "1"}
        assert got[2].fields == {"batch0": "2", "batch1": "2", "batch2": "2"}
        assert got[3] == LeadState()

    with_harness(make_harness, body)


def test_erase_keeps_seen(make_harness: Callable[[], Harness]) -> None:
    async def body(harness: Harness) -> None:
        store = await harness.open()
        states = await store.load([5])
        states[5] = sample_state(5)
        await store.save(states)
        states = await store.load([5])
        assert states[5] == sample_state(5)
        states[5].erase()
        await store.save(states)

        got = (await (await harness.open()).load([5]))[5]
        assert got == LeadState(seen=sample_state(5).seen)
        assert not got.is_empty()

    with_harness(make_harness, body)


def test_a_second_load_before_save_gives_the_states_as_last_saved(
    make_harness: Callable[[], Harness],
) -> None:
    """What the pipeline relies on to redo a batch after the engine raised on a record
    (streams/pipeline.py): whatever was done to the states a load handed out, loading
    them again before `save` gives them as saved. A live `MemoryStore` cannot, and says
    so by handing out the same objects (the pipeline then raises `StatesNotIsolated`)."""

    async def body(harness: Harness) -> None:
        store = await harness.open()
        await store.load([5])
        await store.save({5: sample_state(5)})
        first = await store.load([5, 6])
        first[5].fields["changed"] = "yes"
        first[5].history.clear()
        first[5].seen["new"] = [1, "activities/0/9", []]
        first[6].runs[2001] = 1
        again = await store.load([5, 6])
        if isinstance(store, MemoryStore) and not store.copies:
            assert again[5] is first[5] and again[6] is first[6]
            return
        assert_same(again, {5: sample_state(5), 6: LeadState()})
        await store.save(again)
        assert_same(await (await harness.open()).load([5, 6]), {5: sample_state(5), 6: LeadState()})

    with_harness(make_harness, body)


# --- Redis only --------------------------------------------------------------------------


def _commandstats(client: redis.Redis) -> dict[str, int]:
    stats: dict[str, dict[str, int]] = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()}


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    diff = {k: n - before.get(k, 0) for k, n in after.items() if k != "info"}
    return {k: n for k, n in diff.items() if n}


class CountingConnection(Connection):
    """Counts writes to the socket: each is one round trip (a pipeline is one write)."""

    writes = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.writes += 1
        await super().send_packed_command(command, check_health)


@pytest.fixture
def counted() -> Iterator[type[CountingConnection]]:
    CountingConnection.writes = 0
    yield CountingConnection


def test_one_round_trip_per_load_and_per_save(
    redis_server: RedisServer, counted: type[CountingConnection]
) -> None:
    """On a private server, so that the server's command counts are ours alone."""
    n = 25
    ids = list(range(1, n + 1))
    admin = redis.Redis.from_url(redis_server.url)
    measured: dict[str, tuple[int, dict[str, int]]] = {}

    async def measure(name: str, action: Awaitable[object]) -> None:
        before_stats = _commandstats(admin)
        before = counted.writes
        await action
        measured[name] = (counted.writes - before, _delta(before_stats, _commandstats(admin)))

    async def main() -> None:
        pool = ConnectionPool.from_url(redis_server.url, connection_class=counted)
        client = Redis.from_pool(pool)
        try:
            await client.ping()  # connect (and handshake) outside the measurements
            store = RedisStore(client, fresh_app_id(), TTL_MS)
            states = await store.load(ids)
            for lead_id in ids:
                states[lead_id] = sample_state(lead_id)
            await measure("first save, script not cached", store.save(states))
            await measure("load", store.load(ids))
            await measure("save", store.save(states))
            await measure("load, nothing stored", store.load([10_000 + i for i in ids]))
        finally:
            await client.aclose()

    try:
        run(main())
    finally:
        admin.close()
    for name, (writes, commands) in measured.items():
        print(f"{name}: {writes} round trip(s), server commands {commands}")

    assert measured["load"] == (1, {"hmget": n, "lrange": n})
    # Commands that the script runs count as commands of their own. These states are
    # small: a snapshot each, which empties the journal. One EVALSHA for the batch's leads
    # (at most SAVE_CHUNK per call), not one per lead.
    assert n <= SAVE_CHUNK
    assert measured["save"] == (
        1,
        {"evalsha": 1, "hget": n, "hset": n, "del": n, "pexpire": 2 * n},
    )
    assert measured["load, nothing stored"] == (1, {"hmget": n, "lrange": n})
    # A server without the script: EVALSHA (NOSCRIPT), SCRIPT LOAD, EVALSHA again.
    writes, commands = measured["first save, script not cached"]
    assert writes == 3
    assert commands["script|load"] == 1
    assert commands["evalsha"] == 2


def test_a_save_of_several_chunks_decides_each_lead_on_its_own(redis_url: str) -> None:
    """More leads than SAVE_CHUNK: several script calls in the save's one round trip; a lead
    that another store saved meanwhile, in the middle of a chunk, is the only conflict:
    nothing of it is written and every other lead is stored."""
    app_id = fresh_app_id()
    ids = list(range(1, 2 * SAVE_CHUNK + 12))
    taken = ids[SAVE_CHUNK + 5]

    async def main() -> None:
        clients = [redis_client(redis_url) for _ in range(3)]
        try:
            ours, theirs, reader = (RedisStore(c, app_id, TTL_MS) for c in clients)
            states = await ours.load(ids)
            other = await theirs.load([taken])
            other[taken].fields["by"] = "them"
            await theirs.save(other)
            for lead_id in ids:
                states[lead_id].fields["by"] = f"us {lead_id}"
            with pytest.raises(StateConflict) as conflict:
                await ours.save(states)
            assert conflict.value.lead_ids == (taken,)
            stored = await reader.load(ids)
            assert {i: s.fields["by"] for i, s in stored.items()} == {
                i: "them" if i == taken else f"us {i}" for i in ids
            }
        finally:
            for client in clients:
                await client.aclose()

    run(main())


def test_key_schema_ttl_and_generation(redis_url: str) -> None:
    app_id = fresh_app_id()
    admin = redis.Redis.from_url(redis_url)

    async def main() -> None:
        client = redis_client(redis_url)
        try:
            store = RedisStore(client, app_id, TTL_MS)
            for _ in range(2):
                states = await store.load([42])
                states[42] = sample_state(42)
                await store.save(states)
                states = await store.load([43])
                await store.save(states)  # an empty state is stored too
        finally:
            await client.aclose()

    try:
        run(main())
        key = f"{app_id}:lead:{{42}}".encode()
        assert sorted(admin.scan_iter(match=f"{app_id}:*")) == [
            key,
            f"{app_id}:lead:{{43}}".encode(),
        ]
        assert key_slot(key) == key_slot(b"42"), "the lead id is the cluster hash tag"
        assert admin.type(key) == b"hash"
        stored = admin.hgetall(key)
        assert stored == {b"state": encode_state(sample_state(42)), b"ver": b"2"}
        assert 0 < admin.pttl(key) <= TTL_MS
    finally:
        admin.close()


def test_ttl_zero_means_no_expiry(redis_url: str) -> None:
    app_id = fresh_app_id()
    admin = redis.Redis.from_url(redis_url)

    async def main() -> None:
        client = redis_client(redis_url)
        try:
            for ttl in (TTL_MS, 0):
                store = RedisStore(client, app_id, ttl)
                await store.save(await store.load([1]))
        finally:
            await client.aclose()

    try:
        run(main())
        key = f"{app_id}:lead:{{1}}"
        assert admin.pttl(key) == -1
        admin.delete(key)
    finally:
        admin.close()


def test_ttl_from_settings() -> None:
    day_us = 86_400 * 10**6
    assert lead_ttl_ms(90 * day_us, 7 * day_us) == 97 * 86_400 * 1000
    assert lead_ttl_ms(1, 0) == 1


def test_app_id_cannot_hold_a_hash_tag() -> None:
    client = redis_client("redis://127.0.0.1:1/0")  # never connects
    for bad in ("", "a{b", "a}b", "{app}"):
        with pytest.raises(ValueError):
            RedisStore(client, bad, TTL_MS)
    with pytest.raises(ValueError):
        RedisStore(client, "app", -1)


def test_conflict_fences_off_the_stale_writer(redis_url: str) -> None:
    """A zombie (A) loaded the leads, the new owner (B) loaded and saved them, then A saves:
    A gets StateConflict naming exactly the leads B wrote, and B's states stay."""
    app_id = fresh_app_id()

    async def main() -> None:
        clients = [redis_client(redis_url) for _ in range(3)]
        try:
            a, b, reader = (RedisStore(c, app_id, TTL_MS) for c in clients)
            setup = await a.load([1])
            setup[1] = sample_state(1)
            await a.save(setup)

            # 1 exists, 2 and 3 do not; B then writes 1 and 2 (creating it), not 3.
            zombie = await a.load([1, 2, 3])
            owner = await b.load([1, 2])
            owner[1].fields["by"] = "B"
            owner[2].fields["by"] = "B"
            await b.save(owner)
            for state in zombie.values():
                state.fields["by"] = "A"
            with pytest.raises(StateConflict) as raised:
                await a.save(zombie)
            assert raised.value.lead_ids == (1, 2)
            assert "1, 2" in str(raised.value)

            got = await reader.load([1, 2, 3])
            assert got[1] == owner[1]
            assert got[2] == owner[2]
            assert got[3].fields == {"by": "A"}, "a lead without conflict is stored"

            # The new owner goes on: its next batch is not disturbed by the zombie.
            again = await b.load([1])
            again[1].fields["by"] = "B2"
            await b.save(again)
            assert (await reader.load([1]))[1].fields["by"] == "B2"
        finally:
            for client in clients:
                await client.aclose()

    run(main())


def test_a_retried_save_is_not_a_conflict(redis_url: str) -> None:
    """The script recognises its own write when redis-py resends a pipeline: the generation
    it expected + 1 holding the very state it brings."""
    app_id = fresh_app_id()
    key, journal = f"{app_id}:lead:{{1}}", f"{app_id}:journal:{{1}}"

    async def main() -> None:
        client = redis_client(redis_url)
        try:
            script = client.register_script(SAVE_LEADS_LUA)
            keys = [key, journal]
            assert await script(keys, [0, b"s", b"s1", TTL_MS]) == [1, 1]
            assert await script(keys, [0, b"s", b"s1", TTL_MS]) == [1, 1], "a retry"
            assert await script(keys, [0, b"s", b"other", TTL_MS]) == [0, 1]
            assert await script(keys, [1, b"s", b"s2", TTL_MS]) == [1, 2]
            assert await script(keys, [5, b"s", b"s2", TTL_MS]) == [0, 2]
            assert await client.hgetall(key) == {b"state": b"s2", b"ver": b"2"}
            # Deltas: appended to the journal, the same rules for retries and conflicts.
            assert await script(keys, [2, b"d", b"d1", TTL_MS]) == [1, 3]
            assert await script(keys, [2, b"d", b"d1", TTL_MS]) == [1, 3], "a retry"
            assert await script(keys, [2, b"d", b"other", TTL_MS]) == [0, 3]
            assert await script(keys, [3, b"d", b"d2", TTL_MS]) == [1, 4]
            assert await client.lrange(journal, 0, -1) == [b"d1", b"d2"]
            assert await client.hgetall(key) == {b"state": b"s2", b"ver": b"4"}
            assert 0 < await client.pttl(journal) <= TTL_MS
            # A snapshot empties the journal.
            assert await script(keys, [4, b"s", b"s3", TTL_MS]) == [1, 5]
            assert await client.exists(journal) == 0
            # Several leads in one call: each decided on its own, replies in order.
            two = [f"{app_id}:lead:{{2}}", f"{app_id}:journal:{{2}}"]
            both = [*keys, *two]
            assert await script(both, [5, b"s", b"s4", TTL_MS, 0, b"s", b"t1", TTL_MS]) == [
                *(1, 6),
                *(1, 1),
            ]
            assert await script(both, [5, b"s", b"s4", TTL_MS, 0, b"s", b"t2", 0]) == [
                *(1, 6),  # a retry
                *(0, 1),  # a conflict: nothing of it written
            ]
            assert await client.hgetall(two[0]) == {b"state": b"t1", b"ver": b"1"}
            assert 0 < await client.pttl(two[0]) <= TTL_MS
            await client.delete(key, two[0])
        finally:
            await client.aclose()

    run(main())


CORRUPTIONS: dict[str, Callable[[redis.Redis, bytes], object]] = {
    "junk state": lambda admin, key: admin.hset(key, mapping={"state": b"junk", "ver": b"3"}),
    "junk without ver": lambda admin, key: admin.hset(key, "state", b"{not json"),
    "newer format": lambda admin, key: admin.hset(
        key, mapping={"state": b'{"v": 99, "h": {}}', "ver": b"1"}
    ),
    "wrong shape": lambda admin, key: admin.hset(
        key, mapping={"state": b'{"h": [], "f": {}, "r": {}, "s": {}, "m": null}', "ver": b"1"}
    ),
    "ver not a number": lambda admin, key: admin.hset(
        key, mapping={"state": encode_state(sample_state(1)), "ver": b"x"}
    ),
    "junk in the journal": lambda admin, key: (
        admin.hset(key, mapping={"state": encode_state(sample_state(1)), "ver": b"2"}),
        admin.rpush(key.replace(b":lead:", b":journal:"), b'{"d": 1, "h": []}'),
    ),
    "a journal that is not a list": lambda admin, key: (
        admin.hset(key, mapping={"state": encode_state(sample_state(1)), "ver": b"2"}),
        admin.set(key.replace(b":lead:", b":journal:"), b"x"),
    ),
    "a string key": lambda admin, key: admin.set(key, b"hello"),
    "a list key": lambda admin, key: admin.rpush(key, b"a", b"b"),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_unreadable_state_is_quarantined_and_the_lead_starts_afresh(
    redis_url: str, corruption: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The key moves to <app>:quarantine:{lead}:<ms> untouched, once, with one WARNING
    naming the lead and both keys; the other leads of the batch load as they were, and
    the quarantined lead saves and loads again like a new one."""
    app_id = fresh_app_id()
    admin = redis.Redis.from_url(redis_url)
    key = f"{app_id}:lead:{{4000}}".encode()
    quarantined: list[tuple[int, bytes, bytes, str]] = []

    async def main() -> None:
        client = redis_client(redis_url)
        try:
            store = RedisStore(
                client, app_id, TTL_MS, on_quarantine=lambda *a: quarantined.append(a)
            )
            states = await store.load([1])
            states[1] = sample_state(1)
            await store.save(states)
            before = admin.dump(key) if admin.exists(key) else None
            assert before is None
            CORRUPTIONS[corruption](admin, key)
            dumped = admin.dump(key)

            with caplog.at_level("WARNING", logger="streams.state.redis_store"):
                states = await store.load([1, 4000])
            assert states[4000] == LeadState()
            assert states[1] == sample_state(1)
            assert len(quarantined) == 1
            lead_id, from_key, moved_to, reason = quarantined[0]
            assert (lead_id, from_key) == (4000, key)
            assert moved_to.startswith(f"{app_id}:quarantine:{{4000}}:".encode())
            assert key_slot(moved_to) == key_slot(key)
            assert admin.exists(key) == 0
            assert admin.dump(moved_to) == dumped, "moved aside as it was"
            [record] = [r for r in caplog.records if r.name == "streams.state.redis_store"]
            assert "lead 4000" in record.getMessage()
            assert key.decode() in record.getMessage()
            assert moved_to.decode() in record.getMessage()
            assert reason in record.getMessage()

            states[4000].fields["after"] = "yes"
            await store.save(states)
            again = await store.load([4000])
            assert again[4000].fields == {"after": "yes"}
            assert len(quarantined) == 1, "quarantined once"
            await store.save(again)
            admin.delete(moved_to)
        finally:
            await client.aclose()

    try:
        run(main())
    finally:
        admin.close()


def test_a_version_1_state_in_redis_loads_and_is_saved_back_as_the_current_version(
    redis_url: str,
) -> None:
    """Wave 1 wrote the state without a version: a lead stored then reads unchanged, no
    quarantine, and its next save writes the current version."""
    app_id = fresh_app_id()
    admin = redis.Redis.from_url(redis_url)
    key = f"{app_id}:lead:{{11}}".encode()
    v1 = orjson.loads(encode_state(sample_state(11)))
    del v1["v"]

    async def main() -> None:
        client = redis_client(redis_url)
        quarantined: list[object] = []
        try:
            store = RedisStore(client, app_id, TTL_MS, on_quarantine=quarantined.append)
            admin.hset(key, mapping={"state": orjson.dumps(v1), "ver": b"7"})
            states = await store.load([11])
            assert states[11] == sample_state(11)
            await store.save(states)
            assert admin.hgetall(key) == {b"state": encode_state(sample_state(11)), b"ver": b"8"}
            assert orjson.loads(admin.hget(key, "state"))["v"] == FORMAT_VERSION
            assert quarantined == []
            admin.delete(key)
        finally:
            await client.aclose()

    try:
        run(main())
    finally:
        admin.close()


def test_quarantine_does_not_move_a_state_saved_since_it_was_read(redis_url: str) -> None:
    """Between the read of a junk state and its rename, another writer saves the lead: the
    good state stays where it is and `load` says StateConflict (evaluate again)."""
    app_id = fresh_app_id()
    admin = redis.Redis.from_url(redis_url)
    key = f"{app_id}:lead:{{9}}".encode()

    async def main() -> None:
        client = redis_client(redis_url)
        try:
            store = RedisStore(client, app_id, TTL_MS)
            admin.hset(key, mapping={"state": b"junk", "ver": b"4"})
            real_set_aside = store._quarantine

            async def save_first(*args: Any, **kwargs: Any) -> Any:
                admin.hset(key, mapping={"state": encode_state(sample_state(9)), "ver": b"5"})
                return await real_set_aside(*args, **kwargs)

            store._quarantine = save_first  # type: ignore[assignment]
            with pytest.raises(StateConflict):
                await store.load([9])
            store._quarantine = real_set_aside
            assert (await store.load([9]))[9] == sample_state(9)
            assert list(admin.scan_iter(match=f"{app_id}:quarantine:*")) == []
            admin.delete(key)
        finally:
            await client.aclose()

    try:
        run(main())
    finally:
        admin.close()


@pytest.mark.parametrize("how", ["restart", "kill"])
def test_state_survives_a_redis_restart(redis_server: RedisServer, how: str) -> None:
    app_id = fresh_app_id()
    ids = [1, 2, 3]

    async def save_batch(mark: str) -> None:
        client = redis_client(redis_server.url)
        try:
            store = RedisStore(client, app_id, TTL_MS)
            states = await store.load(ids)
            for lead_id in ids:
                if not states[lead_id].history:
                    states[lead_id] = sample_state(lead_id)
                states[lead_id].fields["mark"] = mark
            await store.save(states)
        finally:
            await client.aclose()

    async def load() -> dict[int, LeadState]:
        client = redis_client(redis_server.url)
        try:
            return await RedisStore(client, app_id, TTL_MS).load(ids)
        finally:
            await client.aclose()

    run(save_batch("before"))
    if how == "restart":
        redis_server.restart()
    else:
        redis_server.kill()
        redis_server.start()
    got = run(load())
    want = {i: sample_state(i) for i in ids}
    for state in want.values():
        state.fields["mark"] = "before"
    assert_same(got, want)

    # The restarted server has lost its script cache: the next save reloads the script.
    run(save_batch("after"))
    assert {i: s.fields["mark"] for i, s in run(load()).items()} == dict.fromkeys(ids, "after")


# --- the journal, the cache, earlier formats ----------------------------------------------


def busy_state(entries: int) -> LeadState:
    base = 1_700_000_000_000_000
    return LeadState(
        history={
            100_002: [
                [base + i * 60_000_000, "Bank", {"amount": 120.0, "receiptUrl": f"r/{i}"}]
                for i in range(entries)
            ]
        },
        fields={"annualrevenue": "80000"},
        runs={2004: base},
        seen={f"g{i}": [base, f"activities/0/{i}", []] for i in range(entries)},
        max_ts=base + entries * 60_000_000,
    )


def test_a_busy_lead_writes_what_a_batch_changed_and_reads_back_the_same_state(
    redis_url: str,
) -> None:
    """A lead with 400 entries: each batch appends a few entries and drops some (from the
    head, and one from the middle as a late entry past the retention would), and writes a
    delta of about that size; a store with no cache reads back exactly the saved state, and
    the journal is folded into a snapshot before it outgrows it."""
    app_id = fresh_app_id()
    admin = redis.Redis.from_url(redis_url)
    key, journal = f"{app_id}:lead:{{9}}".encode(), f"{app_id}:journal:{{9}}".encode()

    async def main() -> None:
        client = redis_client(redis_url)
        try:
            writer = RedisStore(client, app_id, TTL_MS, cache_leads=10)
            states = await writer.load([9])
            states[9] = busy_state(400)
            await writer.save(states)
            snapshot = len(admin.hget(key, "state") or b"")
            assert admin.llen(journal) == 0
            lengths: list[int] = []
            for batch in range(80):
                states = await writer.load([9])
                state = states[9]
                entries = state.history[100_002]
                del entries[:3]
                if batch % 5 == 0:
                    del entries[100]
                for i in range(10):
                    ts = (state.max_ts or 0) + (i + 1) * 60_000_000
                    entries.append([ts, "Bank", {"amount": 1.0 + i}])
                    state.seen[f"b{batch}-{i}"] = [ts, f"activities/1/{batch * 10 + i}", [2004]]
                state.max_ts = entries[-1][0]
                for identity in list(state.seen)[:4]:
                    del state.seen[identity]
                state.runs[2004 + batch % 3] = batch
                await writer.save(states)
                lengths.append(admin.llen(journal))
                fresh = await RedisStore(client, app_id, TTL_MS).load([9])
                assert encode_state(fresh[9]) == encode_state(state), batch
            deltas = admin.lrange(journal, 0, -1)
            assert 0 < max(map(len, deltas)) < snapshot / 20, "a delta is what changed"
            assert 0 in lengths[1:] and max(lengths) > 5, "deltas, then a snapshot, again"
        finally:
            await client.aclose()

    try:
        run(main())
    finally:
        admin.delete(key, journal)
        admin.close()


def test_a_cached_lead_is_read_again_only_if_someone_else_saved_it(
    redis_server: RedisServer,
) -> None:
    """A store with a cache keeps the states it saved; loading one costs an HGET of its
    generation. Once another store saved the lead, the first reads it in full again."""
    admin = redis.Redis.from_url(redis_server.url)
    app_id = fresh_app_id()

    async def main() -> None:
        client = redis_client(redis_server.url)
        try:
            a = RedisStore(client, app_id, TTL_MS, cache_leads=1)
            states = await a.load([1, 2])
            states[1], states[2] = sample_state(1), sample_state(2)
            await a.save(states)
            before = _commandstats(admin)
            again = await a.load([2])
            assert again[2] is states[2], "the cached state itself"
            assert _delta(before, _commandstats(admin)) == {"hget": 1}
            assert (await a.load([1]))[1] == sample_state(1), "1 was evicted: read in full"
            await a.save(again)

            b = RedisStore(client, app_id, TTL_MS)
            theirs = await b.load([2])
            theirs[2].fields["by"] = "B"
            await b.save(theirs)
            mine = await a.load([2])
            assert mine[2].fields["by"] == "B"
            mine[2].fields["by"] = "A"
            await a.save(mine)  # the generation read in full is the one compared
            assert (await b.load([2]))[2].fields["by"] == "A"
        finally:
            await client.aclose()

    try:
        run(main())
    finally:
        admin.close()


def test_a_trusted_cache_costs_no_read_and_a_stale_lead_fails_the_save_then_is_read_again(
    redis_server: RedisServer,
) -> None:
    """The worker's store (`check_cached=False`): a cached lead is loaded without any
    Redis command. If another store saved it meanwhile (a zombie's view), the save's
    compare-and-set refuses it, leaves the other's state untouched and drops the lead from
    the cache, so the batch evaluated again reads it in full; the rest of the batch is
    stored and stays cached. `forget_cached` (partitions revoked) empties the cache."""
    admin = redis.Redis.from_url(redis_server.url)
    app_id = fresh_app_id()

    async def main() -> None:
        client = redis_client(redis_server.url)
        try:
            a = RedisStore(client, app_id, TTL_MS, cache_leads=10, check_cached=False)
            states = await a.load([1, 2])
            states[1], states[2] = sample_state(1), sample_state(2)
            await a.save(states)
            before = _commandstats(admin)
            again = await a.load([1, 2])
            assert again[2] is states[2], "the cached state itself"
            assert _delta(before, _commandstats(admin)) == {}, "no read at all"

            b = RedisStore(client, app_id, TTL_MS)
            theirs = await b.load([2])
            theirs[2].fields["by"] = "B"
            await b.save(theirs)

            again[1].fields["by"] = "A"
            again[2].fields["by"] = "A"
            with pytest.raises(StateConflict) as conflict:
                await a.save(again)
            assert conflict.value.lead_ids == (2,)
            assert (await b.load([2]))[2].fields["by"] == "B", "the other's state untouched"

            before = _commandstats(admin)
            retried = await a.load([1, 2])
            assert retried[2].fields["by"] == "B", "read in full again"
            assert retried[1].fields["by"] == "A", "lead 1 was stored and cached"
            assert _delta(before, _commandstats(admin)) == {"hmget": 1, "lrange": 1}
            retried[2].fields["by"] = "A"
            await a.save(retried)
            assert (await b.load([2]))[2].fields["by"] == "A"

            assert a.forget_cached() == 2
            before = _commandstats(admin)
            assert (await a.load([1]))[1].fields["by"] == "A"
            assert _delta(before, _commandstats(admin)) == {"hmget": 1, "lrange": 1}
        finally:
            await client.aclose()

    try:
        run(main())
    finally:
        admin.close()


@pytest.mark.parametrize("version", [1, 2])
def test_states_of_earlier_formats_are_read_and_rewritten_as_current(
    redis_url: str, version: int
) -> None:
    app_id = fresh_app_id()
    admin = redis.Redis.from_url(redis_url)
    key = f"{app_id}:lead:{{7}}".encode()
    state = sample_state(7)
    wave1 = {
        "h": {str(k): v for k, v in state.history.items()},
        "f": state.fields,
        "r": {str(k): v for k, v in state.runs.items()},
        "s": state.seen,
        "m": state.max_ts,
    }
    raw = orjson.dumps(wave1 if version == 1 else wave1 | {"v": 2})
    admin.hset(key, mapping={"state": raw, "ver": b"4"})

    async def main() -> None:
        client = redis_client(redis_url)
        try:
            store = RedisStore(client, app_id, TTL_MS, cache_leads=10)
            loaded = await store.load([7])
            assert loaded[7] == state
            loaded[7].fields["after"] = "migration"
            await store.save(loaded)
            assert admin.hget(key, "ver") == b"5"
            stored = orjson.loads(admin.hget(key, "state") or b"")
            assert stored["v"] == FORMAT_VERSION == 3
            fresh = await RedisStore(client, app_id, TTL_MS).load([7])
            assert fresh[7].fields["after"] == "migration"
        finally:
            await client.aclose()

    try:
        run(main())
    finally:
        admin.delete(key)
        admin.close()


def test_a_journal_without_its_snapshot_is_ignored_and_cleared(redis_url: str) -> None:
    """What a quarantine leaves behind (it moves the hash only): the lead starts afresh, and
    its first save, a snapshot, deletes the stray journal."""
    app_id = fresh_app_id()
    admin = redis.Redis.from_url(redis_url)
    journal = f"{app_id}:journal:{{8}}".encode()
    admin.rpush(journal, b"left over")

    async def main() -> None:
        client = redis_client(redis_url)
        try:
            store = RedisStore(client, app_id, TTL_MS)
            states = await store.load([8])
            assert states[8] == LeadState()
            states[8].fields["x"] = "1"
            await store.save(states)
            assert admin.exists(journal) == 0
        finally:
            await client.aclose()

    try:
        run(main())
    finally:
        admin.delete(f"{app_id}:lead:{{8}}", journal)
        admin.close()


def test_a_load_of_a_lead_whose_save_is_in_flight_waits_for_that_save(redis_url: str) -> None:
    """The worker's save overlap: the next batch loads a lead while the previous batch's
    save of it is still in flight; it must read the lead after that save (from the cache
    the save fills), and the generations must chain (no conflict on its own save)."""
    app_id = fresh_app_id()

    async def main() -> None:
        client = redis_client(redis_url)
        try:
            store = RedisStore(client, app_id, TTL_MS, cache_leads=10, check_cached=False)
            sent = store._run

            async def slow_run(calls: Any) -> Any:  # a save slow to reach the server
                await asyncio.sleep(0.3)
                return await sent(calls)

            store._run = slow_run  # type: ignore[method-assign]
            states = await store.load([1, 2])
            states[1].fields["by"] = "first"
            states[2].fields["by"] = "first"
            saving = asyncio.ensure_future(store.save(states))
            await asyncio.sleep(0.05)  # the save is in flight, not yet on the server
            assert not saving.done()
            again = await store.load([1])
            assert saving.done(), "the load waited for the save"
            assert again[1].fields["by"] == "first"
            again[1].fields["by"] = "second"
            await store.save(again)  # the generation the first save wrote: no conflict
            reader = RedisStore(client, app_id, TTL_MS)
            stored = await reader.load([1, 2])
            assert stored[1].fields["by"] == "second" and stored[2].fields["by"] == "first"
        finally:
            await client.aclose()

    run(main())
