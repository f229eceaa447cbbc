"""The worker's evaluation path without Kafka: the Python engine against the native core.

    .venv/bin/python bench/store_path.py [--records 100000] [--leads 2000] [--batch 500]
        [--cache-leads 100000] [--python-cold]

What `python -m streams worker` runs per batch (a `Processor` over the worker's
`TimedStore(RedisStore(...))`, cache trusted as the worker sets it: `check_cached=False`),
fed the same batches in one process, on a local redis-server: decode, load, evaluate,
save. Printed per engine and stream: activities/s (wall), CPU per activity of this process
(the Redis client's included, redis-server's not) and the bytes Redis received per
activity. Streams: the sample stream (`--records` over `--leads`), and bench/history.py's
deposits as one lead x 16,000 and 1,600 leads x 10 (cost flat in history: the ratio of the
busy lead's rate to the quiet leads'). The engines alternate, each stream twice, in fresh
namespaces; the better of the two runs is printed (a shared machine's noise only slows).
With `--python-cold`, also the core with its cold leads read by Python and handed over as
bytes (how it read them before it read snapshot and journal itself): with
`--cache-leads 0` that is the cold reader's cost, before and after, in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.history import deposits  # noqa: E402
from streams import ENGINE  # noqa: E402
from streams.devstack.redis import RedisServer  # noqa: E402
from streams.engine.compiler import load_plan  # noqa: E402
from streams.engine.datatypes import datetime_to_us  # noqa: E402
from streams.gc_tuning import tune_gc  # noqa: E402
from streams.pipeline import Processor, Record  # noqa: E402
from streams.runtime.worker import TimedStore  # noqa: E402
from streams.samples import sample_activities  # noqa: E402
from streams.state.redis_client import redis_client  # noqa: E402
from streams.state.redis_store import RedisStore  # noqa: E402


async def one_run(
    url: str,
    lines: list[bytes],
    batch: int,
    native: bool,
    cache_leads: int = 100_000,
    python_cold: bool = False,
) -> tuple[float, float, float, bool]:
    """(activities/s, CPU µs per activity, Redis bytes in per activity, the core ran).
    `python_cold`: the core's cold leads read by Python and handed over as bytes, as
    before the core read them itself (`RedisStore._read_native` declining every lead)."""
    plan = load_plan(ROOT / "rules")
    client = redis_client(url)
    store = RedisStore(
        client, f"bench-{uuid.uuid4().hex[:10]}", 0, cache_leads=cache_leads, check_cached=False
    )
    if python_cold:
        store._read_native = lambda core, ids, replies: (ids, replies)  # type: ignore[method-assign]
    processor = Processor(plan, TimedStore(store), native=native)
    records = [Record(v, "activities", 0, i) for i, v in enumerate(lines)]
    batches = [records[i : i + batch] for i in range(0, len(records), batch)]
    now = datetime_to_us(datetime(2026, 9, 1, tzinfo=UTC))
    before = (await client.info("stats"))["total_net_input_bytes"]
    wall, cpu = time.perf_counter(), time.process_time()
    for b in batches:
        await processor.process(b, now)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    received = (await client.info("stats"))["total_net_input_bytes"] - before
    await client.aclose()
    n = len(lines)
    return n / wall, cpu / n * 1e6, received / n, processor.native is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--leads", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--cache-leads", type=int, default=100_000, help="0: every lead read cold per batch"
    )
    parser.add_argument(
        "--python-cold",
        action="store_true",
        help="also the core with its cold leads read by Python (as before it read them)",
    )
    args = parser.parse_args()
    tune_gc()
    print(ENGINE.describe())
    streams = {
        f"sample, {args.records:,} over {args.leads:,} leads": [
            orjson.dumps(a) for a in sample_activities(args.records, args.leads, seed=3)
        ],
        "deposits, 1,600 leads x 10": deposits(1_600, 10, random.Random(7)),
        "deposits, 1 lead x 16,000": deposits(1, 16_000, random.Random(7)),
    }
    with RedisServer() as server:
        rates: dict[tuple[str, bool], float] = {}
        variants = [(False, False), (True, False)] + ([(True, True)] if args.python_cold else [])
        for name, lines in streams.items():
            for native, python_cold in variants:
                best = max(
                    (
                        asyncio.run(
                            one_run(
                                server.url, lines, args.batch, native, args.cache_leads, python_cold
                            )
                        )
                        for _ in range(2)
                    ),
                    key=lambda r: r[0],
                )
                if not python_cold:
                    rates[name, native] = best[0]
                engine = "native core" if best[3] else "Python engine"
                engine += ", cold by Python" if python_cold else ""
                print(
                    f"  {name:<36} {engine:<29} {best[0]:>9,.0f} activities/s  "
                    f"CPU {best[1]:>6.1f} µs/activity  Redis {best[2]:>6,.0f} B in/activity",
                    flush=True,
                )
        for native in (False, True):
            busy = rates["deposits, 1 lead x 16,000", native]
            quiet = rates["deposits, 1,600 leads x 10", native]
            engine = "native core" if native else "Python engine"
            print(f"  history ratio (1 x 16,000 / 1,600 x 10), {engine}: {busy / quiet:.2f}")
        sample = next(iter(streams))
        print(f"  sample stream, core / Python: {rates[sample, True] / rates[sample, False]:.2f}")


if __name__ == "__main__":
    main()
