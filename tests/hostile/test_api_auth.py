"""Brute force and weak secrets against a real API process (issue 7, item 9): failed
identity calls are throttled per client id and per address, logged once per episode; a
token already issued keeps working; a short secret stops the API at start (exit 2).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from streams.api.auth import MIN_SECRET_LENGTH
from tests.hostile.api_stack import Stack, start_stack
from tests.integration.test_api import CLIENT, OTHER, OTHER_SECRET, RULES, SECRET

pytestmark = pytest.mark.integration

TOKEN = "/identity/oauth/token"
PER_CLIENT, PER_ADDRESS, WINDOW = 5, 12, 4


@pytest.fixture
def throttled(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Stack]:
    running = start_stack(
        kafka_bootstrap,
        tmp_path,
        count=1,
        STREAMS_API_AUTH_FAILURES_PER_CLIENT=str(PER_CLIENT),
        STREAMS_API_AUTH_FAILURES_PER_ADDRESS=str(PER_ADDRESS),
        STREAMS_API_AUTH_FAILURE_WINDOW=str(WINDOW),
    )
    try:
        yield running
    finally:
        for api in running.apis:
            api.close()


def identity(http: httpx.Client, client: str, secret: str) -> httpx.Response:
    return http.get(
        TOKEN,
        params={"grant_type": "client_credentials", "client_id": client, "client_secret": secret},
    )


def test_failed_authentications_are_throttled_per_client_id(throttled: Stack) -> None:
    api = throttled.apis[0]
    held = api.token  # issued before the attack
    statuses = [identity(api.http, CLIENT, f"guess-{n}").status_code for n in range(100)]
    assert statuses[:PER_CLIENT] == [401] * PER_CLIENT
    assert set(statuses[PER_CLIENT:]) == {429}, statuses
    refused = identity(api.http, CLIENT, SECRET)  # even the right secret, while throttled
    assert refused.status_code == 429
    assert refused.json()["error"] == "slow_down"
    assert "606" in refused.json()["error_description"]
    assert 1 <= int(refused.headers["Retry-After"]) <= WINDOW
    # Another client id from the same address still gets its token (below the address limit).
    assert identity(api.http, OTHER, OTHER_SECRET).status_code == 200
    # The token held before keeps working.
    types = api.http.get(
        "/rest/v1/activities/types.json", headers={"Authorization": f"Bearer {held}"}
    )
    assert types.json()["success"] is True
    log = api.process.log_path.read_text()
    assert log.count("throttled") == 1, log[-3000:]
    assert log.count("bad client credentials") == PER_CLIENT
    # Free again once the failures leave the window.
    time.sleep(WINDOW + 0.5)
    assert identity(api.http, CLIENT, SECRET).status_code == 200
    throttled.assert_answering()
    throttled.assert_nothing_lost()


def test_spraying_client_ids_is_throttled_per_address(throttled: Stack) -> None:
    api = throttled.apis[0]
    statuses = [identity(api.http, f"id-{n}", "guess").status_code for n in range(60)]
    assert statuses[:PER_ADDRESS] == [401] * PER_ADDRESS
    assert set(statuses[PER_ADDRESS:]) == {429}
    assert identity(api.http, CLIENT, SECRET).status_code == 429  # this address is throttled
    log = api.process.log_path.read_text()
    assert log.count("throttled") == 1
    assert "address 127.0.0.1 throttled" in log


@pytest.mark.parametrize("secret", ["b", "x" * (MIN_SECRET_LENGTH - 1)])
def test_a_short_secret_refuses_to_start(kafka_bootstrap: str, secret: str) -> None:
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "streams", "api", "--port", "1"],
        env={
            "PATH": "/usr/bin:/bin",
            "STREAMS_BROKER": kafka_bootstrap,
            "STREAMS_RULES_DIR": str(RULES),
            "STREAMS_API_CLIENTS": f"good:{'g' * 32},weak:{secret}",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert time.monotonic() - began < 30
    assert f"client 'weak' has {len(secret)} characters; at least {MIN_SECRET_LENGTH}" in (
        result.stderr
    )
    assert "nothing was started" in result.stderr
