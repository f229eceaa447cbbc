"""The shared example scenarios through `python -m streams backtest`, run as a subprocess,
exactly as the spec's command-line contract states it.

The examples live next to the repository (`../shared/examples`); without them the tests
skip locally and fail under `CI=true`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO.parent / "shared" / "examples"


def example_dirs() -> list[Path]:
    if not EXAMPLES.is_dir():
        return []
    return sorted(p for p in EXAMPLES.iterdir() if (p / "rules").is_dir())


def require_examples() -> None:
    if example_dirs():
        return
    message = f"the shared examples are not there: {EXAMPLES} holds no scenario"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def streams_cli(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMS_")}
    return subprocess.run(
        [sys.executable, "-m", "streams", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def parse_stdout(stdout: str) -> list[dict[str, Any]]:
    """Every stdout line is one JSON object, and nothing else is on stdout."""
    events = []
    for number, line in enumerate(stdout.splitlines()):
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"stdout line {number} is not JSON: {line!r}")
        assert isinstance(value, dict), f"stdout line {number} is not an object: {line!r}"
        events.append(value)
    return events


def key(event: dict[str, Any]) -> tuple[int, int, str]:
    return (event["campaignId"], event["leadId"], event["activityId"])


def backtest(
    rules: Path, activities: Path, rejected: Path
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]], list[dict[str, Any]]]:
    result = streams_cli("backtest", "--rules", rules, activities, "--rejected", rejected)
    assert result.returncode == 0, result.stderr
    events = parse_stdout(result.stdout)
    letters = read_jsonl(rejected) if rejected.exists() else []
    return result, events, letters


@pytest.fixture(params=[p.name for p in example_dirs()] or ["(none)"])
def example(request: pytest.FixtureRequest) -> Path:
    require_examples()
    return EXAMPLES / request.param


def test_examples_are_present() -> None:
    require_examples()
    assert len(example_dirs()) >= 2


def test_validate_accepts_the_example_rules(example: Path) -> None:
    result = streams_cli("validate", example / "rules")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def test_backtest_gives_the_expected_events_and_rejections(example: Path, tmp_path: Path) -> None:
    rejected = tmp_path / "rejected.jsonl"
    _, events, letters = backtest(example / "rules", example / "activities.jsonl", rejected)

    expected = read_jsonl(example / "expected.jsonl")
    assert [key(e) for e in events] == [key(e) for e in expected]

    expected_rejected = read_jsonl(example / "expected-rejected.jsonl")
    assert [(d["offset"], d["error"]["code"]) for d in letters] == [
        (r["offset"], r["code"]) for r in expected_rejected
    ]

    # The members campaigns.md and activities.md name.
    lines = (example / "activities.jsonl").read_text(encoding="utf-8").splitlines()
    for event in events:
        assert set(event) >= {
            "eventId", "campaignId", "campaignName", "leadId", "activityId",
            "activityTypeId", "activityDate", "trigger", "rulesVersion",
        }  # fmt: skip
        assert event["activityDate"].endswith("Z")
    assert len({e["eventId"] for e in events}) == len(events)
    assert len({e["rulesVersion"] for e in events}) <= 1
    for letter in letters:
        assert (letter["topic"], letter["partition"]) == ("file", 0)
        assert letter["record"] == lines[letter["offset"]]
        assert letter["error"]["message"]


def test_backtest_is_deterministic(example: Path, tmp_path: Path) -> None:
    """Two runs without --rejected, the second with batches of one record: the expected
    events, the same bytes."""
    activities = example / "activities.jsonl"
    first = streams_cli("backtest", "--rules", example / "rules", activities)
    second = streams_cli("backtest", "--rules", example / "rules", activities, "--batch-size", "1")
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert first.stdout == second.stdout
    expected = read_jsonl(example / "expected.jsonl")
    assert [key(e) for e in parse_stdout(first.stdout)] == [key(e) for e in expected]


def test_a_line_that_is_not_json_is_rejected_and_the_rest_processes(
    example: Path, tmp_path: Path
) -> None:
    lines = (example / "activities.jsonl").read_text(encoding="utf-8").splitlines()
    bad = [
        (1, "this is not JSON"),
        (3, '{"leadId": 1, "activityDate": "2026-01-01T00:00:00Z"'),  # truncated
    ]
    for index, text in bad:
        lines.insert(index, text)
    activities = tmp_path / "activities.jsonl"
    activities.write_text("\n".join(lines) + "\n", encoding="utf-8")

    rejected = tmp_path / "rejected.jsonl"
    _, events, letters = backtest(example / "rules", activities, rejected)

    expected = read_jsonl(example / "expected.jsonl")
    assert [key(e) for e in events] == [key(e) for e in expected]

    def shifted(offset: int) -> int:
        """The original line's new offset, once the bad lines are in."""
        for index, _ in bad:
            if offset >= index:
                offset += 1
        return offset

    want = sorted(
        [(index, "malformed") for index, _ in bad]
        + [
            (shifted(r["offset"]), r["code"])
            for r in read_jsonl(example / "expected-rejected.jsonl")
        ]
    )
    assert [(d["offset"], d["error"]["code"]) for d in letters] == want
    assert {d["record"] for d in letters} >= {text for _, text in bad}


