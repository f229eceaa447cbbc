"""A rules directory with actions, for the tests of custom actions: the sample catalog,
one campaign per trigger we need, and action files written by each test (as JSON, which
is YAML, in the order the test gives)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]

CAMPAIGN = {
    "id": 2001,
    "name": "Conference follow-up",
    "status": "active",
    "qualification": "every time",
    "triggers": [{"trigger": "Attends Conference"}],
}


def action(
    name: str = "notifyCrm", url: str = "https://crm.example.com/api", **extra: Any
) -> dict[str, Any]:
    return {"name": name, "url": url, **extra}


def rules_dir(
    tmp_path: Path,
    actions: list[dict[str, Any]],
    campaigns: list[dict[str, Any]] | None = None,
    endpoints: list[dict[str, Any]] | None = None,
) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules" / "activity-types", rules / "activity-types")
    (rules / "campaigns").mkdir()
    (rules / "actions").mkdir()
    for index, campaign in enumerate(campaigns if campaigns is not None else [CAMPAIGN]):
        (rules / "campaigns" / f"c{index}.yaml").write_bytes(orjson.dumps(campaign))
    for definition in actions:
        (rules / "actions" / f"{definition['name']}.yaml").write_bytes(orjson.dumps(definition))
    if endpoints is not None:
        (rules / "endpoints.yaml").write_bytes(orjson.dumps(endpoints))
    return rules


def campaign(*uses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**CAMPAIGN, "actions": list(uses), **extra}
