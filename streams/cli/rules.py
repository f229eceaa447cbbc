"""`validate` and `backtest`: the command-line contract of the spec."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import BinaryIO

from streams.backtest import DEFAULT_BATCH, BacktestStats, run_backtest
from streams.cli.common import EXIT_OK, CommandError, error, load_rules_or_exit
from streams.gc_tuning import tune_gc
from streams.settings import EngineSettings


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
    backtest.set_defaults(run=run_backtest_command)


def run_validate(args: argparse.Namespace) -> int:
    plan = load_rules_or_exit(args.rules_dir, EngineSettings())
    custom = len(plan.catalog.files)
    error(
        f"{args.rules_dir}: valid: {custom} custom activity type{'s' if custom != 1 else ''}, "
        f"{len(plan.campaigns)} campaign{'s' if len(plan.campaigns) != 1 else ''}; "
        f"rulesVersion {plan.rules_version}"
    )
    return EXIT_OK


def run_backtest_command(args: argparse.Namespace) -> int:
    settings = EngineSettings()
    if not args.activities.is_file():
        raise CommandError(f"{args.activities}: no such file")
    if args.batch_size < 1:
        raise CommandError("--batch-size must be at least 1")
    plan = load_rules_or_exit(args.rules, settings)
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
                    f"\rbacktest: {stats.lines:,} lines, {stats.events:,} memberships",
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
