"""Bad input refused by `validate` and by the dispatcher at start (exit 2, the messages),
before it touches Kafka; and `actions list`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.unit.actions_rules import ROOT, action, campaign, rules_dir


def streams(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "STREAMS_BROKER": "127.0.0.1:1", **(env or {})},
    )


BAD: list[tuple[dict[str, Any], dict[str, Any], str]] = [
    (
        action(payload={"a": "$lead.nope"}),
        {"action": "notifyCrm"},
        "payload.a: '$lead.nope' is not a known variable",
    ),
    (
        action(payload={"a": "$activity.attributes.amount"}),
        {"action": "notifyCrm"},
        "action notifyCrm uses $activity.attributes.amount, but activity type 100001",
    ),
    (
        action(url="http://crm.example.com"),
        {"action": "notifyCrm"},
        "url: 'http://crm.example.com': use https",
    ),
    (action(), {"action": "sendSms"}, "actions[0].action: unknown action 'sendSms'"),
]


@pytest.mark.parametrize(("definition", "use", "message"), BAD)
@pytest.mark.parametrize("command", ["validate", "dispatcher"])
def test_bad_rules_are_refused_by_validate_and_at_start(
    tmp_path: Path, definition: dict[str, Any], use: dict[str, Any], message: str, command: str
) -> None:
    rules = rules_dir(tmp_path, actions=[definition], campaigns=[campaign(use)])
    args = (
        ["validate", str(rules)]
        if command == "validate"
        else ["dispatcher", "--rules-dir", str(rules)]
    )
    run = streams(*args)
    assert run.returncode == 2, run.stderr
    assert message in run.stderr


def test_a_missing_secret_stops_the_dispatcher_at_start(tmp_path: Path) -> None:
    auth = {"type": "apiKey", "in": "header", "name": "X-Key", "secret": "CRM_KEY"}
    rules = rules_dir(tmp_path, actions=[action(authentication=auth)], campaigns=[])
    environ = {k: v for k, v in os.environ.items() if k != "CRM_KEY"}
    run = subprocess.run(
        [sys.executable, "-m", "streams", "dispatcher", "--rules-dir", str(rules)],
        capture_output=True, text=True, check=False, timeout=60, env=environ,
    )  # fmt: skip
    assert run.returncode == 2
    assert (
        "action notifyCrm: the environment variable CRM_KEY (its secret) is not set" in run.stderr
    )
    assert streams("validate", str(rules)).returncode == 0  # validate needs no secrets


def test_actions_list_shows_where_each_action_is_used() -> None:
    run = streams("actions", "list", str(ROOT / "rules"))
    assert run.returncode == 0, run.stderr
    assert "notifyCrm  POST https://crm.example.com/api/v2/events" in run.stdout
    assert "used in: 2001 PyCon follow-up (active)" in run.stdout
    assert (
        "endpoint https://crm.example.com: throttle 200 calls/s, maxDelay 21600 s; concurrency 20"
        in run.stdout
    )


@pytest.mark.parametrize("command", ["validate", "dispatcher"])
def test_a_type_mismatch_is_refused_by_validate_and_at_start(tmp_path: Path, command: str) -> None:
    """`amount` is currency on one triggering type and integer on the other."""
    rules = rules_dir(
        tmp_path,
        actions=[action(payload={"a": "$activity.attributes.amount"})],
        campaigns=[
            campaign(
                {"action": "notifyCrm"},
                triggers=[{"trigger": "Deposits Cheque"}, {"trigger": "Pays Invoice"}],
            )
        ],
    )
    (rules / "activity-types" / "payInvoice.yaml").write_text(
        "id: 100009\napiName: payInvoice\nname: Pay Invoice\ntriggerName: Pays Invoice\n"
        "filterName: Paid Invoice\nstatus: approved\n"
        "primaryAttribute: {apiName: invoice, name: Invoice, dataType: string}\n"
        "attributes: [{apiName: amount, name: Amount, dataType: integer}]\n"
    )
    args = (
        ["validate", str(rules)]
        if command == "validate"
        else ["dispatcher", "--rules-dir", str(rules)]
    )
    run = streams(*args)
    assert run.returncode == 2
    assert (
        f"{rules}/campaigns/c0.yaml: actions[0].action: action notifyCrm uses "
        "$activity.attributes.amount, whose data type differs" in run.stderr
    )
