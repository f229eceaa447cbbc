"""Cost flat in a lead's history (issue 8, target 4): a busy lead against many quiet ones.

    .venv/bin/python bench/history.py [--sizes 10,1000,4000,16000] [--total 16000]
    .venv/bin/python bench/history.py --worker [--sizes 10,16000]   # the local stack
    .venv/bin/python bench/history.py --in-past [--sizes 10,16000]  # a filter bounding valueDate
    .venv/bin/python bench/history.py --worker --in-past [--sizes 10,16000]
    .venv/bin/python bench/history.py ... --rounds 5   # alternated rounds, each size's best
                                                       # (--worker: each size's median)

For each size n, the same number of activities (`--total`) goes through the backtest
pipeline (`Processor` on `MemoryStore`, decoding included) as `total / n` leads of n cheque
deposits each, all inside the 3-month window of the sample rules' `Repeat depositors`
history filter, in a late-arriving order (a tenth of them dated before the previous one, as
mobile devices send). Half the deposits carry an exchange rate the filter does not accept,
so a scan cannot stop early. The rate of each size is printed with its ratio to n = 10, all
in one run (CPU time of this process). Target: ≥ 0.80 at n = 16,000.

With `--in-past`, the rules are the sample rules plus one `every time` campaign whose history
filter bounds the entry's own `valueDate` by `in past 7 days` (`IN_PAST_CAMPAIGN`: a count
over two ranges at once, the entry's date in the window and its value date in `[T - 7 days,
T]`), and each deposit's value date lags its activity date by up to 10 days. Its second
item (a country the bench never sets) never holds, so the campaign fires for no size and
the history filter is evaluated on every deposit of every size.

With `--worker`, the same streams go through `python -m streams worker` on a local Apache
Kafka broker and redis-server (`worker_run`: the records are written first, then a worker
started on them is timed from its /ready to its last processed activity, read off its
/metrics every 10 ms), and each run prints the bytes Redis received and sent per activity
(they must not grow with the lead's history), the longest time the processed count stood
still and the worker's stage breakdown per batch; with `--rounds`, each size's median.
`--in-past` applies there too (the worker's rules directory is then the copy with
`IN_PAST_CAMPAIGN`).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streams.engine.compiler import load_plan  # noqa: E402
from streams.engine.datatypes import datetime_to_us  # noqa: E402
from streams.engine.evaluator import Engine  # noqa: E402
from streams.gc_tuning import tune_gc  # noqa: E402
from streams.pipeline import Processor, Record  # noqa: E402
from streams.state.memory import MemoryStore  # noqa: E402

START = datetime(2026, 3, 1, tzinfo=UTC)
SPAN = timedelta(days=80)
"""Every deposit of a lead lies within this span, inside the filter's 3-month window."""

IN_PAST_CAMPAIGN = """\
id: 2901
name: Recent value dates (bench)
status: active
qualification: every time
triggers:
  - trigger: Deposits Cheque
filters:
  items:
    - filter: Deposited Cheque
      window: 3 months
      minTimes: 3
      constraints:
        - attribute: valueDate
          operator: in past
          value: 7 days
        - attribute: receiptUrl
          operator: is not empty
    - field: country
      operator: is
      value: Atlantis
"""
"""`--in-past`: a history filter with an `in past` constraint on the entry's own attribute,
evaluated on every deposit (item 2, a text field the bench never sets, never holds, so it
never fires; a text comparison, which the native core makes without calling Python)."""


def deposits(leads: int, per_lead: int, rng: random.Random, lag_days: int = 0) -> list[bytes]:
    """`per_lead` activities for each of `leads` leads, lead after lead: the field change the
    campaign's field filter needs, then deposits with dates rising across the span, one in
    ten arriving late (dated up to a day before the previous); with `lag_days`, each value
    date up to that many days before the activity's date."""
    out: list[bytes] = []
    step = SPAN / per_lead
    for lead in range(1, leads + 1):
        # What the campaign's field filter asks for (annualRevenue ≥ 50,000), set first.
        out.append(
            orjson.dumps(
                {
                    "leadId": lead,
                    "activityDate": (START - timedelta(days=1)).isoformat(),
                    "activityTypeId": 13,
                    "primaryAttributeValue": "annualRevenue",
                    "fields": [{"name": "annualRevenue", "newValue": "80000"}],
                }
            )
        )
        for i in range(per_lead - 1):
            when = START + step * i
            if rng.random() < 0.1:
                when -= timedelta(seconds=rng.randrange(86_400))
            date = when.isoformat().replace("+00:00", "Z")
            value_date = when - timedelta(days=rng.randrange(lag_days)) if lag_days else when
            out.append(
                orjson.dumps(
                    {
                        "marketoGUID": f"l{lead}-{i}",
                        "leadId": lead,
                        "activityDate": date,
                        "activityTypeId": 100002,
                        "primaryAttributeValue": "Bank of Example",
                        "attributes": [
                            {"apiName": "amount", "value": 120.0},
                            {"apiName": "chequeCount", "value": 1},
                            {"apiName": "exchangeRate", "value": 1.0 if i % 2 else 1.1},
                            {"apiName": "valueDate", "value": value_date.date().isoformat()},
                            {"apiName": "receiptUrl", "value": f"https://bank.example/{i}"},
                        ],
                    }
                )
            )
    return out


