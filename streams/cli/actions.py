"""`actions list`: every custom action with what it calls and the campaigns using it."""

from __future__ import annotations

import argparse
from pathlib import Path

from streams.cli.common import EXIT_OK, load_rules_or_exit
from streams.settings import EngineSettings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    actions = commands.add_parser(
        "actions",
        help="custom actions: list them with the campaigns that use them",
        description="Custom actions (rules/actions/*.yaml).",
    )
    sub = actions.add_subparsers(title="commands", metavar="COMMAND", required=True)
    listing = sub.add_parser(
        "list",
        help="every action, what it calls and the campaigns it is used in",
        description="Every action of RULES_DIR (default STREAMS_RULES_DIR): method, URL, "
        "authentication, timeout, and the campaigns that list it (active ones freeze it "
        "but for description, url, timeout and authentication). Exit 2 on invalid rules.",
    )
    listing.add_argument("rules_dir", type=Path, nargs="?", metavar="RULES_DIR")
    listing.set_defaults(run=run_list)


def run_list(args: argparse.Namespace) -> int:
    settings = EngineSettings()
    plan = load_rules_or_exit(args.rules_dir or settings.rules_dir, settings)
    active = {c.id for campaigns in plan.by_type.values() for c in campaigns}
    campaigns = {c.id: c for c in plan.campaigns}
    used: dict[str, list[str]] = {}
    for campaign_id, uses in sorted(plan.actions.uses.items()):
        for use in uses:
            state = "active" if campaign_id in active else "inactive"
            used.setdefault(use.action.name, []).append(
                f"{campaign_id} {campaigns[campaign_id].name} ({state})"
            )
    if not plan.actions.actions:
        print("no actions")
    for name, action in sorted(plan.actions.actions.items(), key=lambda kv: kv[0].casefold()):
        print(f"{name}  {action.method} {action.url}")
        if action.definition.description:
            print(f"  description: {action.definition.description}")
        print(f"  authentication: {action.auth.type}; timeout: {action.timeout:g} s")
        limits = plan.actions.limits(action.endpoint)
        rate = (
            f"{limits.mode} {limits.calls_per_second:g} calls/s"
            + (f", maxDelay {limits.max_delay:g} s" if limits.mode == "throttle" else "")
            if limits.mode
            else "no rate limit"
        )
        print(f"  endpoint {action.endpoint}: {rate}; concurrency {limits.concurrency}")
        print(f"  file: {action.path}")
        print(f"  used in: {'; '.join(used.get(name, [])) or 'no campaign'}")
    return EXIT_OK
