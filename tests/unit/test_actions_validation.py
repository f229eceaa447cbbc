"""Action files, endpoints.yaml and campaigns' `actions:` through `validate`: one problem
per mistake, naming the file and the field (actions.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streams.engine.compiler import load_plan
from streams.engine.problems import RulesError
from tests.unit.actions_rules import ROOT, action, campaign, rules_dir


def problems(tmp_path: Path, **kwargs: Any) -> list[str]:
    try:
        load_plan(rules_dir(tmp_path, **kwargs))
    except RulesError as exc:
        return [str(p).split("/rules/", 1)[1] for p in exc.problems]
    return []


def test_the_sample_rules_validate_with_their_action_and_endpoints() -> None:
    plan = load_plan(ROOT / "rules")
    assert plan.actions.users == {"notifyCrm": ("rules/campaigns/pycon-follow-up.yaml",)} or (
        set(plan.actions.users) == {"notifyCrm"}
    )
    assert plan.actions.endpoints["https://crm.example.com"].calls_per_second == 200
    pycon = next(c for c in plan.campaigns if c.id == 2001)
    assert pycon.carries == ("country",)


def test_a_valid_action_in_use(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        actions=[
            action(
                headers={"X-Campaign": "$campaign.id", "X-Price": "$$5"},
                query={"lead": "$lead.id?"},
                payload={"n": "$activity.attributes.numberOfAttendees", "c": "$activity.primary"},
            )
        ],
        campaigns=[campaign({"action": "notifyCrm", "path": "/leads/$lead.id"})],
    )
    assert found == []


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        (action(name="notify crm"), "name: letters, digits and underscore only"),
        (action(name="a" * 31), "name: letters, digits and underscore only"),
        (action(url="http://crm.example.com/x"), "url: 'http://crm.example.com/x': use https"),
        (action(url="ftp://crm.example.com/x"), "url: 'ftp://crm.example.com/x': give an absolute"),
        (action(url="https://u:p@crm.example.com/x"), "url: credentials do not go in the URL"),
        (action(url="https://crm.example.com/x?a=1"), "url: no query or fragment"),
        (
            action(url="https://crm.example.com:99999/x"),
            "url: 'https://crm.example.com:99999/x' is not a URL",
        ),
        (action(method="DELETE"), "method: Input should be"),
        (action(method="GET", payload={"a": 1}), "payload: a GET has no body"),
        (action(headers={"X Bad": "1"}), "headers.X Bad: 'X Bad' is not a valid HTTP header name"),
        (
            action(headers={"Idempotency-Key": "1"}),
            "headers.Idempotency-Key: Idempotency-Key is set by the dispatcher",
        ),
        (action(headers={"X-A": "a\nb"}), "headers.X-A: holds control characters"),
        (action(payload={"a": "$lead.email"}), "payload.a: '$lead.email' is not a known variable"),
        (
            action(payload={"a": ["$campaign.size"]}),
            "payload.a[0]: '$campaign.size' is not a known variable",
        ),
        (action(query={"q": "$nope"}), "query.q: '$nope' is not a known variable"),
        (action(timeout="30 parsecs"), "timeout: '30 parsecs' is not a duration"),
        (action(timeout="2 hours"), "timeout: between 0.1 seconds and 900 seconds"),
        (
            action(authentication={"type": "basic", "username": "u", "secret": "s3cr3t!"}),
            "authentication.secret: names the environment variable",
        ),
        (action(authentication={"type": "oauth"}), "authentication: Input tag 'oauth' found"),
        (
            action(
                authentication={
                    "type": "bearerToken",
                    "tokenUrl": "http://auth.example.com/t",
                    "clientId": "c",
                    "secret": "S",
                    "cacheFor": "50 minutes",
                }
            ),
            "authentication.tokenUrl: 'http://auth.example.com/t': use https",
        ),
        (
            action(
                authentication={
                    "type": "bearerToken",
                    "tokenUrl": "https://a.example.com/t",
                    "clientId": "c",
                    "secret": "S",
                    "cacheFor": "30 seconds",
                }
            ),
            "authentication.cacheFor: must be longer than the one-minute",
        ),
        (
            action(
                authentication={"type": "apiKey", "in": "header", "name": "X Key", "secret": "S"}
            ),
            "authentication.name: 'X Key' is not a valid HTTP header name",
        ),
        (action(extra=1), "extra: is not a known member"),
    ],
)
def test_a_bad_definition_is_refused_naming_the_field(
    tmp_path: Path, definition: dict[str, Any], expected: str
) -> None:
    found = problems(tmp_path, actions=[definition], campaigns=[campaign({"action": "notifyCrm"})])
    assert any(p.startswith(f"actions/{definition['name']}.yaml: {expected}") for p in found), found


def test_loopback_and_allowed_endpoints_may_use_plain_http(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        actions=[
            action(name="local", url="http://127.0.0.1:8080/x"),
            action(name="inside", url="http://crm.internal:8080/x"),
        ],
        campaigns=[],
        endpoints=[{"endpoint": "http://crm.internal:8080", "allowHttp": True}],
    )
    assert found == []


def test_duplicate_action_names_are_refused(tmp_path: Path) -> None:
    rules = rules_dir(tmp_path, actions=[action()], campaigns=[])
    (rules / "actions" / "other.yaml").write_text("name: NotifyCRM\nurl: https://a.example.com\n")
    with pytest.raises(RulesError) as exc:
        load_plan(rules)
    first = f"{rules}/actions/notifyCrm.yaml"
    assert [str(p) for p in exc.value.problems] == [
        f"{rules}/actions/other.yaml: name: 'NotifyCRM' is also the name of {first}"
    ]


@pytest.mark.parametrize(
    ("use", "expected"),
    [
        (
            {"action": "notifyCMR"},
            "actions[0].action: unknown action 'notifyCMR'; did you mean 'notifyCrm'?",
        ),
        ({"action": "notifyCrm", "path": "leads"}, "actions[0].path: starts with /"),
        (
            {"action": "notifyCrm", "path": "/a/../b"},
            "actions[0].path: '/a/../b': empty, . and .. segments",
        ),
        (
            {"action": "notifyCrm", "path": "/$lead.id?"},
            "actions[0].path: $lead.id?: a path segment cannot be optional",
        ),
        (
            {"action": "notifyCrm", "path": "/$lead.nope"},
            "actions[0].path: '$lead.nope' is not a known variable",
        ),
        ({"action": "notifyCrm", "extra": 1}, "actions[0].extra: is not a known member"),
    ],
)
def test_a_bad_use_in_a_campaign_is_refused(
    tmp_path: Path, use: dict[str, Any], expected: str
) -> None:
    found = problems(tmp_path, actions=[action()], campaigns=[campaign(use)])
    assert len(found) == 1 and found[0].startswith(f"campaigns/c0.yaml: {expected}"), found


def test_an_attribute_some_triggering_type_lacks_is_refused(tmp_path: Path) -> None:
    """Attends Conference has numberOfAttendees; Deposits Cheque does not."""
    found = problems(
        tmp_path,
        actions=[action(payload={"n": "$activity.attributes.numberOfAttendees"})],
        campaigns=[
            campaign(
                {"action": "notifyCrm"},
                triggers=[{"trigger": "Attends Conference"}, {"trigger": "Deposits Cheque"}],
            )
        ],
    )
    assert len(found) == 1
    assert found[0].startswith(
        "campaigns/c0.yaml: actions[0].action: action notifyCrm uses "
        "$activity.attributes.numberOfAttendees, but activity type 100002 (depositCheque)"
    )


def test_an_attribute_whose_type_differs_between_triggering_types_is_refused(
    tmp_path: Path,
) -> None:
    """A type mismatch: the payload's JSON type would depend on the activity."""
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
    with pytest.raises(RulesError) as exc:
        load_plan(rules)
    found = [str(p) for p in exc.value.problems]
    assert len(found) == 1 and "whose data type differs" in found[0], found
    assert "number in 100002 (depositCheque); integer in 100009 (payInvoice)" in found[0]


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (
            [{"endpoint": "https://a.example.com/path", "mode": "cap", "callsPerSecond": 1}],
            "[0].endpoint: scheme://host[:port], nothing else",
        ),
        (
            [{"endpoint": "https://a.example.com", "mode": "cap"}],
            "[0].callsPerSecond: is required with mode cap",
        ),
        (
            [
                {
                    "endpoint": "https://a.example.com",
                    "mode": "cap",
                    "callsPerSecond": 1,
                    "maxDelay": "1 minute",
                }
            ],
            "[0].maxDelay: applies to mode throttle only",
        ),
        (
            [{"endpoint": "https://a.example.com", "mode": "throttle", "callsPerSecond": 0}],
            "[0].callsPerSecond: Input should be greater than 0",
        ),
        (
            [{"endpoint": "https://a.example.com", "mode": "sometimes", "callsPerSecond": 1}],
            "[0].mode: Input should be",
        ),
        (
            [{"endpoint": "https://a.example.com"}, {"endpoint": "https://A.example.com:443"}],
            "[1].endpoint: https://a.example.com is listed twice",
        ),
    ],
)
def test_bad_endpoint_limits_are_refused(
    tmp_path: Path, entries: list[dict[str, Any]], expected: str
) -> None:
    found = problems(tmp_path, actions=[], campaigns=[], endpoints=entries)
    assert any(p.startswith(f"endpoints.yaml: {expected}") for p in found), found