def in_past_rules(root: Path) -> Path:
    """The sample rules plus `IN_PAST_CAMPAIGN`, copied under `root`."""
    rules = root / "rules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "campaigns" / "recent-value-dates.yaml").write_text(IN_PAST_CAMPAIGN)
    return rules


def rate(lines: list[bytes], batch: int, indexed: bool, rules: Path) -> tuple[float, int]:
    """Activities per CPU second through a fresh backtest pipeline, and events emitted."""
    plan = load_plan(rules)
    processor = Processor(plan, MemoryStore())
    processor.engine = Engine(plan) if indexed else Engine(plan, index_from=None)
    records = [Record(v, "bench", 0, i) for i, v in enumerate(lines)]
    now_us = datetime_to_us(datetime.now(UTC))

    async def run() -> int:
        events = 0
        for i in range(0, len(records), batch):
            events += len((await processor.process(records[i : i + batch], now_us)).events)
        return events

    started = time.process_time()
    events = asyncio.run(run())
    return len(records) / (time.process_time() - started), events


def worker_rates(
    sizes: list[int],
    total: int,
    seed: int,
    timeout: float,
    env: dict[str, str],
    lag: int,
    rounds: int,
) -> None:
    """Each size's rate through the worker with `env` (its rules directory, its batch size),
    value dates lagging by up to `lag` days (`deposits`), `rounds` times alternated: every
    run's rate, its longest stall and its stage breakdown, then each size's median."""
    import contextlib
    import statistics

    import redis

    from streams.devstack.kafka import KafkaBroker
    from streams.devstack.redis import RedisServer

    with contextlib.ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-history-")))
        broker = stack.enter_context(KafkaBroker())
        redis_url = stack.enter_context(RedisServer()).url
        admin = redis.Redis.from_url(redis_url)
        streams = {n: deposits(max(1, total // n), n, random.Random(seed), lag) for n in sizes}
        runs: dict[int, list[float]] = {n: [] for n in sizes}
        for round_ in range(rounds):
            for n in sizes:
                lines = streams[n]
                before = admin.info("stats")
                run = worker_run(broker.bootstrap, redis_url, lines, logs, timeout, env)
                after = admin.info("stats")
                received = after["total_net_input_bytes"] - before["total_net_input_bytes"]
                sent = after["total_net_output_bytes"] - before["total_net_output_bytes"]
                runs[n].append(run.rate)
                print(
                    f"  worker n = {n:>6,}  {total // n:>5,} lead(s)  {run.rate:>7,.0f} "
                    f"activities/s  ratio to n = {sizes[0]}: {run.rate / runs[sizes[0]][-1]:.2f}"
                    f"  longest stall {run.stall * 1000:,.0f} ms  Redis: "
                    f"{received / len(lines):,.0f} B in, {sent / len(lines):,.0f} B out per "
                    f"activity  load {os.getloadavg()[0]:.1f}"
                    + (f"  (round {round_ + 1})" if rounds > 1 else ""),
                    flush=True,
                )
                print(f"    {run.stages}", flush=True)
        admin.close()
    if rounds > 1:
        medians = {n: statistics.median(runs[n]) for n in sizes}
        print(
            "  median of each: "
            + ", ".join(
                f"n = {n:,} {medians[n]:,.0f}/s ({medians[n] / medians[sizes[0]]:.2f})"
                for n in sizes
            )
        )


@dataclass(frozen=True)
class WorkerRun:
    rate: float
    """Activities/s from the worker's /ready to its last processed activity."""
    stall: float
    """The longest time (s) the processed count stood still in that span."""
    stages: str
    """Mean ms per batch of each stage of the worker's path, batches and records/batch."""


POLL = 0.01
"""Seconds between two readings of the worker's /ready, then of its processed count. A
busy lead's 16,000 activities take a few batches, a few tenths of a second in all: timed
from the first processed batch seen (bench/stream.py's `throughput`, every 50 ms), one or
two batches were left to time, or none when the first reading came after the last."""


def worker_run(
    bootstrap: str,
    redis_url: str,
    lines: list[bytes],
    logs: Path,
    timeout: float,
    env: dict[str, str],
) -> WorkerRun:
    """`lines` written to a fresh topic first, then one worker started on them, timed from
    its /ready (group joined, assignment in force, warm-up done: its first fetch is under
    way) to its last processed activity, reading it every `POLL`."""
    import urllib.request

    from bench.stream import STAGES, fresh_settings, preload, processed, worker_stages
    from streams.devstack.worker import WorkerProcess

    settings = fresh_settings(bootstrap, redis_url) | env
    preload(bootstrap, settings["STREAMS_TOPIC_ACTIVITIES"], lines)
    log = logs / "history-worker.log"
    with WorkerProcess(settings, log) as worker:
        deadline = time.monotonic() + timeout
        ready = f"http://127.0.0.1:{worker.web_port}/ready"
        started = None
        while started is None and time.monotonic() < deadline and worker.alive():
            try:
                with urllib.request.urlopen(ready, timeout=1) as response:
                    if response.status == 200:
                        started = time.monotonic()
            except OSError:
                time.sleep(POLL)
        steps: list[tuple[float, int]] = [(started or 0.0, 0)]  # (when, count) as it moved
        while steps[-1][1] < len(lines) and time.monotonic() < deadline and worker.alive():
            count = processed(worker)
            if count != steps[-1][1]:
                steps.append((time.monotonic(), count))
            time.sleep(POLL)
        sums, counts = worker_stages(worker)
    if started is None or steps[-1][1] < len(lines):
        raise SystemExit(
            f"history: the worker processed {steps[-1][1]} of {len(lines)} (log: {log})"
        )
    stall = max(b[0] - a[0] for a, b in itertools.pairwise(steps))
    batches = counts.get("evaluate", 0.0)
    stages = "  ".join(
        f"{stage} {1000 * sums[stage] / counts[stage]:.1f}" for stage in STAGES if counts.get(stage)
    )
    stages += f" ms/batch; {batches:.0f} batches, {sums.get('records', 0) / max(batches, 1):,.0f}"
    stages += " records/batch"
    return WorkerRun(len(lines) / (steps[-1][0] - started), stall, stages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,1000,4000,16000")
    parser.add_argument("--total", type=int, default=16_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--reference", action="store_true", help="also run the scanning reference evaluator"
    )
    parser.add_argument("--worker", action="store_true", help="through the worker (local stack)")
    parser.add_argument(
        "--in-past",
        action="store_true",
        help="add a campaign whose history filter has `valueDate in past 7 days`",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure the sizes this many times, alternated, and keep each size's best rate",
    )
    parser.add_argument(
        "--worker-batch",
        type=int,
        help="the worker's STREAMS_BATCH_SIZE (default its own): a batch well under a fetch "
        "(2000) makes the busy lead's first fetch outlive aiokafka's 100 ms prefetch backoff",
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        rules = in_past_rules(Path(tmp)) if args.in_past else ROOT / "rules"
        lag = 10 if args.in_past else 0
        if args.worker:
            print("the worker on a local Kafka broker and redis-server")
            if args.in_past:
                print("with a history filter bounding valueDate by `in past 7 days`")
            env = {"STREAMS_RULES_DIR": str(rules)}
            if args.worker_batch:
                env["STREAMS_BATCH_SIZE"] = str(args.worker_batch)
            worker_rates(sizes, args.total, args.seed, args.timeout, env, lag, args.rounds)
            return
        tune_gc()
        from streams import ENGINE

        print(ENGINE.describe())
        if args.in_past:
            print("with a history filter bounding valueDate by `in past 7 days`")
        for indexed in [True, False] if args.reference else [True]:
            rates_of(args, sizes, indexed, rules, lag)


def rates_of(
    args: argparse.Namespace, sizes: list[int], indexed: bool, rules: Path, lag: int
) -> None:
    """Each size's rate through the engine (`indexed`) or the scanning reference, and its
    ratio to the first size's; with `--rounds`, every round's, then each size's best (this
    machine's noise is one-sided: a run is slowed, never sped up)."""
    print("indexed history (the engine)" if indexed else "scanning history (reference)")
    streams = {
        n: deposits(max(1, args.total // n), n, random.Random(args.seed), lag) for n in sizes
    }
    best: dict[int, float] = {}
    for round_ in range(args.rounds):
        rates: dict[int, float] = {}
        for n in sizes:
            rates[n], events = rate(streams[n], args.batch, indexed, rules)
            best[n] = max(best.get(n, 0.0), rates[n])
            print(
                f"  n = {n:>6,}  {args.total // n:>5,} lead(s)  {rates[n]:>9,.0f} activities/s"
                f"  ({events:,} memberships)  ratio to n = {sizes[0]}: "
                f"{rates[n] / rates[sizes[0]]:.2f}"
                + (f"  (round {round_ + 1})" if args.rounds > 1 else ""),
                flush=True,
            )
    if args.rounds > 1:
        print(
            "  best of each: "
            + ", ".join(
                f"n = {n:,} {best[n]:,.0f}/s ({best[n] / best[sizes[0]]:.2f})" for n in sizes
            )
        )


if __name__ == "__main__":
    main()
