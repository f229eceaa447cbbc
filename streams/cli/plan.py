"""`plan --from OLD --to NEW HISTORY.jsonl`: what a rules change would do to memberships,
before it ships. Both rulesets are backtested over the same history (the same engine as the
workers) and compared (`streams.planning`); the report is text, or markdown for a
pull-request comment. Exit 0: nothing changes; 1: memberships or accepted records change;
2: invalid rules, an unknown directory or revision, or no such history file.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from streams.backtest import backtest_to_lists
from streams.cli.common import CommandError, at_least, error, load_rules_or_exit
from streams.engine.loader import read_rules
from streams.planning import EXAMPLES, CampaignChange, Example, PlanReport, Side, compare
from streams.rules_source import SourceError, materialise
from streams.runtime.hot_reload import refused_by_running
from streams.settings import EngineSettings
from streams.text import counted


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "plan",
        help="what a rules change would do to memberships, over a history file",
        description="Backtest two rulesets (rules directories, or git revisions of one) "
        "over the same history and print, per campaign, the leads gaining and losing "
        "memberships, the campaigns added, removed or changed, and the types that would "
        "reject records that were accepted. Exit 0 when nothing changes, 1 when memberships "
        "or accepted records change, 2 on invalid rules or an unknown revision.",
    )
    parser.add_argument(
        "--from",
        dest="old",
        required=True,
        metavar="OLD",
        help="the rules in force: a directory, a git revision (REV) or REV:PATH",
    )
    parser.add_argument(
        "--to", dest="new", required=True, metavar="NEW", help="the proposed rules, likewise"
    )
    parser.add_argument("history", type=Path, metavar="HISTORY.jsonl")
    parser.add_argument(
        "--rules-path",
        default="rules",
        metavar="PATH",
        help="for a bare revision: the rules directory inside the repository (default rules)",
    )
    parser.add_argument(
        "--format", choices=["text", "markdown"], default="text", help="default text"
    )
    parser.add_argument(
        "--examples",
        type=at_least(0),
        default=EXAMPLES,
        metavar="N",
        help=f"example leads per list (default {EXAMPLES})",
    )
    parser.set_defaults(run=run_plan)


def _side(spec: str, args: argparse.Namespace, scratch: Path, settings: EngineSettings) -> Side:
    try:
        rules_dir = materialise(spec, args.rules_path, scratch)
    except SourceError as exc:
        raise CommandError(f"plan: {exc}") from None
    plan = load_rules_or_exit(rules_dir, settings)
    files, _ = read_rules(rules_dir)
    if not Path(spec).is_dir():  # a revision: name its files REV:PATH, not the scratch copy
        root = str(rules_dir).rstrip("/")
        label = spec if ":" in spec else f"{spec}:{args.rules_path}"
        files = replace(
            files,
            campaigns=[replace(c, path=label + c.path.removeprefix(root)) for c in files.campaigns],
        )
    events, letters, _ = backtest_to_lists(plan, args.history, settings.dedup_horizon_us)
    return Side(plan.rules_version, files, plan.catalog, events, letters, plan)


def run_plan(args: argparse.Namespace) -> int:
    settings = EngineSettings()
    if not args.history.is_file():
        raise CommandError(f"{args.history}: no such file")
    with tempfile.TemporaryDirectory(prefix="streams-plan-") as scratch:
        old = _side(args.old, args, Path(scratch), settings)
        new = _side(args.new, args, Path(scratch), settings)
    refused = refused_by_running(old.plan, new.plan)
    if refused:
        for problem in refused:
            error(str(problem))
        raise CommandError(
            f"plan: {args.new} cannot replace {args.old}: "
            f"{counted(len(refused), 'change')} a running deployment refuses"
        )
    report = compare(old, new)
    render = markdown if args.format == "markdown" else text
    sys.stdout.write("\n".join(render(report, args.old, args.new, args.examples)) + "\n")
    if report.exit_code == 0:
        error("plan: no membership changes")
    return report.exit_code


def _example(example: Example) -> str:
    first = example.first
    times = f" ({example.memberships}x)" if example.memberships > 1 else ""
    return f"lead {example.lead_id}{times} at {first['activityDate']} by {first['activityId']}"


def _campaign_line(change: CampaignChange) -> str:
    parts = [f"+{counted(len(change.gaining), 'lead')}", f"-{counted(len(change.losing), 'lead')}"]
    if change.recounted:
        parts.append(f"{counted(change.recounted, 'lead')} a different number of times")
    return (
        f"campaign {change.id} {change.name!r}: {', '.join(parts)} "
        f"(memberships {change.old_memberships} -> {change.new_memberships})"
    )


def text(report: PlanReport, old: str, new: str, examples: int) -> list[str]:
    lines = [f"plan: {old} (rulesVersion {report.old_version}) -> {new} "
             f"(rulesVersion {report.new_version})"]  # fmt: skip
    for title, refs in (
        ("added", report.added),
        ("removed", report.removed),
        ("changed", report.changed),
    ):
        for ref in refs:
            lines.append(f"campaign {ref.id} {ref.name!r} {title} ({ref.path})")
    for change in report.campaigns:
        if not change.changes:
            continue
        lines.append(_campaign_line(change))
        for label, found in (("gaining", change.gaining), ("losing", change.losing)):
            for example in found[:examples]:
                lines.append(f"  {label}: {_example(example)}")
            if len(found) > examples:
                lines.append(f"  {label}: ... and {len(found) - examples} more")
    for rejection in report.rejections:
        reason, _ = rejection.reasons.most_common(1)[0]
        shown = ", ".join(str(n) for n in rejection.lines[:examples])
        lines.append(
            f"type {rejection.label}: {counted(rejection.count, 'record')} accepted before "
            f"would be rejected (e.g. {reason}; lines {shown})"
        )
    if report.exit_code == 0:
        lines.append("no membership changes")
    return lines


def markdown(report: PlanReport, old: str, new: str, examples: int) -> list[str]:
    lines = [
        "### Rules plan",
        "",
        f"`{old}` (rulesVersion `{report.old_version}`) → `{new}` "
        f"(rulesVersion `{report.new_version}`)",
        "",
    ]
    refs = [("added", r) for r in report.added] + [("removed", r) for r in report.removed]
    refs += [("changed", r) for r in report.changed]
    if refs:
        lines += ["| campaign | change | file |", "| --- | --- | --- |"]
        lines += [f"| {r.id} {r.name} | {what} | `{r.path}` |" for what, r in refs]
        lines.append("")
    changes = [c for c in report.campaigns if c.changes]
    if changes:
        lines += [
            "| campaign | leads gaining | leads losing | memberships | examples |",
            "| --- | ---: | ---: | --- | --- |",
        ]
        for change in changes:
            shown = [f"+{e.lead_id}" for e in change.gaining[:examples]]
            shown += [f"−{e.lead_id}" for e in change.losing[:examples]]
            lines.append(
                f"| {change.id} {change.name} | {len(change.gaining)} | {len(change.losing)} "
                f"| {change.old_memberships} → {change.new_memberships} | {' '.join(shown)} |"
            )
        lines.append("")
    if report.rejections:
        lines += ["| type | records now rejected | main reason |", "| --- | ---: | --- |"]
        for rejection in report.rejections:
            reason, _ = rejection.reasons.most_common(1)[0]
            lines.append(f"| {rejection.label} | {rejection.count} | {reason} |")
        lines.append("")
    if report.exit_code == 0:
        lines.append("No membership changes.")
    return lines
