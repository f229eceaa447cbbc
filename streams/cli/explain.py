"""`explain --rules DIR --lead ID --campaign ID [HISTORY.jsonl]`: why a lead did or did not
join a campaign.

With a history file, the lead's records are run through the engine in file order (as the
backtest does, one partition) and each activity the campaign has a trigger on gets its
trace (`streams.engine.trace`) computed on the lead's state just before it; the trace's
decision is checked against what the engine then emits. Without one, the lead's live state
is read from Redis (`STREAMS_REDIS_URL`, `STREAMS_APP_ID`) and the filters and
qualification are shown as of now. Exit 0, or 2 on invalid rules, an unknown campaign, or a
lead with no record in the file (no state in Redis).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from streams.backtest import FILE_TOPIC, datetime_to_us_now, read_records
from streams.cli.common import EXIT_OK, CommandError, at_least, load_rules_or_exit
from streams.engine.activity import Activity, Decoder
from streams.engine.compiler import CompiledCampaign, Plan
from streams.engine.evaluator import Engine
from streams.engine.leadstate import LeadState
from streams.engine.trace import explain, live_trace
from streams.settings import EngineSettings, WorkerSettings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "explain",
        help="why a lead did or did not join a campaign: the evaluation trace",
        description="For one lead and one campaign, print the evaluation trace of each "
        "activity the campaign has a trigger on: triggers and constraints (value, operator, "
        "result), qualification, each filter (window, count against minTimes, negation; "
        "field values), the logic with each item's value, and the decision. Without "
        "HISTORY.jsonl, the lead's live state in Redis, as of now.",
    )
    parser.add_argument("--rules", type=Path, required=True, metavar="RULES_DIR")
    parser.add_argument("--lead", type=at_least(1), required=True, metavar="ID")
    parser.add_argument("--campaign", type=at_least(1), required=True, metavar="ID")
    parser.add_argument("history", type=Path, nargs="?", metavar="HISTORY.jsonl")
    parser.add_argument("--json", action="store_true", help="the traces as JSON, one per line")
    parser.set_defaults(run=run_explain)


def find_campaign(plan: Plan, campaign_id: int) -> CompiledCampaign:
    for campaign in plan.campaigns:
        if campaign.id == campaign_id:
            return campaign
    known = ", ".join(f"{c.id} ({c.name})" for c in plan.campaigns) or "none"
    raise CommandError(f"explain: no campaign {campaign_id}; known: {known}")


def lead_traces(
    plan: Plan, campaign: CompiledCampaign, history: Path, lead_id: int, dedup_horizon_us: int
) -> list[dict[str, Any]]:
    """Each of the lead's activities the campaign listens to, traced then processed."""
    decoder = Decoder(plan.catalog)
    engine = Engine(plan, dedup_horizon_us)
    state = LeadState()
    now_us = datetime_to_us_now()
    traces = []
    seen_lead = False
    with history.open("rb") as stream:
        for record in read_records(stream):
            decoded = decoder.decode(record.value, f"{FILE_TOPIC}/0/{record.offset}")
            if not isinstance(decoded, Activity) or decoded.lead_id != lead_id:
                continue
            seen_lead = True
            trace = explain(plan, state, decoded, campaign) if _listens(campaign, decoded) else None
            outcome = engine.process(state, decoded, now_us)
            if trace is None:
                continue
            trace["line"] = record.offset + 1
            if outcome.duplicate or outcome.redelivered:
                trace = {**trace, "member": False, "decision": "a duplicate: ignored"}
            elif trace["member"] != any(e["campaignId"] == campaign.id for e in outcome.events):
                raise RuntimeError(  # pragma: no cover - the trace asks the engine's own code
                    f"line {record.offset + 1}: the trace and the engine disagree"
                )
            traces.append(trace)
    if not seen_lead:
        raise CommandError(f"explain: {history}: no accepted record of lead {lead_id}")
    return traces


