"""Scale-out: 1, 2 and 4 worker processes on one consumer group, on one Redis and on a
Redis Cluster, with the figures the capacity model of deploy/README.md needs.

    .venv/bin/python bench/scaleout.py [--records 60000] [--leads 4000] [--partitions 8]
                                       [--workers 1,2,4] [--redis single,cluster]

For each Redis and each worker count: N sample activities (the sample rules/) are written
to fresh topics of `--partitions` partitions first; then the workers start together (one
group) and the rate is read off their /metrics (`streams_activities_total`, summed) between
10% and 90% of the stream, after the group join. Also measured over the whole run:

- CPU seconds the workers used between those two points (/proc/<pid>/stat): activities
  per worker CPU-second, the figure that does not depend on how many cores the machine
  lends the workers (start-up and group join left out);
- Redis commands (INFO commandstats, scripts' inner calls included), network bytes in and
  out (INFO stats) and CPU (INFO cpu) per activity, summed over every master; memory per
  lead at the end;
- the broker's CPU per activity (the whole run: producing the stream, serving the
  workers' fetches, their memberships and commits);
- broker bytes per activity: the activity record itself, and the membership events and
  dead letters it causes (their JSON sizes, from the backtest of the same stream).

The broker, Redis and the workers share this machine's cores with each other (and, where
this runs, with other work): the process count at which throughput stops growing is the
core count, not a property of the workers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, suppress
from pathlib import Path

import orjson
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streams.devstack.kafka import KafkaBroker, create_topics  # noqa: E402
from streams.devstack.redis import RedisServer  # noqa: E402
from streams.devstack.redis_cluster import RedisClusterStack  # noqa: E402
from streams.devstack.worker import WorkerProcess  # noqa: E402
from streams.engine.compiler import load_plan  # noqa: E402
from streams.pipeline import Processor, Record  # noqa: E402
from streams.samples import sample_activities  # noqa: E402
from streams.state.memory import MemoryStore  # noqa: E402

_ACTIVITIES_RE = re.compile(r'^streams_activities_total\{outcome="[a-z]+"\} ([0-9.e+]+)$', re.M)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def processed(workers: list[WorkerProcess]) -> int:
    total = 0
    for worker in workers:
        with suppress(OSError):
            total += int(sum(float(v) for v in _ACTIVITIES_RE.findall(worker.metrics())))
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and of its children that it waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLOCK_TICKS


class RedisCounters:
    """Commands, network bytes and memory, summed over a Redis or a cluster's masters."""

    def __init__(self, ports: list[int]) -> None:
        self.clients = [redis.Redis(host="127.0.0.1", port=p) for p in ports]

    def read(self) -> dict[str, float]:
        out = {"commands": 0.0, "bytes_in": 0.0, "bytes_out": 0.0, "memory": 0.0, "cpu": 0.0}
        for client in self.clients:
            stats = client.info("commandstats")
            out["commands"] += sum(
                v["calls"] for k, v in stats.items() if k not in ("cmdstat_info",)
            )
            info = client.info()
            out["bytes_in"] += info["total_net_input_bytes"]
            out["bytes_out"] += info["total_net_output_bytes"]
            out["memory"] += info["used_memory"]
            out["cpu"] += info["used_cpu_sys"] + info["used_cpu_user"]
        return out

    def close(self) -> None:
        for client in self.clients:
            client.close()


