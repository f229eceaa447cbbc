"""Hot reload through the real worker on Apache Kafka and Redis: the rules change
mid-stream without a restart; an invalid ruleset is refused and the running one keeps
running; the switch is recorded (partition, offset, version) and `backtest --switch`
replays the stream with the same switch and emits the same events."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import redis

from streams.devstack.worker import WorkerProcess
from streams.engine.compiler import load_plan
from streams.runtime.connections import ensure_topics
from streams.runtime.hot_reload import SwitchLog
from streams.samples import sample_activities
from streams.state.redis_client import redis_client
from tests.integration.streaming import TopicReader, backtest, isolated_settings, produce

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"


def health(worker: WorkerProcess) -> dict[str, Any]:
    url = f"http://127.0.0.1:{worker.web_port}/health"
    with urllib.request.urlopen(url, timeout=5) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def poll_until(check: Any, timeout: float, what: str, worker: WorkerProcess) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        assert worker.alive(), worker.log_tail()
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout} s:\n{worker.log_tail()}")


def test_rules_change_mid_stream_and_the_backtest_replays_the_switch(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    live = tmp_path / "live"
    shutil.copytree(RULES, live)
    proposed = tmp_path / "proposed"
    shutil.copytree(RULES, proposed)
    deposits = proposed / "campaigns" / "high-value-deposits.yaml"
    deposits.write_text(deposits.read_text().replace("value: 10000", "value: 2000"))
    (proposed / "campaigns" / "pricing-interest.yaml").unlink()
    old_version, new_version = load_plan(RULES).rules_version, load_plan(proposed).rules_version

    lines = [orjson.dumps(a) for a in sample_activities(6000, 150, 23)]
    first, second = lines[:3000], lines[3000:]
    settings = isolated_settings(kafka_bootstrap, redis_url, live)
    run = uuid.uuid4().hex[:8]
    topic = f"one-partition-{run}"  # a file of lines is one partition
    # The worker refuses topics whose count is not STREAMS_PARTITIONS: all of one partition.
    outputs = {
        "STREAMS_TOPIC_MEMBERSHIPS": f"memberships-1-{run}",
        "STREAMS_TOPIC_DLQ": f"dlq-1-{run}",
    }
    ensure_topics(kafka_bootstrap, dict.fromkeys([topic, *outputs.values()], 1))
    settings |= outputs | {
        "STREAMS_TOPIC_ACTIVITIES": topic,
        "STREAMS_PARTITIONS": "1",
        "STREAMS_RULES_RELOAD_INTERVAL": "0.5",
        "STREAMS_BATCH_SIZE": "250",
    }
    memberships = TopicReader(kafka_bootstrap, settings["STREAMS_TOPIC_MEMBERSHIPS"])
    before = backtest(RULES, first)
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        worker.wait_ready()
        produce(kafka_bootstrap, topic, first, lambda line: None)
        got = memberships.until(lambda v: len(v) >= len(before.events), 120, worker.alive)
        assert len(got) == len(before.events), worker.log_tail()

        # An invalid ruleset is refused; the one in force keeps running.
        (live / "campaigns" / "broken.yaml").write_text(
            "id: 9\nname: Broken\ntriggers:\n  - trigger: Nothing Like This\n"
        )
        poll_until(
            lambda: 'streams_rules_reloads_total{result="refused"} 1.0' in worker.metrics(),
            30,
            "the refusal counted",
            worker,
        )
        assert health(worker)["rulesVersion"] == old_version
        assert "rules reload refused" in worker.log_tail(200)
        assert "unknown trigger 'Nothing Like This'" in worker.log_tail(200)

        # The proposed rules go live: no restart.
        (live / "campaigns" / "broken.yaml").unlink()
        shutil.rmtree(live / "campaigns")
        shutil.copytree(proposed / "campaigns", live / "campaigns")
        poll_until(
            lambda: health(worker)["rulesVersion"] == new_version, 30, "the new version", worker
        )
        metrics = worker.metrics()
        assert f'streams_rules_info{{rules_version="{new_version}"}} 1.0' in metrics
        assert f'rules_version="{old_version}"' not in metrics  # one version exported
        produce(kafka_bootstrap, topic, second, lambda line: None)

        client = redis.Redis.from_url(redis_url)
        key = f"{settings['STREAMS_APP_ID']}:rules:switches:{topic}:0"

        def switches() -> list[dict[str, Any]]:
            return [json.loads(raw) for raw in client.lrange(key, 0, -1)]

        poll_until(lambda: len(switches()) == 2, 60, "the switch recorded", worker)
        (start, switch) = switches()
        assert start == {"offset": 0, "rulesVersion": old_version}
        assert switch["rulesVersion"] == new_version and switch["offset"] >= 3000

        history = tmp_path / "stream.jsonl"
        history.write_bytes(b"".join(line + b"\n" for line in lines))
        replay = subprocess.run(
            [sys.executable, "-m", "streams", "backtest", "--rules", str(RULES),
             "--switch", f"{switch['offset']}={proposed}", str(history), "--quiet"],
            capture_output=True, check=True, cwd=ROOT,
        )  # fmt: skip
        expected = [orjson.loads(line) for line in replay.stdout.splitlines()]
        got = memberships.until(lambda v: len(v) >= len(expected), 120, worker.alive)
        time.sleep(1.0)
        memberships.poll()
    memberships.close()
    client.close()
    assert len(memberships.values) == len(expected)
    assert {e["eventId"]: e for e in memberships.values} == {e["eventId"]: e for e in expected}
    versions = {e["rulesVersion"] for e in expected}
    assert versions == {old_version, new_version}  # both rulesets emitted memberships
    # The replay differs from a run on the old rules alone: the switch mattered.
    assert {e["eventId"] for e in expected} != backtest(RULES, lines).ids


def test_the_switch_log_records_each_partitions_first_offset_once_per_version(
    redis_url: str,
) -> None:
    """A batch holds runs of partitions, one partition's run broken by another's and
    resumed: each partition's first offset in the batch is what is recorded, once per
    version (`SwitchLog.record` looks a partition up once per run)."""

    def batch(*positions: tuple[str, int, int]) -> list[Any]:
        return [SimpleNamespace(topic=t, partition=p, offset=o) for t, p, o in positions]

    async def main() -> dict[tuple[str, int], list[dict[str, Any]]]:
        client = redis_client(redis_url)
        log = SwitchLog(client, f"switchlog-{uuid.uuid4().hex}")
        first = batch(("a", 0, 5), ("a", 0, 6), ("a", 1, 3), ("a", 0, 7), ("b", 0, 9))
        await log.record(first, "v1")
        await log.record(batch(("a", 0, 8), ("a", 2, 4)), "v1")  # a 0 known: only a 2
        await log.record(batch(("a", 1, 4), ("a", 0, 9)), "v2")
        out = {tp: await log.read(*tp) for tp in (("a", 0), ("a", 1), ("a", 2), ("b", 0))}
        await client.aclose()
        return out

    assert asyncio.run(main()) == {
        ("a", 0): [{"offset": 5, "rulesVersion": "v1"}, {"offset": 9, "rulesVersion": "v2"}],
        ("a", 1): [{"offset": 3, "rulesVersion": "v1"}, {"offset": 4, "rulesVersion": "v2"}],
        ("a", 2): [{"offset": 4, "rulesVersion": "v1"}],
        ("b", 0): [{"offset": 9, "rulesVersion": "v1"}],
    }


def test_after_a_revocation_each_partition_records_its_version_again(redis_url: str) -> None:
    """The worker forgets which version each partition last recorded when its partitions
    are revoked (`SwitchLog.forget`, from `forget_cached_states`): meanwhile another
    worker may have recorded a newer version for a partition this one gets back, still on
    the older plan; without forgetting, the older version would not be recorded again and
    the log would put the partition's later records under the other worker's version."""

    async def main() -> list[dict[str, Any]]:
        client = redis_client(redis_url)
        app_id = f"switchlog-{uuid.uuid4().hex}"
        this, other = SwitchLog(client, app_id), SwitchLog(client, app_id)
        record = SimpleNamespace(topic="a", partition=0, offset=5)
        await this.record([record], "v1")
        await other.record([SimpleNamespace(topic="a", partition=0, offset=20)], "v2")
        this.forget()
        await this.record([SimpleNamespace(topic="a", partition=0, offset=30)], "v1")
        out = await this.read("a", 0)
        await client.aclose()
        return out

    assert asyncio.run(main()) == [
        {"offset": 5, "rulesVersion": "v1"},
        {"offset": 20, "rulesVersion": "v2"},
        {"offset": 30, "rulesVersion": "v1"},
    ]
