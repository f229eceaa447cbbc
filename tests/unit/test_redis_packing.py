"""`redis_client`'s connections pack commands with hiredis (streams/state/redis_client.py,
`hiredis_packing`): the same bytes as redis-py's own asyncio packer for every command, the
same refusals, and the connection class of the URL's scheme kept beneath it. Fails loudly
when redis-py stops building connections from `connection_pool.connection_class` or
renames `pack_command`, the two things this relies on."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
)
from redis.exceptions import DataError

from streams.state.redis_client import _HiredisPacking, hiredis_packing, redis_client
from streams.state.redis_store import SAVE_CHUNK


@cache
def ours() -> AbstractConnection:
    connection = redis_client("redis://127.0.0.1:1/0").connection_pool.make_connection()
    assert isinstance(connection, _HiredisPacking)  # built from the pool's class
    return connection


def packed(connection: AbstractConnection, *args: Any) -> bytes:
    return b"".join(connection.pack_command(*args))


@pytest.mark.parametrize(
    ("url", "scheme_class"),
    [
        ("redis://127.0.0.1:1/0", Connection),
        ("rediss://127.0.0.1:1/0", SSLConnection),
    ],
)
def test_the_client_keeps_the_schemes_connection_class_beneath_the_packer(
    url: str, scheme_class: type[AbstractConnection]
) -> None:
    connection = redis_client(url).connection_pool.make_connection()
    assert isinstance(connection, _HiredisPacking)
    assert isinstance(connection, scheme_class)
    assert "pack_command" in vars(AbstractConnection)  # what the mixin overrides
    assert hiredis_packing(type(connection)) is type(connection)  # never wrapped twice


def test_a_save_pipeline_packs_to_the_same_bytes() -> None:
    """What the store sends most: an EVALSHA over `SAVE_CHUNK` leads (two keys, then the
    generation, mode, payload and TTL of each), large payloads included."""
    keys: list[bytes] = []
    args: list[Any] = []
    for lead in range(SAVE_CHUNK):
        keys += (b"app:lead:{%d}" % lead, b"app:journal:{%d}" % lead)
        args += (lead * 7, b"d" if lead % 2 else b"s", bytes([lead % 256]) * (lead * 40), 0)
    command = ("EVALSHA", "f" * 40, len(keys), *keys, *args)
    plain = Connection()
    assert packed(ours(), *command) == packed(plain, *command)
    commands = [command, ("HGETALL", b"app:lead:{1}"), ("WAIT", 1, 5000)]
    assert b"".join(ours().pack_commands(commands)) == b"".join(plain.pack_commands(commands))


@pytest.mark.parametrize(
    "command",
    [
        ("CONFIG GET", "maxmemory"),  # a first argument with a space: split, as redis-py does
        (b"CONFIG GET", b"maxmemory"),
        ("SET", bytearray(b"x"), memoryview(b"yz")),
        ("SET", "é€", -3, 2**70, 1.5, 1e20, b""),
        ("SET", b"k", b"v" * 100_000),  # beyond redis-py's buffer cutoff
    ],
)
def test_unusual_arguments_pack_to_the_same_bytes(command: tuple[Any, ...]) -> None:
    assert packed(ours(), *command) == packed(Connection(), *command)


@pytest.mark.parametrize("bad", [True, None, object()])
def test_what_redis_py_refuses_is_refused_alike(bad: Any) -> None:
    with pytest.raises(DataError):
        Connection().pack_command("SET", b"k", bad)
    with pytest.raises(DataError):
        ours().pack_command("SET", b"k", bad)


_ARGUMENT = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=50),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
)


@settings(deadline=None)  # timing on this shared machine is noisy
@given(st.sampled_from(["SET", b"EVALSHA", "HSET"]), st.lists(_ARGUMENT, max_size=40))
def test_any_command_packs_to_the_same_bytes(name: str | bytes, arguments: list[Any]) -> None:
    assert packed(ours(), name, *arguments) == packed(Connection(), name, *arguments)
