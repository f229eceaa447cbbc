"""Fixtures for the integration tests: real services, started on free ports.

A service that cannot be started skips the tests that need it on a developer machine, and
fails them under `CI=true`, where a silently skipped suite would pass for the wrong reason.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import NoReturn

import pytest
import redis
import redis.exceptions

from streams.devstack.kafka import KafkaBroker
from streams.devstack.process import ServiceError
from streams.devstack.redis import RedisServer
from streams.devstack.redis_cluster import RedisClusterStack


def _unavailable(what: str, exc: BaseException) -> NoReturn:
    message = f"{what} is unavailable: {type(exc).__name__}: {exc}"
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _start_redis_server() -> RedisServer:
    """A private `redis-server` (installed by scripts/install-redis if missing), AOF on."""
    server = RedisServer()
    try:
        return server.start()
    except (ServiceError, OSError) as exc:
        server.close()
        _unavailable("redis-server", exc)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis shared by the session: `STREAMS_REDIS_URL` if set, else a throwaway server.
    Tests keep apart by key prefix (a fresh app id each), not by FLUSHDB: the server may be
    someone else's."""
    url = os.environ.get("STREAMS_REDIS_URL")
    if url:
        client = redis.Redis.from_url(url, socket_connect_timeout=3.0, socket_timeout=3.0)
        try:
            client.ping()
        except redis.exceptions.RedisError as exc:
            _unavailable(f"Redis at STREAMS_REDIS_URL={url}", exc)
        finally:
            client.close()
        yield url
        return
    server = _start_redis_server()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A private `redis-server` for one test, which may restart or kill it at will."""
    server = _start_redis_server()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """An Apache Kafka broker shared by the session: `STREAMS_BROKER` if set, else a
    single-node KRaft broker from the cached Maven jars. Tests keep apart by topic names
    and consumer groups (fresh ones each)."""
    url = os.environ.get("STREAMS_BROKER")
    if url:
        yield ",".join(s.strip().removeprefix("kafka://") for s in url.split(","))
        return
    broker = KafkaBroker()
    try:
        broker.start()
    except (ServiceError, OSError) as exc:
        broker.close()
        _unavailable("Apache Kafka", exc)
    try:
        yield broker.bootstrap
    finally:
        broker.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterStack]:
    """A Redis Cluster shared by the session: three masters with a replica each, in
    cluster mode, on free ports (each node's bus on its port + 10000). Tests keep apart by
    key prefix; a test that kills nodes starts a cluster of its own."""
    cluster = RedisClusterStack()
    try:
        cluster.start()
    except (ServiceError, OSError, subprocess.SubprocessError) as exc:
        cluster.close()
        _unavailable("Redis Cluster (redis-server --cluster-enabled yes)", exc)
    try:
        yield cluster
    finally:
        cluster.close()
