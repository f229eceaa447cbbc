r"""The native core's CPU per activity against the leads' history, on the sample stream
(issue 8, target 2: why a latency phase costs the worker more per activity).

    .venv/bin/python bench/history_fifths.py [--per-lead 150] [--leads 2000] [--batch 6000]

`sample_activities(per-lead × leads, leads)` (bench/stream.py's stream) goes through one
native core in batches of `--batch` (decode, evaluate, payloads, commit as
`NativeProcessor.process_stored` calls them; no Redis: the payloads are counted and
committed at once), twice: with the processing clock at the wall clock (what a worker
fed the stream now uses) and at a clock after the stream's last `activityDate` (every
record dated in the past). Printed per fifth of the stream: the activities per lead by
its end, µs per activity of each step, dead letters, records dated more than the future
horizon (1 day) after the clock, payload bytes per activity and the share of payloads
that are deltas.

What it showed (2026-11-30): the growth is the stream's dates, not the history. The
generator spaces a lead's activities 1-144 hours apart from January 2026, so past about
100 activities per lead they are dated after today, are rejected as `invalid_value`
(future horizon) by the Python decoder the core hands them to, and become dead letters;
with the clock after the stream's end the cost per activity is flat.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from streams import ENGINE  # noqa: E402
from streams.engine.activity import DEFAULT_FUTURE_HORIZON_US  # noqa: E402
from streams.engine.compiler import load_plan  # noqa: E402
from streams.engine.datatypes import datetime_to_us, parse_moment_us  # noqa: E402
from streams.engine.leadstate import LeadState  # noqa: E402
from streams.engine.native import _limits, _module, _parse, describe_plan  # noqa: E402
from streams.pipeline import Processor, Record  # noqa: E402
from streams.samples import sample_activities  # noqa: E402
from streams.state.codec import encode_state  # noqa: E402
from streams.state.memory import MemoryStore  # noqa: E402

STEPS = ("decode", "evaluate", "payloads", "commit")


def run(module: Any, records: list[Record], dates: list[int], now_us: int, batch: int) -> None:
    plan = load_plan(ROOT / "rules")
    processor = Processor(plan, MemoryStore(), native=False)
    core = module.Core(describe_plan(plan, processor.decoder.catalog), _limits(processor), _parse)
    empty = encode_state(LeadState())
    held: set[int] = set()

    def fallback(record: Record) -> object:
        return processor.decode_one(record, now_us)

    fifth = len(records) // 5
    per_lead = len(records) // len({orjson.loads(r.value).get("leadId") for r in records})
    for f in range(5):
        spent: collections.Counter[str] = collections.Counter()
        letters = size = deltas = saves = 0
        part = range(f * fifth, (f + 1) * fifth)
        future = sum(1 for i in part if dates[i] > now_us + DEFAULT_FUTURE_HORIZON_US)
        for i in range(part.start, part.stop, batch):
            t0 = time.perf_counter_ns()
            leads, dead, decoded = core.decode(
                records[i : min(i + batch, part.stop)], now_us, fallback
            )
            t1 = time.perf_counter_ns()
            for lead in leads:  # a lead the core has not seen: an empty stored state
                if lead not in held:
                    core.put_state(lead, empty, len(empty), 0)
                    held.add(lead)
            t2 = time.perf_counter_ns()
            core.evaluate(decoded, now_us, False)
            t3 = time.perf_counter_ns()
            payloads = core.payloads(leads)
            t4 = time.perf_counter_ns()
            core.commit(leads)
            t5 = time.perf_counter_ns()
            for step, ns in zip(STEPS, (t1 - t0, t3 - t2, t4 - t3, t5 - t4), strict=True):
                spent[step] += ns
            letters += len(dead)
            saves += len(payloads)
            deltas += sum(1 for _, is_delta, _ in payloads if is_delta)
            size += sum(len(p) for _, _, p in payloads)
        total = sum(spent.values())
        steps = " ".join(f"{spent[s] / 1000 / fifth:>8.2f}" for s in STEPS)
        print(
            f"{(f + 1) * per_lead // 5:>9} {steps} {total / 1000 / fifth:>8.2f} "
            f"{letters:>8} {future:>8} {size / fifth:>9.0f} {deltas / max(saves, 1):>7.0%}"
        )


def _date(activity: dict[str, Any]) -> int:
    """The record's `activityDate` in µs; 0 for one the decoder rejects anyway."""
    try:
        return parse_moment_us(str(activity.get("activityDate", "")))
    except ValueError:
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-lead", type=int, default=150)
    parser.add_argument("--leads", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=6_000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    if ENGINE.native is None:
        print(f"history_fifths: no native core here: {ENGINE.describe()}", file=sys.stderr)
        return 2
    module = _module()
    activities = list(sample_activities(args.per_lead * args.leads, args.leads, seed=args.seed))
    records = [Record(orjson.dumps(a), "bench", 0, i) for i, a in enumerate(activities)]
    dates = [_date(a) for a in activities]
    wall = datetime_to_us(datetime.now(UTC))
    after = max(dates) + datetime_to_us(datetime(1970, 1, 2, tzinfo=UTC))
    print(f"native core {ENGINE.describe()}; {len(records):,} activities, batches of {args.batch}")
    for name, now_us in (("wall clock", wall), ("after the stream's last date", after)):
        clock = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=now_us)
        print(f"clock: {name} ({clock:%Y-%m-%d})")
        print(
            f"{'per lead':>9} {'decode':>8} {'evaluate':>8} {'payloads':>8} {'commit':>8} "
            f"{'µs/act':>8} {'letters':>8} {'future':>8} {'bytes/act':>9} {'deltas':>7}"
        )
        run(module, records, dates, now_us, args.batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
