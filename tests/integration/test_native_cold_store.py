"""Cold leads read natively through `RedisStore.load_core` (the core reads snapshot and
journal from the replies: `native/src/cold.rs`) against `RedisStore.load` (the Python
reader), on a real redis-server: the same lead seeded alike in two namespaces, one read
by each. Per lead: the same state (`encode_state` bytes), the same generation, the same
quarantine (key moved, the lead empty), a state the core cannot hold refused alike
(`CannotHold`), and the same bytes written by the next save (so the same sizes for the
journal policy); and the current-format leads as written were read natively."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.state.codec import encode_state
from streams.state.redis_client import redis_client
from streams.state.redis_store import CannotHold, RedisStore
from tests.unit.test_native_cold import HOW, _hostile, cores, stored_leads

pytestmark = pytest.mark.integration

TTL_MS = 10 * 60 * 1000


@pytest.fixture(scope="module")
def new_core() -> Any:
    return cores()


async def _dump(client: Any, app_id: str) -> dict[bytes, Any]:
    """Every key of the namespace (quarantine keys without their time), with its value."""
    out: dict[bytes, Any] = {}
    for key in sorted(await client.keys(f"{app_id}:*".encode())):
        name = key[len(app_id) :]
        if b":quarantine:" in name:
            name = name.rsplit(b":", 1)[0]
        if await client.type(key) == b"hash":
            out[name] = await client.hgetall(key)
        elif await client.type(key) == b"list":
            out[name] = await client.lrange(key, 0, -1)
        else:
            out[name] = await client.get(key)
    return out


Lead = tuple[str, bytes, list[bytes]]


async def _compare(url: str, core: Any, seeds: dict[int, Lead]) -> int:
    """Each lead loaded and saved by both readers; returns how many the core read itself."""
    client = redis_client(url)
    native_id, python_id = (f"nc-{uuid.uuid4().hex[:12]}" for _ in range(2))
    native, python = (RedisStore(client, a, TTL_MS) for a in (native_id, python_id))
    native.adopt_core(core)
    try:
        for store in (native, python):
            for lead, (ver, snapshot, journal) in seeds.items():
                await client.hset(store.key(lead), mapping={b"state": snapshot, b"ver": ver})
                if journal:
                    await client.rpush(store.journal_key(lead), *journal)
        for lead in seeds:
            want = (await python.load([lead]))[lead]
            generation = python._loaded[lead][0]
            try:
                await native.load_core([lead])
            except CannotHold:
                with pytest.raises(ValueError):
                    core.put_state(lead, encode_state(want), 0, 0)
                python._loaded.pop(lead)
                continue
            assert core.encode_state(lead) == encode_state(want), f"lead {lead}"
            assert native._loaded[lead][0] == generation
            await python.save({lead: want})
            await native.save_core([lead], core.payloads([lead]))
        assert await _dump(client, native_id) == await _dump(client, python_id)
        return native.read_natively
    finally:
        core.clear()
        await client.aclose()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.tuples(stored_leads(), st.sampled_from(["as written", "hostile", "ver"]), HOW),
        min_size=1,
        max_size=6,
    ),
    st.integers(-1, 10**6),
    st.integers(0, 255),
)
def test_cold_leads_read_by_the_core_are_those_python_reads(
    redis_url: str, new_core: Any, leads: list[Any], at: int, byte: int
) -> None:
    seeds: dict[int, Lead] = {}
    written = 0
    for n, ((raw, journal), kind, how) in enumerate(leads, start=1):
        ver = "7"
        if kind == "hostile":
            if journal and at % 2:
                k = at % len(journal)
                journal = [*journal[:k], _hostile(journal[k], how, at, byte), *journal[k + 1 :]]
            else:
                raw = _hostile(raw, how, at, byte)
        elif kind == "ver":
            ver = "x7"  # not a generation: quarantined
        else:
            written += 1
        seeds[n] = (ver, raw, journal)
    read = asyncio.run(_compare(redis_url, new_core(), seeds))
    assert read >= written, "current-format leads as written were not read by the core"
