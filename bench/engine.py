"""Backtest-engine throughput on a synthetic catalog: activities/s and peak memory.

    .venv/bin/python bench/engine.py [--activities 1000000] [--leads 50000] [--seed 7]
    STREAMS_ENGINE=pure .venv/bin/python bench/engine.py   # the pure-Python reference

It measures whichever engine `STREAMS_ENGINE` selects (the native core, then the compiled
build, when they are there and fresh, see `streams.engine_select`) and prints which one on
its first line; `STREAMS_ENGINE=compiled` measures the mypyc build without the native core.

Generates 10 custom types, 50 campaigns (trigger constraints, history filters with windows
and minTimes, field filters, all/any/expression logic, every qualification rule) and a
stream over the leads, writes the rules to a temporary directory, then runs the same
`Processor` the backtest uses, with in-memory state, over the encoded records: decoding,
validation, deduplication, state updates and evaluation are all inside the measured time.
The generation is not. Target (issue 8): 100,000 activities/s on one core. It prints the
memory per lead: the growth of the peak resident size over the input, per lead.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streams import ENGINE  # noqa: E402
from streams.engine.compiler import load_plan  # noqa: E402
from streams.engine.datatypes import datetime_to_us  # noqa: E402
from streams.engine.evaluator import Engine  # noqa: E402
from streams.gc_tuning import tune_gc  # noqa: E402
from streams.pipeline import Processor, Record  # noqa: E402
from streams.state.memory import MemoryStore  # noqa: E402

TYPES = 10
CAMPAIGNS = 50
ATTRIBUTES = [
    ("amount", "currency"),
    ("quantity", "integer"),
    ("channel", "string"),
    ("premium", "boolean"),
    ("happenedAt", "datetime"),
]
CHANNELS = ["web", "mobile", "store", "partner", "phone"]
PRIMARIES = [f"item-{i}" for i in range(20)]
COUNTRIES = ["France", "Spain", "Germany", "Italy", "Japan"]
START = datetime(2026, 1, 1, tzinfo=UTC)


def write_rules(root: Path, rng: random.Random) -> None:
    (root / "activity-types").mkdir(parents=True)
    (root / "campaigns").mkdir()
    for t in range(TYPES):
        attributes = "".join(
            f"  - apiName: {api}\n    name: {api.title()}\n    dataType: {dt}\n"
            for api, dt in ATTRIBUTES
        )
        (root / "activity-types" / f"type{t}.yaml").write_text(
            f"id: {100001 + t}\napiName: type{t}\nname: Type {t}\n"
            f"triggerName: Does Thing {t}\nfilterName: Did Thing {t}\nstatus: approved\n"
            f"primaryAttribute:\n  apiName: item\n  name: Item\n  dataType: string\n"
            f"attributes:\n{attributes}"
        )
    qualifications = ["once", "every time", "once every 7 days"]
    for c in range(CAMPAIGNS):
        t = rng.randrange(TYPES)
        other = rng.randrange(TYPES)
        trigger_constraints = [
            f"      - operator: is\n        values: [{', '.join(rng.sample(PRIMARIES, 5))}]\n",
            f"      - attribute: amount\n        operator: at least\n"
            f"        value: {rng.randrange(10, 200)}\n",
            f"      - attribute: channel\n        operator: is not\n"
            f"        value: {rng.choice(CHANNELS)}\n",
        ][: rng.randrange(1, 4)]
        items = [
            f"    - filter: Did Thing {other}\n      window: {rng.choice([7, 30, 90])} days\n"
            f"      minTimes: {rng.randrange(1, 3)}\n"
            f"      constraints:\n        - attribute: quantity\n          operator: at least\n"
            f"          value: {rng.randrange(1, 5)}\n",
            f"    - field: country\n      operator: is\n"
            f"      values: [{', '.join(rng.sample(COUNTRIES, 2))}]\n",
            f"    - filter: Did Thing {t}\n      window: 30 days\n      negate: true\n"
            f"      minTimes: 5\n",
        ]
        logic = rng.choice(["all", "any", "1 and (2 or not 3)", "(1 or 2) and 3"])
        (root / "campaigns" / f"c{c}.yaml").write_text(
            f"id: {3000 + c}\nname: Campaign {c}\nstatus: active\n"
            f"qualification: {rng.choice(qualifications)}\n"
            f"triggers:\n  - trigger: Does Thing {t}\n    constraints:\n"
            + "".join(trigger_constraints)
            + f"filters:\n  logic: {logic}\n  items:\n"
            + "".join(items)
        )


def lead_draws(count: int, leads: int, zipf: float, rng: random.Random) -> list[int]:
    """Which lead each activity is for: uniform, or with `zipf` > 0 the k-th busiest lead
    weighted 1 / k**zipf (at 1.1 over 50,000 leads the busiest has ~9% of the stream)."""
    if zipf <= 0:
        return [rng.randrange(leads) for _ in range(count)]
    weights = [1 / (k + 1) ** zipf for k in range(leads)]
    return rng.choices(range(leads), weights, k=count)


def generate(count: int, leads: int, rng: random.Random, zipf: float = 0.0) -> list[bytes]:
    records: list[bytes] = []
    clock = [START + timedelta(seconds=rng.randrange(86_400)) for _ in range(leads)]
    draws = lead_draws(count, leads, zipf, rng)
    per_lead = [0] * leads
    for lead in draws:
        per_lead[lead] += 1
    for n, lead in enumerate(draws):
        # Each lead's activities spread over about 90 days, whatever its share.
        clock[lead] += timedelta(seconds=rng.randrange(max(1, 180 * 86_400 // per_lead[lead])))
        date = clock[lead].isoformat().replace("+00:00", "Z")
        roll = rng.random()
        record: dict[str, Any]
        if roll < 0.05:
            record = {
                "leadId": lead + 1,
                "activityDate": date,
                "activityTypeId": 13,
                "fields": [{"name": "country", "newValue": rng.choice(COUNTRIES)}],
            }
        elif roll < 0.15:
            record = {
                "leadId": lead + 1,
                "activityDate": date,
                "activityTypeId": 1,
                "primaryAttributeValue": f"/page/{rng.randrange(50)}",
            }
        else:
            record = {
                "marketoGUID": f"g{n}",
                "leadId": lead + 1,
                "activityDate": date,
                "activityTypeId": 100001 + rng.randrange(TYPES),
                "primaryAttributeValue": rng.choice(PRIMARIES),
                "attributes": [
                    {"apiName": "amount", "value": round(rng.uniform(1, 500), 2)},
                    {"apiName": "quantity", "value": rng.randrange(1, 10)},
                    {"apiName": "channel", "value": rng.choice(CHANNELS)},
                    {"apiName": "premium", "value": rng.random() < 0.2},
                    {"apiName": "happenedAt", "value": date},
                ],
            }
        records.append(orjson.dumps(record))
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--leads", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--zipf", type=float, default=0.0, help="skew of leads (0: uniform; 1.1: Zipf-like)"
    )
    parser.add_argument(
        "--reference", action="store_true", help="the scanning history filters (reference)"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the run")
    args = parser.parse_args()
    print(ENGINE.describe(), file=sys.stderr)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        write_rules(Path(tmp), rng)
        plan = load_plan(Path(tmp))
    started = time.perf_counter()
    lines = generate(args.activities, args.leads, rng, args.zipf)
    print(
        f"generated {len(lines):,} activities over {args.leads:,} leads "
        f"({sum(map(len, lines)) / len(lines):.0f} bytes each) "
        f"in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    records = [Record(v, "bench", 0, i) for i, v in enumerate(lines)]
    del lines
    baseline_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    processor = Processor(plan, MemoryStore())
    processor.engine = Engine(plan, index_from=None) if args.reference else Engine(plan)
    now_us = datetime_to_us(datetime.now(UTC))

    async def run() -> tuple[int, int, int]:
        events = rejected = duplicates = 0
        for i in range(0, len(records), args.batch):
            result = await processor.process(records[i : i + args.batch], now_us)
            events += len(result.events)
            rejected += len(result.dead_letters)
            duplicates += result.duplicates
        return events, rejected, duplicates

    tune_gc()  # as the backtest and the workers do
    # CPU time of this process, not wall time: the machine is shared, and other processes'
    # load would otherwise show up as this engine's slowness.
    started = time.process_time()
    for record in records:
        orjson.loads(record.value)
    floor = time.process_time() - started
    started = time.process_time()
    if args.profile:
        import cProfile
        import pstats

        with cProfile.Profile() as profile:
            events, rejected, duplicates = asyncio.run(run())
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    else:
        events, rejected, duplicates = asyncio.run(run())
    seconds = time.process_time() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    decode = processor.decoder.decode
    started = time.process_time()
    for record in records:
        decode(record.value, "bench/0/0", now_us)
    decoding = time.process_time() - started
    python = "compiled" if ENGINE.compiled else "pure Python"
    print(f"engine           {'native core over ' + python if processor.native else python}")
    print(f"activities       {len(records):,}")
    print(f"memberships      {events:,}  (rejected {rejected}, duplicates {duplicates})")
    print(f"time             {seconds:.2f} s of CPU")
    print(f"throughput       {len(records) / seconds:,.0f} activities/s (one core)")
    print(
        f"floor            {len(records) / floor:,.0f} records/s for orjson.loads alone; "
        f"the engine takes {seconds / floor:.1f}x that time"
    )
    print(
        f"decode           {len(records) / decoding:,.0f} records/s through Decoder.decode "
        f"alone, {decoding / floor:.1f}x the time of orjson.loads"
    )
    print(
        f"peak memory      {peak_kib / 1024:,.0f} MiB "
        f"(state and engine: {(peak_kib - baseline_kib) / 1024:,.0f} MiB over the input)"
    )
    store = processor.store
    assert isinstance(store, MemoryStore)
    leads = len(store.leads)
    print(
        f"memory per lead  {(peak_kib - baseline_kib) / max(1, leads):,.1f} KiB "
        f"(peak growth over the input / {leads:,} leads with state; "
        f"{len(records) / max(1, leads):.0f} activities each on average)"
    )


if __name__ == "__main__":
    main()
