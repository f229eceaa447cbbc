"""The throwaway Redis keeps its data across restart() and kill(): the chaos tests rely on it."""

from __future__ import annotations

import time

import pytest
import redis

from streams.devstack.redis import RedisServer

pytestmark = pytest.mark.integration


def _client(server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(server.url, socket_timeout=5.0)


def test_set_get_survives_restart_and_kill() -> None:
    t0 = time.monotonic()
    with RedisServer() as server:
        started = time.monotonic() - t0
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        port, workdir = server.port, server.workdir

        client = _client(server)
        client.set("k", "v1")
        assert client.get("k") == b"v1"
        client.close()

        server.restart()
        assert (server.port, server.workdir) == (port, workdir)
        client = _client(server)
        assert client.get("k") == b"v1", "AOF should have kept the key over a clean restart"
        client.set("k2", "v2")
        client.close()

        server.kill()
        assert not server.alive()
        server.start()
        assert server.port == port
        client = _client(server)
        # The AOF is written before the reply is sent, so a SIGKILL loses nothing here.
        assert client.get("k") == b"v1"
        assert client.get("k2") == b"v2"
        client.close()
    assert not server.alive()
    assert not workdir.exists(), "the temporary data dir is removed on exit"
    print(f"redis start {started:.3f} s")


def test_without_appendonly_restart_loses_data() -> None:
    with RedisServer(appendonly=False) as server:
        client = _client(server)
        client.set("k", "v")
        client.close()
        server.restart()
        client = _client(server)
        assert client.get("k") is None
        client.close()
