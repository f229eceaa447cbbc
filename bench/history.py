"""Cost flat in a lead's history (issue 8, target 4): a busy lead against many quiet ones.

    .venv/bin/python bench/history.py [--sizes 10,1000,4000,16000] [--total 16000]
    .venv/bin/python bench/history.py --worker [--sizes 10,16000]   # the local stack
    .venv/bin/python bench/history.py --in-past [--sizes 10,16000]  # a filter bounding valueDate
    .venv/bin/python bench/history.py --worker --in-past [--sizes 10,16000]
    .venv/bin/python bench/history.py ... --rounds 5   # alternated rounds, each size's best

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
Kafka broker and redis-server (bench/stream.py's throughput phase: the records are written
first, the rate is read off the worker's metrics), and the bytes Redis received and sent
during each run are printed per activity: they must not grow with the lead's history.
`--in-past` applies there too (the worker's rules directory is then the copy with
`IN_PAST_CAMPAIGN`).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
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
    sizes: list[int], total: int, seed: int, timeout: float, rules: Path, lag: int
) -> None:
    """Each size's rate through the worker on `rules` (`STREAMS_RULES_DIR`), value dates
    lagging by up to `lag` days (`deposits`)."""
    import contextlib
    import tempfile

    import redis

    from bench.stream import throughput
    from streams.devstack.kafka import KafkaBroker
    from streams.devstack.redis import RedisServer

    with contextlib.ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-history-")))
        broker = stack.enter_context(KafkaBroker())
        redis_url = stack.enter_context(RedisServer()).url
        admin = redis.Redis.from_url(redis_url)
        rates: dict[int, float] = {}
        for n in sizes:
            lines = deposits(max(1, total // n), n, random.Random(seed), lag)
            before = admin.info("stats")
            rates[n], _ = throughput(
                broker.bootstrap, redis_url, lines, logs, timeout, {"STREAMS_RULES_DIR": str(rules)}
            )
            after = admin.info("stats")
            received = after["total_net_input_bytes"] - before["total_net_input_bytes"]
            sent = after["total_net_output_bytes"] - before["total_net_output_bytes"]
            print(
                f"  worker n = {n:>6,}  {total // n:>5,} lead(s)  {rates[n]:>7,.0f} activities/s"
                f"  ratio to n = {sizes[0]}: {rates[n] / rates[sizes[0]]:.2f}  Redis: "
                f"{received / len(lines):,.0f} B in, {sent / len(lines):,.0f} B out per activity",
                flush=True,
            )
        admin.close()


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
            worker_rates(sizes, args.total, args.seed, args.timeout, rules, lag)
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
