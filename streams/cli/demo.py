"""`sample` (a realistic stream for the sample rules) and `demo` (that stream, backtested)."""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from streams import ENGINE
from streams.backtest import run_backtest
from streams.cli.common import EXIT_OK, at_least, error, load_rules_or_exit
from streams.samples import sample_activities
from streams.settings import WorkerSettings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sample = commands.add_parser(
        "sample",
        help="print a realistic stream of activities for the sample rules (JSON lines)",
        description="Print a deterministic, realistic stream of activities for the sample "
        "rules/ directory: leads created, web visits, forms, conferences, cheque deposits, "
        "mobile purchases, field changes, deletions, a few duplicates and bad records.",
    )
    _stream_options(sample)
    sample.set_defaults(run=run_sample)

    demo = commands.add_parser(
        "demo",
        help="run the stack, a worker and a sample stream; show memberships as they come",
        description="Validate the rules, start the embedded stack (Apache Kafka, one KRaft "
        "node, and redis-server; STREAMS_BROKER / STREAMS_REDIS_URL use existing ones "
        "instead), a worker and the HTTP API (with a client made for the run, and curl lines "
        "to try it), send a realistic sample stream at a steady rate and print each "
        "membership event as the worker emits it, then a summary. On a terminal it keeps "
        "running after the stream until Ctrl-C, which stops everything it started. With "
        "--backtest: the same stream through the offline backtest instead.",
    )
    demo.add_argument(
        "--backtest",
        action="store_true",
        help="no services: run the stream through the backtest engine",
    )
    demo.add_argument(
        "--hold",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="after the stream, keep the stack running until Ctrl-C (default: when stdin "
        "is a terminal)",
    )
    demo.add_argument(
        "--rate", type=float, default=200.0, help="activities sent per second (default 200)"
    )
    demo.add_argument(
        "--rules",
        type=Path,
        default=None,
        metavar="RULES_DIR",
        help="the rules directory (default: STREAMS_RULES_DIR, else rules)",
    )
    demo.add_argument(
        "--show",
        type=int,
        default=25,
        metavar="N",
        help="memberships to print one by one (default 25; 0 for all)",
    )
    _stream_options(demo, count=2000)
    demo.set_defaults(run=run_demo)


def _stream_options(parser: argparse.ArgumentParser, count: int = 1000) -> None:
    parser.add_argument(
        "--count", type=at_least(0), default=count, help=f"activities (default {count})"
    )
    parser.add_argument(
        "--leads", type=at_least(1), default=200, help="distinct leads (default 200)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")


def run_sample(args: argparse.Namespace) -> int:
    out = sys.stdout.buffer
    for activity in sample_activities(args.count, args.leads, args.seed):
        out.write(orjson.dumps(activity) + b"\n")
    return EXIT_OK


def run_demo(args: argparse.Namespace) -> int:
    settings = WorkerSettings(**({"rules_dir": args.rules} if args.rules else {}))
    rules = settings.rules_dir
    plan = load_rules_or_exit(rules, settings)
    print(
        f"rules: {rules} (rulesVersion {plan.rules_version}): "
        f"{len(plan.catalog.files)} custom activity types, {len(plan.campaigns)} campaigns"
    )
    print(ENGINE.describe())
    if not args.backtest:
        from streams.cli.live_demo import run_live_demo

        hold = sys.stdin.isatty() if args.hold is None else args.hold
        run_live_demo(plan, settings, args.count, args.leads, args.seed, args.rate, hold)
        return EXIT_OK
    activities = {a["marketoGUID"]: a for a in sample_activities(args.count, args.leads, args.seed)}
    with tempfile.TemporaryDirectory(prefix="streams-demo-") as tmp:
        stream = Path(tmp) / "activities.jsonl"
        with stream.open("wb") as out:
            for activity in sample_activities(args.count, args.leads, args.seed):
                out.write(orjson.dumps(activity) + b"\n")
        print(f"stream: {args.count} sample activities over {args.leads} leads\n")
        events_out, rejected_out = io.BytesIO(), io.BytesIO()
        stats = run_backtest(plan, stream, events_out, rejected_out, settings.dedup_horizon_us)
    events = [orjson.loads(line) for line in events_out.getvalue().splitlines()]
    rejected = [orjson.loads(line) for line in rejected_out.getvalue().splitlines()]
    shown = events if args.show == 0 else _variety(events, args.show)
    for event in shown:
        print(describe_membership(event, activities.get(event["activityId"], {})))
    if len(shown) < len(events):
        print(f"... {len(events) - len(shown)} more not shown (--show 0 prints them all)")
    print("\nmemberships per campaign:")
    per_campaign = Counter((e["campaignId"], e["campaignName"]) for e in events)
    for campaign in plan.campaigns:
        members = per_campaign.get((campaign.id, campaign.name), 0)
        status = (
            ""
            if campaign.id in {c.id for cs in plan.by_type.values() for c in cs}
            else ("  (inactive)")
        )
        print(f"  {campaign.id}  {campaign.name:<30} {members:>5}{status}")
    codes = Counter(r["error"]["code"] for r in rejected)
    print(f"\n{stats.summary()}")
    if codes:
        print("rejected: " + ", ".join(f"{n} {code}" for code, n in codes.most_common()))
        print(f"  e.g. line {rejected[0]['offset']}: {rejected[0]['error']['message']}")
    error(
        "\nThe same engine runs in the workers; `python -m streams backtest --rules DIR FILE` "
        "prints these events as JSON."
    )
    return EXIT_OK


def _variety(events: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The first memberships in emission order, at most three per campaign, so that a short
    feed shows every campaign at work."""
    per_campaign: Counter[int] = Counter()
    chosen = []
    for event in events:
        if per_campaign[event["campaignId"]] < 3:
            per_campaign[event["campaignId"]] += 1
            chosen.append(event)
            if len(chosen) == limit:
                break
    return chosen


def describe_membership(event: dict[str, Any], activity: dict[str, Any]) -> str:
    """One line for a person: when, who, which campaign, on what (both demos print it)."""
    primary = activity.get("primaryAttributeValue")
    if activity.get("fields") and activity.get("activityTypeId") == 13:
        primary = ", ".join(f"{f['name']} -> {f['newValue']}" for f in activity["fields"])
    detail = f" ({primary})" if primary is not None else ""
    return (
        f"{event['activityDate']}  lead {event['leadId']:<5} joined "
        f"{event['campaignName']!r} ({event['campaignId']}) "
        f"on {event['trigger']}{detail}"
    )