def _listens(campaign: CompiledCampaign, activity: Activity) -> bool:
    return activity.type_id in campaign.triggers


async def _live_state(settings: WorkerSettings, lead_id: int) -> LeadState | None:
    from streams.state.redis_client import redis_client
    from streams.state.redis_store import RedisStore

    client = redis_client(settings.redis_url, cluster=settings.redis_cluster)
    try:
        store = RedisStore(client, settings.app_id, ttl_ms=0)
        state = (await store.load([lead_id]))[lead_id]
    finally:
        await client.aclose()
    return None if state.is_empty() else state


def _yes(value: bool) -> str:
    return "true" if value else "false"


def _filters_lines(filters: dict[str, Any]) -> list[str]:
    if not filters["items"]:
        return ["  filters: none"]
    lines = [f"  filters (logic {filters['logic']}):"]
    for item in filters["items"]:
        if "filter" in item:
            constraints = f" where {'; '.join(item['constraints'])}" if item["constraints"] else ""
            lines.append(
                f"    {item['item']}. {item['filter']}{constraints}: {item['count']} in "
                f"[{item['window'][0]}, {item['window'][1]}] vs minTimes {item['minTimes']}"
                f"{' (negated)' if item['negate'] else ''} -> {_yes(item['result'])}"
            )
        else:
            lines.append(
                f"    {item['item']}. field {item['field']}: value {item['value']!r} "
                f"-> {_yes(item['result'])}"
            )
    lines.append(f"    logic: {filters['expression']} -> {_yes(filters['result'])}")
    return lines


def trace_lines(trace: dict[str, Any]) -> list[str]:
    activity = trace["activity"]
    lines = [
        f"line {trace['line']}: activity {activity['id']} type {activity['activityTypeId']} "
        f"at {activity['activityDate']}, primary {activity['primaryAttributeValue']!r}"
    ]
    for trigger in trace["triggers"]:
        lines.append(f"  trigger {trigger['trigger']!r} -> {_yes(trigger['result'])}")
        for check in trigger["constraints"]:
            lines.append(
                f"    {check['constraint']}: value {check['value']!r} -> {_yes(check['result'])}"
            )
    q = trace["qualification"]
    lines.append(f"  qualification {q['rule']}: {q['reason']} -> {_yes(q['eligible'])}")
    lines += _filters_lines(trace["filters"])
    lines.append(f"  decision: {trace['decision']}")
    return lines


def run_explain(args: argparse.Namespace) -> int:
    plan = load_rules_or_exit(args.rules, EngineSettings())
    campaign = find_campaign(plan, args.campaign)
    if args.history is not None:
        if not args.history.is_file():
            raise CommandError(f"{args.history}: no such file")
        traces = lead_traces(
            plan, campaign, args.history, args.lead, EngineSettings().dedup_horizon_us
        )
        if args.json:
            for trace in traces:
                print(json.dumps(trace, default=str))
            return EXIT_OK
        print(f"campaign {campaign.id} {campaign.name!r}, lead {args.lead}:")
        if not traces:
            print("  no activity of a type the campaign has a trigger on")
        for trace in traces:
            print("\n".join(trace_lines(trace)))
        return EXIT_OK
    state = asyncio.run(_live_state(WorkerSettings(), args.lead))
    if state is None:
        raise CommandError(f"explain: no state for lead {args.lead} in Redis")
    live = live_trace(campaign, state, datetime_to_us_now())
    if args.json:
        print(json.dumps(live, default=str))
        return EXIT_OK
    sys.stdout.write(
        f"campaign {campaign.id} {campaign.name!r}, lead {args.lead}, live state as of "
        f"{live['asOf']} (no activity: triggers are not evaluated)\n"
    )
    q = live["qualification"]
    print(f"  qualification {q['rule']}: {q['reason']} -> {_yes(q['eligible'])}")
    print("\n".join(_filters_lines(live["filters"])))
    return EXIT_OK
