"""Catalog writes from two API processes on one rules directory (issue: the lock was per
process, and a delete on one API and an approve on the other both answered success while
the deleted type came back). The catalog transaction's flock holds across processes."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from streams.engine.compiler import load_plan
from tests.integration.test_api import RULES, TYPE, Api, api_settings, start_api

pytestmark = pytest.mark.integration

DRAFT = "status: approved with draft\ndraft:\n  description: Attended in person\n"


def call(api: Api, operation: str, start: threading.Barrier, answers: dict[str, Any]) -> None:
    start.wait()
    path = f"{TYPE}/closeAccount/{operation}.json"
    answers[operation] = api.http.post(path, headers=api.auth).json()


def test_delete_and_approve_on_two_apis_never_both_win(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    path = rules / "activity-types" / "closeAccount.yaml"
    text = (
        "id: 100009\napiName: closeAccount\nname: Close Account\n"
        "triggerName: Closes Account\nfilterName: Closed Account\n"
        "primaryAttribute:\n  apiName: reason\n  name: Reason\n"
    )
    apis = []
    try:
        for name in ("a", "b"):
            settings = api_settings(
                kafka_bootstrap, STREAMS_RULES_DIR=str(rules), STREAMS_API_CATALOG_WRITES="true"
            )
            apis.append(Api(start_api(settings, tmp_path / f"api-{name}.log"), settings))
        for round_ in range(15):
            path.write_text(text + DRAFT)
            answers: dict[str, Any] = {}
            start = threading.Barrier(2)
            threads = [
                threading.Thread(target=call, args=(apis[0], "delete", start, answers)),
                threading.Thread(target=call, args=(apis[1], "approve", start, answers)),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert answers["delete"]["success"] is True, answers
            assert not path.exists(), f"round {round_}: the deleted type came back: {answers}"
            load_plan(rules)

        # apiNames of 237-255 characters answered 611 (a temporary file name too long).
        for length in (237, 255):
            api_name = "a" * (length - 1) + "Z"
            created = apis[0].post(TYPE + ".json", {
                "apiName": api_name, "name": f"Long {length}", "triggerName": f"Does {length}",
                "filterName": f"Did {length}", "primaryAttribute": {"apiName": "p", "name": "P"},
            })  # fmt: skip
            assert created["success"] is True, created
            assert created["result"][0]["apiName"] == api_name
            deleted = apis[1].post(f"{TYPE}/{api_name}/delete.json", None)
            assert deleted["success"] is True, deleted
        load_plan(rules)
    finally:
        for api in apis:
            api.close()