def test_backtest_on_invalid_rules_exits_2_with_nothing_on_stdout(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    (rules / "activity-types").mkdir(parents=True)
    (rules / "campaigns").mkdir()
    (rules / "campaigns" / "broken.yaml").write_text(
        "id: 1\nname: Broken\ntriggers:\n  - trigger: No Such Trigger\n", encoding="utf-8"
    )
    activities = tmp_path / "activities.jsonl"
    activities.write_text(
        '{"leadId": 1, "activityDate": "2026-01-01T00:00:00Z", "activityTypeId": 1}\n',
        encoding="utf-8",
    )
    rejected = tmp_path / "rejected.jsonl"
    result = streams_cli("backtest", "--rules", rules, activities, "--rejected", rejected)
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"{rules}/campaigns/broken.yaml: triggers[0].trigger: " in result.stderr
    assert not rejected.exists() or rejected.read_text() == ""


def test_validate_on_invalid_rules_exits_2_as_a_subprocess(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    (rules / "campaigns").mkdir(parents=True)
    (rules / "campaigns" / "c.yaml").write_text(
        "id: 1\nname: C\ntriggers:\n  - trigger: Visits Web Page\n    constraints:\n"
        "      - operator: at least\n        value: 3\n",
        encoding="utf-8",
    )
    result = streams_cli("validate", rules)
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"{rules}/campaigns/c.yaml: triggers[0].constraints[0].operator: " in result.stderr


def test_backtest_with_standard_types_only_and_no_custom_folder(tmp_path: Path) -> None:
    """`activity-types/` may be absent (the mobile example has none); a rejection of every
    kind goes to --rejected with its code, in line order."""
    rules = tmp_path / "rules"
    (rules / "campaigns").mkdir(parents=True)
    (rules / "campaigns" / "c.yaml").write_text(
        "id: 1\nname: Pricing\nqualification: every time\ntriggers:\n"
        "  - trigger: Visits Web Page\n    constraints:\n      - operator: contains\n"
        "        value: pricing\n",
        encoding="utf-8",
    )
    ok = {"leadId": 1, "activityDate": "2026-01-01T00:00:00Z", "activityTypeId": 1}
    lines = [
        json.dumps(dict(ok, marketoGUID="a", primaryAttributeValue="/Pricing/EU")),
        json.dumps(dict(ok, marketoGUID="b", activityTypeId=999999)),
        json.dumps(dict(ok, marketoGUID="c", activityDate="2026-01-01T00:00:00")),
        json.dumps(dict(ok, marketoGUID="d", attributes=[{"name": "Colour", "value": 1}])),
        json.dumps(["not", "an", "object"]),
        json.dumps({"leadId": 1, "activityTypeId": 1}),
        json.dumps(dict(ok, marketoGUID="e", leadId=2, primaryAttributeValue="/pricing")),
    ]
    activities = tmp_path / "activities.jsonl"
    activities.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rejected = tmp_path / "rejected.jsonl"
    _, events, letters = backtest(rules, activities, rejected)
    assert [key(e) for e in events] == [(1, 1, "a"), (1, 2, "e")]
    assert [(d["offset"], d["error"]["code"]) for d in letters] == [
        (1, "unknown_activity_type"),
        (2, "invalid_value"),
        (3, "unknown_attribute"),
        (4, "malformed"),
        (5, "malformed"),
    ]
