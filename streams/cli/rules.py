"""`validate` and `backtest`: the command-line contract of the spec."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import BinaryIO

from streams import ENGINE
from streams.backtest import DEFAULT_BATCH, BacktestStats, run_backtest
from streams.cli.common import EXIT_OK, CommandError, error, load_rules_or_exit
from streams.engine.compiler import Plan
from streams.gc_tuning import tune_gc
from streams.settings import EngineSettings
from streams.text import counted


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    validate = commands.add_parser(
        "validate",
        help="check a rules directory; exit 2 with one line per problem if it is invalid",
        description="Check every activity type and campaign of RULES_DIR. Exits 0 when "
        "valid; otherwise prints one line per problem on stderr (file: field: message) "
        "and exits 2.",
    )
    validate.add_argument("rules_dir", type=Path, metavar="RULES_DIR")
    validate.set_defaults(run=run_validate)

    backtest = commands.add_parser(
        "backtest",
        help="run the engine over a file of activities and print the membership events",
        description="Run the same engine as the workers, with in-memory state, over the "
        "activities of a JSON-lines file (in file order, as one partition). Prints the "
        "membership events on stdout, one JSON object per line; a summary goes to stderr. "
        "Exits 0 when it ran (even with rejected lines), 2 when the rules are invalid.",
    )
    backtest.add_argument(
        "--rules", type=Path, required=True, metavar="RULES_DIR", help="the rules directory"
    )
    backtest.add_argument("activities", type=Path, metavar="ACTIVITIES.jsonl")
    backtest.add_argument(
        "--rejected",
        type=Path,
        metavar="REJECTED.jsonl",
        help="write rejected lines here as dead-letter records",
    )
    backtest.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH,
        help=f"records per batch (default {DEFAULT_BATCH}); the output does not depend on it",
    )
    backtest.add_argument("--quiet", action="store_true", help="no summary on stderr")
    backtest.add_argument(
        "--switch",
        action="append",
        default=[],
        metavar="OFFSET=RULES_DIR",
        help="from line OFFSET (0-based, as a worker's switch log records the partition's "
        "offset) evaluate with RULES_DIR instead: replays a hot reload; repeatable",
    )
    backtest.set_defaults(run=run_backtest_command)


def run_validate(args: argparse.Namespace) -> int:
    plan = load_rules_or_exit(args.rules_dir, EngineSettings())
    error(
        f"{args.rules_dir}: valid: "
        f"{counted(len(plan.catalog.files), 'custom activity type')}, "
        f"{counted(len(plan.campaigns), 'campaign')}; rulesVersion {plan.rules_version}"
    )
    return EXIT_OK


def run_backtest_command(args: argparse.Namespace) -> int:
    settings = EngineSettings()
    if not args.activities.is_file():
        raise CommandError(f"{args.activities}: no such file")
    if args.batch_size < 1:
        raise CommandError("--batch-size must be at least 1")
    plan = load_rules_or_exit(args.rules, settings)
    switches = [_switch(text, settings) for text in args.switch]
    if not args.quiet:
        error(f"backtest: {ENGINE.describe()}")
    tune_gc()
    rejected: BinaryIO | None = None
    try:
        if args.rejected is not None:
            try:
                rejected = args.rejected.open("wb")
            except OSError as exc:
                raise CommandError(f"{args.rejected}: cannot write: {exc.strerror}") from None
        show = not args.quiet and sys.stderr.isatty()
        last = [time.monotonic()]

        def progress(stats: BacktestStats) -> None:
            if show and time.monotonic() - last[0] >= 1.0:
                last[0] = time.monotonic()
                print(
                    f"\rbacktest: {counted(stats.lines, 'line')}, "
                    f"{counted(stats.events, 'membership')}",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )

        stats = run_backtest(
            plan,
            args.activities,
            sys.stdout.buffer,
            rejected,
            settings.dedup_horizon_us,
            args.batch_size,
            progress,
            switches,
            settings.limits,
        )
        sys.stdout.buffer.flush()
    finally:
        if rejected is not None:
            rejected.close()
    if not args.quiet:
        if show:
            print("\r", end="", file=sys.stderr)
        error(f"backtest: {stats.summary()}")
    return EXIT_OK


def _switch(text: str, settings: EngineSettings) -> tuple[int, Plan]:
    offset, equals, rules_dir = text.partition("=")
    if not equals or not offset.strip().isdigit() or not rules_dir:
        raise CommandError(f"--switch {text!r}: expected OFFSET=RULES_DIR, e.g. 1200=rules-v2")
    return int(offset), load_rules_or_exit(Path(rules_dir), settings)
