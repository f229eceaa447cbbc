"""The API's explain call: the `explain` trace of a lead's live state in the workers'
Redis, as JSON, for an authenticated client; a real API process, Kafka and redis-server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.backtest import datetime_to_us_now
from streams.engine.activity import Activity, Decoder
from streams.engine.compiler import load_plan
from streams.engine.evaluator import Engine
from streams.engine.leadstate import LeadState
from streams.state.redis_client import redis_client
from streams.state.redis_store import RedisStore
from tests.integration.test_api import RULES, Api, api_settings, error_code, start_api
from tests.unit.test_explain import HISTORY

pytestmark = pytest.mark.integration

EXPLAIN = "/rest/v1/streams/explain.json"
APP_ID = "explain-test"


def seed(redis_url: str) -> LeadState:
    """Lead 5's state after HISTORY, saved where workers of APP_ID would have it."""
    plan = load_plan(RULES)
    decoder, engine, state = Decoder(plan.catalog), Engine(plan), LeadState()
    for offset, record in enumerate(HISTORY):
        activity = decoder.decode(json.dumps(record).encode(), f"t/0/{offset}")
        assert isinstance(activity, Activity)
        engine.process(state, activity, datetime_to_us_now())

    async def save() -> None:
        client = redis_client(redis_url)
        store = RedisStore(client, APP_ID, ttl_ms=0)
        await store.load([5])
        await store.save({5: state})
        await client.aclose()

    asyncio.run(save())
    return state


def test_explain_answers_the_live_trace(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    seed(redis_url)
    settings = api_settings(
        kafka_bootstrap,
        STREAMS_API_EXPLAIN_REDIS_URL=redis_url,
        STREAMS_API_EXPLAIN_APP_ID=APP_ID,
    )
    api = Api(start_api(settings, tmp_path / "api.log"), settings)
    try:
        unauthenticated = api.http.get(EXPLAIN, params={"leadId": "5", "campaignId": "2004"})
        assert error_code(unauthenticated.json()) == "601"
        (trace,) = api.get(EXPLAIN, leadId="5", campaignId="2004")["result"]
        assert trace["leadId"] == 5 and trace["campaignId"] == 2004
        assert trace["qualification"]["reason"].startswith("member since 2026-03-04T10:00:00Z")
        history, revenue = trace["filters"]["items"]
        assert history["minTimes"] == 3 and history["count"] == 0  # as of now: out of window
        assert history["result"] is False
        assert revenue["value"] == "90000" and revenue["result"] is True
        assert trace["filters"]["expression"] == "(1=false and 2=true)"
        assert error_code(api.get(EXPLAIN, leadId="5", campaignId="9999")) == "610"
        assert error_code(api.get(EXPLAIN, leadId="6", campaignId="2004")) == "610"
        assert error_code(api.get(EXPLAIN, leadId="x", campaignId="2004")) == "1001"
    finally:
        api.close()


def test_explain_is_not_enabled_without_redis(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = api_settings(kafka_bootstrap)
    api = Api(start_api(settings, tmp_path / "api.log"), settings)
    try:
        assert error_code(api.get(EXPLAIN, leadId="5", campaignId="2004")) == "703"
    finally:
        api.close()


def test_the_cli_explains_the_live_state_without_a_history_file(redis_url: str) -> None:
    seed(redis_url)
    env = {**os.environ, "STREAMS_REDIS_URL": redis_url, "STREAMS_APP_ID": APP_ID}
    args = [sys.executable, "-m", "streams", "explain", "--rules", str(RULES), "--lead", "5"]
    done = subprocess.run([*args, "--campaign", "2004"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "live state as of" in done.stdout
    assert "field annualRevenue at least 50000: value '90000' -> true" in done.stdout
    missing = subprocess.run(
        [*args[:-1], "6", "--campaign", "2004"], env=env, capture_output=True, text=True
    )
    assert missing.returncode == 2 and "no state for lead 6 in Redis" in missing.stderr


def test_explain_without_redis_answers_608_without_naming_the_server(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The caller learns that Redis did not answer; where Redis is, and the client
    library's words, go to the API's log only."""
    unreachable = "redis://127.0.0.1:9/0"
    settings = api_settings(kafka_bootstrap, STREAMS_API_EXPLAIN_REDIS_URL=unreachable)
    log = tmp_path / "api.log"
    api = Api(start_api(settings, log), settings)
    try:
        body = api.get(EXPLAIN, leadId="5", campaignId="2004")
        assert error_code(body) == "608"
        message = body["errors"][0]["message"]
        assert message == "Temporarily unavailable: Redis did not answer"
    finally:
        api.close()
    assert "explain: Redis: " in log.read_text() and "127.0.0.1" in log.read_text()