def test_actions_are_part_of_the_rules_version(tmp_path: Path) -> None:
    base = load_plan(rules_dir(tmp_path / "a", actions=[], campaigns=[])).rules_version
    one = load_plan(rules_dir(tmp_path / "b", actions=[action()], campaigns=[])).rules_version
    other = load_plan(
        rules_dir(tmp_path / "c", actions=[action(payload={"x": 1})], campaigns=[])
    ).rules_version
    limits = load_plan(
        rules_dir(tmp_path / "d", actions=[], campaigns=[], endpoints=[{"endpoint": "https://a.b"}])
    ).rules_version
    assert len({base, one, other, limits}) == 4


def test_validate_prints_one_line_per_problem_and_exits_2(tmp_path: Path) -> None:
    rules = rules_dir(
        tmp_path,
        actions=[action(url="http://crm.example.com", payload={"a": "$lead.mail"})],
        campaigns=[campaign({"action": "notifyCrm"}, {"action": "sendSms"})],
    )
    run = subprocess.run(
        [sys.executable, "-m", "streams", "validate", str(rules)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2
    lines = run.stderr.splitlines()
    assert (
        f"{rules}/actions/notifyCrm.yaml: payload.a: '$lead.mail' is not a known variable"
        in "\n".join(lines)
    )
    assert any(line.startswith(f"{rules}/actions/notifyCrm.yaml: url: ") for line in lines)
    assert f"{rules}/campaigns/c0.yaml: actions[1].action: unknown action 'sendSms'" in lines
