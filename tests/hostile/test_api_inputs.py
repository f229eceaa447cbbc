"""Hostile bodies against two real API processes on a real Kafka broker (issue 7, items 5,
8 and 10): deep nesting inside one record, control characters in what gets logged, a
compressed body. After each probe both APIs still answer and the topic holds exactly what
they answered added.
"""

from __future__ import annotations

import gzip
import re
import uuid
from typing import Any, Final

import orjson
import pytest

from streams.api.inputs import MAX_DEPTH
from tests.hostile.api_stack import Stack, stack
from tests.integration.test_api import Api, error_code, record

pytestmark = pytest.mark.integration
__all__ = ["stack"]  # the fixture

EXTERNAL = "/rest/v1/activities/external.json"
MOBILE = "/rest/v1/mobile/actions.json"


DEEP: Final = "@@DEEP@@"


def nested(levels: int) -> str:
    """A marker that `post` replaces by a string nested `levels` arrays deep (no JSON
    encoder writes more than a few hundred levels, so the body is written as text)."""
    return f"{DEEP}{levels}"


def post(stack: Stack, api: Api, path: str, payload: Any) -> dict[str, Any]:
    text = orjson.dumps(payload).decode()
    text = re.sub(rf'"{DEEP}(\d+)"', lambda m: "[" * int(m[1]) + '"deep"' + "]" * int(m[1]), text)
    response = api.http.post(
        path, content=text, headers={**api.auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    for entry in body.get("result", []):
        if entry.get("status") == "added":
            stack.added.add(entry["marketoGUID"])
    return body


def test_one_deep_record_is_skipped_and_the_others_added(stack: Stack) -> None:
    """299 valid records and one nesting 300 levels: 299 added, that one skipped (1003)."""
    api = stack.apis[0]
    records = [record(10_000 + i, f"deep-{uuid.uuid4().hex}") for i in range(300)]
    records[137]["attributes"] = [{"apiName": "attendees", "value": nested(300)}]
    body = post(stack, api, EXTERNAL, {"input": records})
    statuses = [entry["status"] for entry in body["result"]]
    assert statuses.count("added") == 299, body["result"][137]
    skipped = body["result"][137]
    assert skipped["status"] == "skipped"
    assert skipped["errors"][0]["code"] == "1003"
    assert f"over {MAX_DEPTH} levels" in skipped["errors"][0]["message"]
    stack.assert_answering()
    stack.assert_nothing_lost()


@pytest.mark.parametrize("levels", [MAX_DEPTH, 253, 254, 255, 1000])
def test_any_depth_the_parser_reads_skips_only_that_record(stack: Stack, levels: int) -> None:
    """Around orjson's encoding limit (254) and up to its parsing limit (1,024): never 611."""
    api = stack.apis[1]
    good = record(20_000 + levels, f"depth-{uuid.uuid4().hex}")
    bad = {**record(20_001, "deep"), "extra": nested(levels)}
    body = post(stack, api, EXTERNAL, {"input": [good, bad]})
    assert body["result"][0]["status"] == "added"
    assert body["result"][1]["status"] == "skipped"
    stack.assert_answering()


def test_a_body_beyond_the_parser_is_609_not_611(stack: Stack) -> None:
    api = stack.apis[0]
    body = post(stack, api, EXTERNAL, {"input": [record(1, "x")], "junk": nested(2000)})
    assert error_code(body) == "609"
    stack.assert_answering()


def test_a_deep_mobile_action_is_skipped_alone(stack: Stack) -> None:
    api = stack.apis[1]
    actions = [
        {
            "clientId": uuid.uuid4().hex,
            "name": "Bought Shirt",
            "occurredAt": "2026-09-26T06:56:35+07:00",
            "metadata": {"type": "Shopping", "details": nested(300) if i == 1 else "RedShirt"},
        }
        for i in range(3)
    ]
    body = post(stack, api, MOBILE, {"leadId": 4242, "actions": actions})
    assert [entry["status"] for entry in body["result"]] == ["added", "skipped", "added"]
    assert body["result"][1]["errors"][0]["code"] == "1003"
    stack.assert_nothing_lost()


def test_deep_values_in_other_calls_are_609(stack: Stack) -> None:
    """A catalog call quotes bad values in its messages: a deep one must not break that."""
    api = stack.apis[0]
    payload = {"apiName": nested(300), "name": "x", "triggerName": "x", "filterName": "x"}
    body = post(stack, api, "/rest/v1/activities/external/type.json", payload)
    assert error_code(body) in ("609", "603")  # 603 before the body when writes are off
    body = post(stack, api, "/rest/v1/activities/external/type.json", {"apiName": nested(20)})
    assert error_code(body) != "611"
    stack.assert_answering()


def test_log_lines_cannot_be_forged(stack: Stack) -> None:
    """A newline in the path or the client id is escaped in every log line."""
    api = stack.apis[0]
    api.http.get("/nope%0aFORGED%20LINE%0d%1b[31m")
    api.http.get(
        "/identity/oauth/token",
        params={
            "grant_type": "client_credentials",
            "client_id": "x\nFORGED ID",
            "client_secret": "y",
        },
    )
    api.http.get("/rest/v1/activities/types.json%0aFORGED%20REST", headers=api.auth)
    stack.assert_answering()
    log = api.process.log_path.read_text(encoding="utf-8", errors="replace")
    lines = log.splitlines()
    assert not [line for line in lines if line.startswith("FORGED")], log[-2000:]
    assert "\x1b" not in log
    assert "/nope\\x0aFORGED LINE\\x0d\\x1b[31m" in log
    assert "FORGED ID" in log  # the failed identity call is logged, escaped
    assert not [line for line in lines if "FORGED ID" in line and "\\n" not in line]


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "x-unknown"])
def test_a_compressed_body_is_refused_clearly(stack: Stack, encoding: str) -> None:
    api = stack.apis[1]
    raw = orjson.dumps({"input": [record(31_337, f"gz-{uuid.uuid4().hex}")]})
    response = api.http.post(
        EXTERNAL,
        content=gzip.compress(raw),
        headers={**api.auth, "Content-Type": "application/json", "Content-Encoding": encoding},
    )
    assert response.status_code == 415, response.text
    body = response.json()
    assert error_code(body) == "415"
    assert "Content-Encoding" in body["errors"][0]["message"]
    assert "uncompressed" in body["errors"][0]["message"]
    stack.assert_answering()
    stack.assert_nothing_lost()  # the refused record was not written
