r"""The native core's save per batch against a lead's history (issue 8, target 4): what
`payloads` and `commit` cost for one lead as its history grows.

    .venv/bin/python bench/native_commit.py [--sizes 10,1000,4000,16000] [--batches 400]

For each size n, one lead's history is built to n cheque deposits (bench/history.py's
`deposits`, all inside the window of the sample rules) by a core of its own and handed to
the measuring core as its stored snapshot (`put_state`), then
`--batches` batches of `--batch` deposits each go through `decode`, `evaluate`,
`payloads` and `commit` as `NativeProcessor.process_stored` calls them (no Redis: the
payloads are handed back at once). Printed per size: the median time per batch of each
step in microseconds, the bytes a batch's payload holds, and the ratio of payloads +
commit to n = 10's. Target: the save's cost flat in n (the delta holds what the batch
appended; the checkpoint moves by it), up to the snapshots the journal policy writes now
and then (amortized: a snapshot once the journal outgrows it).

With `--steady`, 2n deposits over twice the retention (the sample rules': 365 days) are
built first, and the measured batches go on at the same pace: the lead holds about n
entries, and the retention prunes the oldest as each batch comes (`held`: the entries held
at the end). This shows what the retention's pruning costs per batch against n.

Instructions (callgrind, not noisy: the instructions of the measured batches' saves alone):

    valgrind --tool=callgrind --collect-atstart=no \
        --toggle-collect='streams_native::Core::__pymethod_payloads__' \
        --toggle-collect='streams_native::Core::__pymethod_commit__' \
        .venv/bin/python bench/native_commit.py --sizes 16000 --batches 100

Only the native core: without a native build this says so and exits 2.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from bench import history  # noqa: E402
from bench.history import deposits  # noqa: E402
from streams import ENGINE  # noqa: E402
from streams.engine.compiler import load_plan  # noqa: E402
from streams.engine.datatypes import datetime_to_us  # noqa: E402
from streams.engine.leadstate import LeadState  # noqa: E402
from streams.engine.native import _limits, _module, _parse, describe_plan  # noqa: E402
from streams.pipeline import Processor, Record  # noqa: E402
from streams.state.codec import encode_state  # noqa: E402
from streams.state.memory import MemoryStore  # noqa: E402

BUILD = 500
"""Deposits per batch while the history is built."""


def measure(
    module: object, n: int, batches: int, batch: int, seed: int, steady: bool
) -> dict[str, float]:
    plan = load_plan(ROOT / "rules")
    processor = Processor(plan, MemoryStore(), native=False)
    core = module.Core(  # type: ignore[attr-defined]
        describe_plan(plan, processor.decoder.catalog), _limits(processor), _parse
    )

    def fallback(record: Record) -> object:
        return processor.decode_one(record, now_us)

    now_us = datetime_to_us(datetime.now(UTC))
    built = 2 * n if steady else n
    if steady:  # 2n deposits over twice the retention, then on at the same pace
        history.SPAN = (
            2 * plan.retention_us * timedelta(microseconds=1) * (built + batches * batch) / built
        )
        now_us = datetime_to_us(history.START + history.SPAN) + 86_400_000_000
    lines = deposits(1, built + batches * batch, random.Random(seed))
    records = [Record(v, "bench", 0, i) for i, v in enumerate(lines)]
    # The history built by another core (no saves: only the measured batches call
    # `payloads` and `commit`, for callgrind's --toggle-collect), then held as stored.
    builder = module.Core(  # type: ignore[attr-defined]
        describe_plan(plan, processor.decoder.catalog), _limits(processor), _parse
    )
    for i in range(0, built, BUILD):
        builder.process(records[i : min(i + BUILD, built)], now_us, fallback)
    raw = builder.encode_state(1) or encode_state(LeadState())
    core.put_state(1, raw, len(raw), 0)
    times: dict[str, list[int]] = {"evaluate": [], "payloads": [], "commit": [], "bytes": []}

    def step(chunk: list[Record]) -> None:
        leads, _, decoded = core.decode(chunk, now_us, fallback)
        t0 = time.perf_counter_ns()
        core.evaluate(decoded, now_us, False)
        t1 = time.perf_counter_ns()
        payloads = core.payloads(leads)
        t2 = time.perf_counter_ns()
        core.commit(leads)
        t3 = time.perf_counter_ns()
        times["evaluate"].append(t1 - t0)
        times["payloads"].append(t2 - t1)
        times["commit"].append(t3 - t2)
        times["bytes"].append(sum(len(p) for _, _, p in payloads))

    for i in range(built, len(records), batch):
        step(records[i : i + batch])
    return {
        "evaluate": statistics.median(times["evaluate"]) / 1000,
        "payloads": statistics.median(times["payloads"]) / 1000,
        "commit": statistics.median(times["commit"]) / 1000,
        "save": statistics.median(
            p + c for p, c in zip(times["payloads"], times["commit"], strict=True)
        )
        / 1000,
        "bytes": statistics.median(times["bytes"]),
        "mean_bytes": statistics.fmean(times["bytes"]),
        "held": len(orjson.loads(core.encode_state(1))["h"]["100002"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,1000,4000,16000")
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--steady",
        action="store_true",
        help="2n deposits over twice the retention first: the retention prunes as the "
        "measured batches go on (n held in steady state)",
    )
    args = parser.parse_args()
    if ENGINE.native is None:
        print(f"native_commit: no native core here: {ENGINE.describe()}", file=sys.stderr)
        return 2
    module = _module()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"native core {ENGINE.describe()}; {args.batches} batches of {args.batch} deposits")
    print(
        f"{'history':>8} {'evaluate µs':>12} {'payloads µs':>12} {'commit µs':>10} "
        f"{'save µs':>8} {'bytes/batch':>12} {'mean bytes':>11} {'save ratio':>10} {'held':>6}"
    )
    base = None
    for n in sizes:
        m = measure(module, n, args.batches, args.batch, args.seed, args.steady)
        base = base or m["save"]
        print(
            f"{n:>8} {m['evaluate']:>12.1f} {m['payloads']:>12.1f} {m['commit']:>10.1f} "
            f"{m['save']:>8.1f} {m['bytes']:>12.0f} {m['mean_bytes']:>11.0f} "
            f"{base / m['save']:>10.2f} {m['held']:>6}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