def broker_bytes(lines: list[bytes]) -> dict[str, float]:
    """Bytes per activity written to the broker: the record, and what it causes."""
    processor = Processor(load_plan(ROOT / "rules"), MemoryStore())
    records = [Record(line, "file", 0, i) for i, line in enumerate(lines)]
    result = asyncio.run(processor.process(records, time.time_ns() // 1000))
    n = len(lines)
    return {
        "activity": sum(len(line) for line in lines) / n,
        "memberships": sum(len(orjson.dumps(e)) for e in result.events) / n,
        "dead_letters": sum(len(orjson.dumps(d)) for d in result.dead_letters) / n,
        "events_per_activity": len(result.events) / n,
        "leads": len(store_leads(processor)),
    }


def store_leads(processor: Processor) -> dict[int, object]:
    store = processor.store
    assert isinstance(store, MemoryStore)
    return dict(store.leads)


def run(
    broker_pid: int,
    bootstrap: str,
    redis_url: str,
    cluster: bool,
    ports: list[int],
    lines: list[bytes],
    workers: int,
    partitions: int,
    logs: Path,
    timeout: float,
) -> dict[str, float]:
    tag = uuid.uuid4().hex[:8]
    settings = {
        "STREAMS_BROKER": bootstrap,
        "STREAMS_REDIS_URL": redis_url,
        "STREAMS_REDIS_CLUSTER": "true" if cluster else "false",
        "STREAMS_RULES_DIR": str(ROOT / "rules"),
        "STREAMS_APP_ID": f"scale-{tag}",
        "STREAMS_TOPIC_ACTIVITIES": f"scale-{tag}.activities",
        "STREAMS_TOPIC_MEMBERSHIPS": f"scale-{tag}.memberships",
        "STREAMS_TOPIC_DLQ": f"scale-{tag}.dlq",
        "STREAMS_PARTITIONS": str(partitions),
        "STREAMS_SESSION_TIMEOUT": "10",
    }
    create_topics(bootstrap, {settings[k]: partitions for k in settings if "TOPIC" in k})
    from kafka import KafkaProducer

    send = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=50, batch_size=512 * 1024)
    for line in lines:
        key = str(orjson.loads(line)["leadId"]).encode()
        send.send(settings["STREAMS_TOPIC_ACTIVITIES"], key=key, value=line)
    send.flush(300)
    send.close()

    counters = RedisCounters(ports)
    before = counters.read()
    broker_before = cpu_seconds(broker_pid)
    n = len(lines)
    procs = [
        WorkerProcess(settings, logs / f"{tag}-worker-{i}.log").start() for i in range(workers)
    ]
    try:
        deadline = time.monotonic() + timeout
        low = high = None
        count = 0
        while count < n and time.monotonic() < deadline and all(p.alive() for p in procs):
            count = processed(procs)
            now = time.monotonic()
            if low is None and count >= 0.1 * n:
                low = (now, count, sum(cpu_seconds(p.pid) for p in procs))
            if high is None and count >= 0.9 * n:
                high = (now, count, sum(cpu_seconds(p.pid) for p in procs))
            time.sleep(0.05)
        after = counters.read()
        broker_cpu = cpu_seconds(broker_pid) - broker_before
    finally:
        for proc in procs:
            proc.stop()
        counters.close()
    if low is None or high is None or high[0] <= low[0]:
        raise SystemExit(f"{workers} worker(s) processed {count} of {n}; logs in {logs}")
    return {
        "rate": (high[1] - low[1]) / (high[0] - low[0]),
        "cpu": high[2] - low[2],
        "per_cpu_s": (high[1] - low[1]) / (high[2] - low[2]),
        "commands": (after["commands"] - before["commands"]) / n,
        "bytes_in": (after["bytes_in"] - before["bytes_in"]) / n,
        "bytes_out": (after["bytes_out"] - before["bytes_out"]) / n,
        "memory": after["memory"] - before["memory"],
        "redis_cpu_us": (after["cpu"] - before["cpu"]) / n * 1e6,
        "broker_cpu_us": broker_cpu / n * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--leads", type=int, default=4000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--redis", default="single,cluster")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    modes = args.redis.split(",")
    lines = [orjson.dumps(a) for a in sample_activities(args.records, args.leads, seed=3)]
    wire = broker_bytes(lines)
    print(
        f"machine: {os.cpu_count()} cores, shared by the broker, Redis, the workers and "
        "this script (and any other work running)"
    )
    print(
        f"stream: {args.records} activities, {args.leads} leads, {args.partitions} "
        f"partitions; {wire['events_per_activity']:.3f} membership events per activity"
    )
    print(
        f"broker bytes per activity: record {wire['activity']:.0f}, memberships "
        f"{wire['memberships']:.0f}, dead letters {wire['dead_letters']:.0f} (JSON values, "
        "before compression and replication)"
    )
    logs = Path(tempfile.mkdtemp(prefix="streams-scaleout-"))
    with ExitStack() as stack:
        broker = stack.enter_context(KafkaBroker())
        print(
            f"{'redis':8} {'workers':>7} {'activities/s':>13} {'x 1 worker':>10} "
            f"{'CPU s 10-90%':>12} {'act/CPU-s':>10} {'redis cmd/act':>13} "
            f"{'redis B in/act':>14} {'B out/act':>9} {'mem B/lead':>10} "
            f"{'redis CPU us/act':>16} {'broker CPU us/act':>17}"
        )
        for mode in modes:
            if mode == "cluster":
                stack_cluster = stack.enter_context(RedisClusterStack())
                url, ports = stack_cluster.url, [n.port for n in stack_cluster.masters()]
            else:
                server = stack.enter_context(RedisServer())
                url, ports = server.url, [server.port]
            base = None
            for workers in counts:
                assert broker.process is not None
                got = run(
                    broker.process.pid,
                    broker.bootstrap,
                    url,
                    mode == "cluster",
                    ports,
                    lines,
                    workers,
                    args.partitions,
                    logs,
                    args.timeout,
                )
                base = base or got["rate"]
                print(
                    f"{mode:8} {workers:>7} {got['rate']:>13.0f} {got['rate'] / base:>10.2f} "
                    f"{got['cpu']:>12.1f} {got['per_cpu_s']:>10.0f} {got['commands']:>13.2f} "
                    f"{got['bytes_in']:>14.0f} {got['bytes_out']:>9.0f} "
                    f"{got['memory'] / wire['leads']:>10.0f} {got['redis_cpu_us']:>16.1f} "
                    f"{got['broker_cpu_us']:>17.1f}",
                    flush=True,
                )
    print(f"logs: {logs}")


if __name__ == "__main__":
    main()
