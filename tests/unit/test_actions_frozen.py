"""The frozen rule: an action used by an active campaign may change only its description,
url, timeout and authentication from one rules version to the next."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streams.actions.frozen import refused_changes
from streams.engine.compiler import Plan, load_plan
from tests.unit.actions_rules import action, campaign, rules_dir

BASE = action(
    description="v1",
    headers={"X-A": "1"},
    query={"q": "1"},
    payload={"lead": "$lead.id"},
    timeout="10 seconds",
)


def plan(tmp_path: Path, name: str, definition: dict[str, Any], status: str = "active") -> Plan:
    return load_plan(
        rules_dir(
            tmp_path / name,
            actions=[definition],
            campaigns=[campaign({"action": definition["name"]}, status=status)],
        )
    )


@pytest.mark.parametrize(
    "change",
    [
        {"description": "v2"},
        {"url": "https://crm2.example.com/other"},
        {"timeout": "20 seconds"},
        {"authentication": {"type": "basic", "username": "u", "secret": "S"}},
    ],
)
def test_what_may_change(tmp_path: Path, change: dict[str, Any]) -> None:
    assert refused_changes(plan(tmp_path, "a", BASE), plan(tmp_path, "b", {**BASE, **change})) == []


@pytest.mark.parametrize(
    ("change", "member"),
    [
        ({"method": "PUT"}, "method"),
        ({"headers": {"X-A": "2"}}, "headers"),
        ({"query": {"q": "2"}}, "query"),
        ({"payload": {"lead": "$lead.id", "x": 1}}, "payload"),
        ({"name": "NOTIFYCRM"}, "name"),
    ],
)
def test_what_may_not_change_names_the_campaigns(
    tmp_path: Path, change: dict[str, Any], member: str
) -> None:
    (problem,) = refused_changes(plan(tmp_path, "a", BASE), plan(tmp_path, "b", {**BASE, **change}))
    assert problem.field == member
    assert problem.message.startswith(
        "cannot change: action notifyCrm is used by active campaign 2001 (Conference follow-up)"
    )


def test_removing_an_action_in_use_is_refused(tmp_path: Path) -> None:
    old = plan(tmp_path, "a", BASE)
    new = load_plan(rules_dir(tmp_path / "b", actions=[], campaigns=[]))
    (problem,) = refused_changes(old, new)
    assert problem.message.startswith("cannot be removed: action notifyCrm is used by")


def test_an_action_used_only_by_inactive_campaigns_may_change(tmp_path: Path) -> None:
    old = plan(tmp_path, "a", BASE, status="inactive")
    assert refused_changes(old, plan(tmp_path, "b", {**BASE, "method": "PUT"})) == []
