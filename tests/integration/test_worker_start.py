"""A worker's start: what it prepares before it consumes (streams/runtime/worker.py,
`warm_up`), on a real broker and a redis-server of its own."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import orjson
import pytest
import redis

from streams.devstack.redis import RedisServer
from streams.devstack.worker import WorkerProcess
from streams.samples import sample_activities
from streams.state.redis_store import SAVE_LEADS_LUA
from tests.integration.streaming import TopicReader, isolated_settings, lead_key, produce

pytestmark = pytest.mark.integration

RULES = Path(__file__).resolve().parents[2] / "rules"


def test_a_starting_worker_loads_the_save_script_before_any_record_arrives(
    kafka_bootstrap: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    """A fresh redis-server knows no script: without the warm-up the first batch's save
    met NOSCRIPT and paid two more round trips. With no record sent, the script must be
    there once the worker started; and the first record then goes through as usual."""
    settings = isolated_settings(kafka_bootstrap, redis_server.url, RULES)
    sha = hashlib.sha1(SAVE_LEADS_LUA.encode()).hexdigest()
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert client.script_exists(sha) == [False]
        with WorkerProcess(settings, tmp_path / "worker.log") as worker:
            worker.wait_ready(60)
            deadline = time.monotonic() + 60
            while client.script_exists(sha) != [True]:
                assert time.monotonic() < deadline, worker.log_tail()
                assert worker.alive(), worker.log_tail()
                time.sleep(0.1)
            probe = next(
                orjson.dumps(a)
                for a in sample_activities(200, 20, seed=4)
                if a["activityTypeId"] == 12
            )
            produce(kafka_bootstrap, settings["STREAMS_TOPIC_ACTIVITIES"], [probe], lead_key)
            memberships = TopicReader(kafka_bootstrap, settings["STREAMS_TOPIC_MEMBERSHIPS"])
            got = memberships.until(lambda v: len(v) >= 1, 60, worker.alive)
        log = (tmp_path / "worker.log").read_text(errors="replace")
        assert got and got[0]["leadId"] == orjson.loads(probe)["leadId"], log[-3000:]
        assert "warm-up before consuming failed" not in log
    finally:
        client.close()
