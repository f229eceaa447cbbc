"""The HTTP caller against real HTTP servers on loopback (tests/actions_server.py): the
exact request, retries and their timings, Retry-After, the budget, capping, throttling,
concurrency per endpoint, the four authentication modes, and bodies that are huge, not
JSON or slow. Each test runs its own event loop, server and client session."""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from streams.actions.caller import Caller, retry_after_seconds
from streams.actions.dispatch import Dispatch
from streams.actions.exceptions import MissingSecrets
from streams.actions.metrics import ActionMetrics
from streams.actions.payload import idempotency_key
from streams.actions.secrets import read_secrets
from streams.engine.compiler import load_plan
from tests.actions_server import Server, delayed, endless, status
from tests.unit.actions_rules import action, campaign, rules_dir

BACKOFF = 0.2
SECRET = "s3cr3t-value-never-shown"


def event(n: int = 1, campaign_id: int = 2001, **extra: Any) -> dict[str, Any]:
    return {
        "eventId": f"e-{n}",
        "campaignId": campaign_id,
        "campaignName": "Conference follow-up",
        "leadId": 1000 + n,
        "activityId": f"a{n}",
        "activityTypeId": 100001,
        "activityDate": "2026-09-25T23:56:35Z",
        "trigger": "Attends Conference",
        "rulesVersion": "v1",
        "activityPrimary": "PyCon",
        "activityAttributes": {"numberOfAttendees": 150},
        "leadFields": {"country": "France"},
        **extra,
    }


def fill(actions: list[dict[str, Any]], bases: dict[str, str]) -> list[dict[str, Any]]:
    text = orjson.dumps(actions).decode()
    for name, base in bases.items():
        text = text.replace("{" + name + "}", base)
    result: list[dict[str, Any]] = orjson.loads(text)
    return result


class Harness:
    def __init__(self, dispatch: Dispatch, caller: Caller, session: aiohttp.ClientSession) -> None:
        self.dispatch = dispatch
        self.caller = caller
        self.session = session
        self.metrics = caller.metrics

    async def handle(self, *events: dict[str, Any]) -> list[dict[str, Any]]:
        results = await asyncio.gather(*(self.dispatch.handle(orjson.dumps(e)) for e in events))
        return [letter for letters in results for letter in letters]

    def count(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


def run(
    tmp_path: Path,
    actions: list[dict[str, Any]],
    body: Callable[[Harness, list[Server]], Awaitable[None]],
    servers: int = 1,
    uses: list[dict[str, Any]] | None = None,
    endpoints: Callable[[list[Server]], list[dict[str, Any]]] | None = None,
    environ: dict[str, str] | None = None,
) -> None:
    """Starts `servers` servers, writes the rules with `{base0}`... in URLs replaced by
    their addresses, and runs `body` with a harness over them."""

    async def main() -> None:
        started = [await Server().start() for _ in range(servers)]
        bases = {f"base{i}": s.base for i, s in enumerate(started)}
        try:
            defs = fill(actions, bases)
            plan = load_plan(
                rules_dir(
                    tmp_path,
                    actions=defs,
                    campaigns=[campaign(*(uses or [{"action": a["name"]} for a in defs]))],
                    endpoints=endpoints(started) if endpoints else None,
                )
            ).actions
            secrets = read_secrets(plan.actions.values(), environ or {"CRM_SECRET": SECRET})
            async with aiohttp.ClientSession() as session:
                caller = Caller(plan, secrets, session, ActionMetrics(), backoff=BACKOFF)
                await body(Harness(Dispatch(plan, caller), caller, session), started)
        finally:
            for server in started:
                await server.stop()

    asyncio.run(main())


PAYLOAD = {
    "event": "$event.id",
    "lead": "$lead.id",
    "conference": "$activity.primary",
    "attendees": "$activity.attributes.numberOfAttendees",
    "country": "$lead.fields.country?",
    "city": "$lead.fields.city?",
}


def test_success_sends_exactly_the_mapped_request(tmp_path: Path) -> None:
    async def body(h: Harness, servers: list[Server]) -> None:
        assert await h.handle(event(1)) == []
        (seen,) = servers[0].seen
        assert seen.method == "PUT"
        assert seen.path == "/api/leads/1001"
        assert seen.query == [("tenant", "acme"), ("campaign", "2001")]
        assert seen.headers["X-Source"] == "streams"
        assert seen.headers["Idempotency-Key"] == idempotency_key("e-1", "notifyCrm")
        assert seen.headers["Content-Type"] == "application/json"
        assert orjson.loads(seen.body) == {
            "event": "e-1", "lead": 1001, "conference": "PyCon", "attendees": 150,
            "country": "France",
        }  # fmt: skip
        labels = {"action": "notifyCrm", "endpoint": servers[0].base}
        assert h.count("streams_action_calls_total", **labels, outcome="success") == 1
        assert h.count("streams_action_call_seconds_count", **labels) == 1
        assert h.count("streams_action_retries_total", **labels) == 0

    run(
        tmp_path,
        [
            action(
                url="{base0}/api",
                method="PUT",
                payload=PAYLOAD,
                headers={"X-Source": "streams"},
                query={"tenant": "acme", "campaign": "$campaign.id"},
            )
        ],
        body,
        uses=[{"action": "notifyCrm", "path": "/leads/$lead.id"}],
    )


def test_a_4xx_is_final_and_a_dead_letter_with_an_excerpt(tmp_path: Path) -> None:
    async def body(h: Harness, servers: list[Server]) -> None:
        servers[0].script("/api", status(422, b"bad lead " + b"y" * 5000))
        (letter,) = await h.handle(event(1))
        assert len(servers[0].seen) == 1
        assert letter["error"] == "http_status" and letter["status"] == 422
        assert letter["attempts"] == 1
        assert letter["response"].startswith("bad lead ") and len(letter["response"]) == 1024
        assert set(letter) == {
            "action", "endpoint", "eventId", "campaignId", "leadId", "idempotencyKey",
            "attempts", "error", "status", "response", "failedAt",
        }  # fmt: skip
        assert letter["idempotencyKey"] == idempotency_key("e-1", "notifyCrm")
        assert (letter["action"], letter["endpoint"], letter["leadId"]) == (
            "notifyCrm", servers[0].base, 1001)  # fmt: skip

    run(tmp_path, [action(url="{base0}/api")], body)


def test_5xx_is_retried_three_times_with_growing_backoff_then_dead_lettered(
    tmp_path: Path,
) -> None:
    async def body(h: Harness, servers: list[Server]) -> None:
        servers[0].script("/api", *[status(503, b"busy")] * 4)
        (letter,) = await h.handle(event(1))
        seen = servers[0].seen
        assert len(seen) == 4 and letter["attempts"] == 4
        assert (letter["error"], letter["status"], letter["response"]) == (
            "http_status",
            503,
            "busy",
        )
        gaps = [b.at - a.at for a, b in itertools.pairwise(seen)]
        for n, gap in enumerate(gaps, start=1):  # backoff * 2^(n-1) * [0.5, 1.5)
            assert BACKOFF * 2 ** (n - 1) * 0.5 <= gap < BACKOFF * 2 ** (n - 1) * 1.5 + 1.0, gaps
        assert len({s.headers["Idempotency-Key"] for s in seen}) == 1
        assert (
            h.count("streams_action_retries_total", action="notifyCrm", endpoint=servers[0].base)
            == 3
        )

    run(tmp_path, [action(url="{base0}/api")], body)


def test_a_5xx_then_success_is_a_success(tmp_path: Path) -> None:
    async def body(h: Harness, servers: list[Server]) -> None:
        servers[0].script("/api", status(500), status(502))
        assert await h.handle(event(1)) == []
        assert len(servers[0].seen) == 3

    run(tmp_path, [action(url="{base0}/api")], body)


def test_timeouts_are_retried_within_the_budget_then_dead_lettered(tmp_path: Path) -> None:
    async def body(h: Harness, servers: list[Server]) -> None:
        servers[0].script("/api", *[delayed(30)] * 4)
        started = time.monotonic()
        (letter,) = await h.handle(event(1))
        took = time.monotonic() - started
        assert letter["error"] == "timeout" and letter["status"] is None
        assert 2 <= len(servers[0].seen) <= 4 and letter["attempts"] == len(servers[0].seen)
        assert 1.6 <= took < 4.0, took  # the whole budget, retries included, and no more

    run(tmp_path, [action(url="{base0}/api", timeout="2 seconds")], body)


def test_429_waits_as_retry_after_says(tmp_path: Path) -> None:
    async def body(h: Harness, servers: list[Server]) -> None:
        servers[0].script("/api", status(429, headers={"Retry-After": "1"}))
        assert await h.handle(event(1)) == []
        first, second = servers[0].seen
        assert 1.0 <= second.at - first.at < 2.5

    run(tmp_path, [action(url="{base0}/api")], body)


def test_a_retry_after_beyond_the_budget_ends_the_call(tmp_path: Path) -> None:
    async def body(h: Harness, servers: list[Server]) -> None:
        servers[0].script("/api", status(429, headers={"Retry-After": "3600"}))
        (letter,) = await h.handle(event(1))
        assert (letter["status"], letter["attempts"], len(servers[0].seen)) == (429, 1, 1)

    run(tmp_path, [action(url="{base0}/api", timeout="5 seconds")], body)


def test_retry_after_as_an_http_date() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 9, 25, 23, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("Fri, 25 Sep 2026 23:00:30 GMT", now) == 30
    assert retry_after_seconds("7") == 7
    assert retry_after_seconds("soon") is None


def test_a_connection_error_is_retried_then_dead_lettered(tmp_path: Path) -> None:
    async def body(h: Harness, servers: list[Server]) -> None:
        await servers[0].stop()
        (letter,) = await h.handle(event(1))
        assert (letter["error"], letter["attempts"], letter["status"]) == ("connection", 4, None)

    run(tmp_path, [action(url="{base0}/api")], body)


def test_capping_discards_the_excess_and_counts_it(tmp_path: Path) -> None:
    async def body(h: Harness, servers: list[Server]) -> None:
        letters = await h.handle(*(event(n) for n in range(10)))
        assert len(servers[0].seen) == 3
        assert len(letters) == 7 and {x["error"] for x in letters} == {"capped"}
        assert {x["attempts"] for x in letters} == {0}
        assert h.count("streams_action_discarded_total", endpoint=servers[0].base) == 7

    run(
        tmp_path,
        [action(url="{base0}/api")],
        body,
        endpoints=lambda s: [{"endpoint": s[0].base, "mode": "cap", "callsPerSecond": 3}],
    )


def test_throttling_delays_the_excess_in_order(tmp_path: Path) -> None:
    async def body(h: Harness, servers: list[Server]) -> None:
        started = time.monotonic()
        assert await h.handle(*(event(n) for n in range(10))) == []
        seen = servers[0].seen
        assert [orjson.loads(s.body)["event"] for s in seen] == [f"e-{n}" for n in range(10)]
        assert seen[-1].at - started >= 9 / 20 - 0.05  # one call every 1/20 s

    run(
        tmp_path,
        [action(url="{base0}/api", payload={"event": "$event.id"})],
        body,
        endpoints=lambda s: [
            {"endpoint": s[0].base, "mode": "throttle", "callsPerSecond": 20, "concurrency": 1}
        ],
    )


def test_throttling_dead_letters_what_would_wait_beyond_max_delay(tmp_path: Path) -> None:
    async def body(h: Harness, servers: list[Server]) -> None:
        letters = await h.handle(*(event(n) for n in range(6)))
        assert len(servers[0].seen) == 3  # turns at 0, 0.5, 1.0 s; the 4th would be 1.5 s
        assert [x["error"] for x in letters] == ["delay_exceeded"] * 3

    run(
        tmp_path,
        [action(url="{base0}/api")],
        body,
        endpoints=lambda s: [
            {
                "endpoint": s[0].base,
                "mode": "throttle",
                "callsPerSecond": 2,
                "maxDelay": "1.2 seconds",
            }
        ],
    )


def test_a_second_endpoint_keeps_flowing_while_the_first_hangs(tmp_path: Path) -> None:
    async def body(h: Harness, servers: list[Server]) -> None:
        servers[0].default = delayed(60)
        hung = asyncio.gather(*(h.handle(event(n, campaign_id=2001)) for n in range(20)))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        letters = await asyncio.gather(*(h.handle(event(n, campaign_id=2002)) for n in range(50)))
        assert time.monotonic() - started < 10.0
        assert letters == [[]] * 50 and len(servers[1].seen) == 50
        assert len(servers[0].seen) == 2  # concurrency 2: the others wait their turn
        assert h.count("streams_action_queue_depth", endpoint=servers[0].base) == 18
        assert h.count("streams_action_queue_depth", endpoint=servers[1].base) == 0
        hung.cancel()

    async def main() -> None: ...

    definitions = [action(name="slow", url="{base0}/api", timeout="60 seconds"),
                   action(name="fast", url="{base1}/api")]  # fmt: skip

    # Two campaigns: 2001 calls the slow endpoint, 2002 the fast one.
    def endpoints(s: list[Server]) -> list[dict[str, Any]]:
        return [{"endpoint": s[0].base, "concurrency": 2}]

    rules_campaigns = [
        campaign({"action": "slow"}),
        campaign({"action": "fast"}, id=2002, name="Other"),
    ]
    _run_campaigns(tmp_path, definitions, rules_campaigns, body, 2, endpoints)


def _run_campaigns(
    tmp_path: Path,
    actions: list[dict[str, Any]],
    campaigns: list[dict[str, Any]],
    body: Callable[[Harness, list[Server]], Awaitable[None]],
    servers: int,
    endpoints: Callable[[list[Server]], list[dict[str, Any]]] | None = None,
) -> None:
    async def main() -> None:
        started = [await Server().start() for _ in range(servers)]
        bases = {f"base{i}": s.base for i, s in enumerate(started)}
        try:
            defs = fill(actions, bases)
            plan = load_plan(
                rules_dir(
                    tmp_path,
                    actions=defs,
                    campaigns=campaigns,
                    endpoints=endpoints(started) if endpoints else None,
                )
            ).actions
            async with aiohttp.ClientSession() as session:
                caller = Caller(plan, read_secrets(plan.actions.values(), {}), session,
                                ActionMetrics(), backoff=BACKOFF)  # fmt: skip
                await body(Harness(Dispatch(plan, caller), caller, session), started)
        finally:
            for server in started:
                await server.stop()

    asyncio.run(main())


def test_huge_endless_and_slow_bodies_are_bounded(tmp_path: Path) -> None:
    async def body(h: Harness, servers: list[Server]) -> None:
        servers[0].script("/api", endless(400))
        (letter,) = await h.handle(event(1))
        assert (letter["status"], len(letter["response"])) == (400, 1024)
        servers[0].script("/api", endless(400, b"z", pause=0.5))
        started = time.monotonic()
        (letter,) = await h.handle(event(2))
        assert letter["status"] == 400 and time.monotonic() - started < 3
        servers[0].script("/api", endless(200, b"<html>", pause=0.5))
        assert await h.handle(event(3)) == []  # the status decides; a slow 2xx body is fine

    run(tmp_path, [action(url="{base0}/api")], body)


def test_a_missing_value_is_a_dead_letter_naming_the_variable(tmp_path: Path) -> None:
    async def body(h: Harness, servers: list[Server]) -> None:
        (letter,) = await h.handle(event(1, activityAttributes={}))
        assert (letter["error"], letter["variable"], letter["attempts"]) == (
            "missing_value", "$activity.attributes.numberOfAttendees", 0)  # fmt: skip
        assert servers[0].seen == []

    run(tmp_path, [action(url="{base0}/api", payload=PAYLOAD)], body)


# --- authentication ------------------------------------------------------------------------


def test_api_key_in_a_header_and_in_the_query(tmp_path: Path) -> None:
    async def body(h: Harness, servers: list[Server]) -> None:
        servers[0].script("/h", status(403, b"key " + SECRET.encode() + b" refused"))
        letters = await h.handle(event(1))
        by_path = {s.path: s for s in servers[0].seen}
        assert by_path["/h"].headers["X-Api-Key"] == SECRET
        assert ("api_key", SECRET) in by_path["/q"].query
        (letter,) = letters
        assert SECRET not in orjson.dumps(letter).decode()
        assert letter["response"] == "key [redacted] refused"
        assert SECRET.encode() not in h.metrics.render()

    run(
        tmp_path,
        [
            action(
                name="header",
                url="{base0}/h",
                authentication={
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Api-Key",
                    "secret": "CRM_SECRET",
                },
            ),
            action(
                name="query",
                url="{base0}/q",
                authentication={
                    "type": "apiKey",
                    "in": "query",
                    "name": "api_key",
                    "secret": "CRM_SECRET",
                },
            ),
        ],
        body,
    )


def test_basic_authentication(tmp_path: Path) -> None:
    async def body(h: Harness, servers: list[Server]) -> None:
        assert await h.handle(event(1)) == []
        expected = base64.b64encode(f"streams:{SECRET}".encode()).decode()
        assert servers[0].seen[0].headers["Authorization"] == f"Basic {expected}"

    run(
        tmp_path,
        [
            action(
                url="{base0}/api",
                authentication={"type": "basic", "username": "streams", "secret": "CRM_SECRET"},
            )
        ],
        body,
    )


class TokenIssuer:
    """A token endpoint: token-1, token-2, ... per request, checking the form."""

    def __init__(self) -> None:
        self.issued = 0
        self.forms: list[dict[str, str]] = []

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        form = dict(await request.post())
        self.forms.append({k: str(v) for k, v in form.items()})
        self.issued += 1
        return web.json_response({"data": {"token": f"token-{self.issued}"}})


BEARER = {
    "type": "bearerToken",
    "tokenUrl": "{base0}/oauth/token",
    "clientId": "streams",
    "secret": "CRM_SECRET",
    "cacheFor": "61 seconds",
    "tokenPath": "data.token",
}


def test_bearer_token_is_fetched_once_cached_and_refetched_on_expiry(tmp_path: Path) -> None:
    async def body(h: Harness, servers: list[Server]) -> None:
        issuer = TokenIssuer()
        servers[0].scripts["/oauth/token"] = []
        servers[0].default = status(200)

        async def route(request: web.Request) -> web.StreamResponse:
            return await (
                issuer(request) if request.path == "/oauth/token" else status(200)(request)
            )

        servers[0].default = route
        assert await h.handle(*(event(n) for n in range(5))) == []
        calls = servers[0].at("/api")
        assert {c.headers["Authorization"] for c in calls} == {"Bearer token-1"}
        assert issuer.issued == 1  # five calls at once share one fetch
        assert issuer.forms[0] == {"grant_type": "client_credentials", "client_id": "streams",
                                   "client_secret": SECRET}  # fmt: skip
        # cacheFor 61 s less the one-minute margin: the token lives 1 s.
        await asyncio.sleep(1.2)
        assert await h.handle(event(9)) == []
        assert servers[0].at("/api")[-1].headers["Authorization"] == "Bearer token-2"

    run(tmp_path, [action(url="{base0}/api", authentication=BEARER)], body)


def test_a_401_drops_the_token_and_retries_with_a_new_one(tmp_path: Path) -> None:
    async def body(h: Harness, servers: list[Server]) -> None:
        issuer = TokenIssuer()
        refusals = [status(401, b"token-1 expired")]

        async def route(request: web.Request) -> web.StreamResponse:
            if request.path == "/oauth/token":
                return await issuer(request)
            if refusals and request.headers["Authorization"] == "Bearer token-1":
                return await refusals.pop()(request)
            return await status(200)(request)

        servers[0].default = route
        assert await h.handle(event(1)) == []
        assert [c.headers["Authorization"] for c in servers[0].at("/api")] == [
            "Bearer token-1", "Bearer token-2"]  # fmt: skip

    run(
        tmp_path,
        [action(url="{base0}/api", authentication={**BEARER, "cacheFor": "50 minutes"})],
        body,
    )


def test_a_failing_token_endpoint_is_a_dead_letter_without_the_secret(tmp_path: Path) -> None:
    async def body(h: Harness, servers: list[Server]) -> None:
        servers[0].script("/oauth/token", status(401, b"bad client_secret " + SECRET.encode()))
        (letter,) = await h.handle(event(1))
        assert (letter["error"], letter["status"]) == ("http_status", 401)
        assert SECRET not in letter["response"]
        assert servers[0].at("/api") == []

    run(tmp_path, [action(url="{base0}/api", authentication=BEARER)], body)


def test_a_missing_secret_is_refused_naming_the_action_and_variable(tmp_path: Path) -> None:
    plan = load_plan(
        rules_dir(
            tmp_path,
            actions=[
                action(
                    url="http://127.0.0.1:1/x",
                    authentication={"type": "basic", "username": "u", "secret": "CRM_SECRET"},
                )
            ],
            campaigns=[],
        )
    ).actions
    with pytest.raises(MissingSecrets) as exc:
        read_secrets(plan.actions.values(), {})
    assert str(exc.value) == (
        "action notifyCrm: the environment variable CRM_SECRET (its secret) is not set"
        " (nor a readable file in CRM_SECRET_FILE)"
    )
    (tmp_path / "secret").write_text("from-a-file\n")
    secrets = read_secrets(plan.actions.values(), {"CRM_SECRET_FILE": str(tmp_path / "secret")})
    assert secrets.get("notifyCrm") == "from-a-file"
    assert "from-a-file" not in repr(secrets)


def test_a_token_response_that_is_not_json_is_a_dead_letter(tmp_path: Path) -> None:
    async def body(h: Harness, servers: list[Server]) -> None:
        servers[0].script("/oauth/token", status(200, b"<html>login</html>"))
        (letter,) = await h.handle(event(1))
        assert (letter["error"], letter["status"], letter["attempts"]) == ("http_status", 200, 1)
        assert letter["response"] == "no data.token in the token response"
        assert servers[0].at("/api") == []

    run(tmp_path, [action(url="{base0}/api", authentication=BEARER)], body)


def test_a_redirect_is_final_and_not_followed(tmp_path: Path) -> None:
    async def body(h: Harness, servers: list[Server]) -> None:
        servers[0].script("/api", status(302, headers={"Location": "/elsewhere"}))
        (letter,) = await h.handle(event(1))
        assert (letter["status"], letter["attempts"]) == (302, 1)
        assert [s.path for s in servers[0].seen] == ["/api"]

    run(tmp_path, [action(url="{base0}/api")], body)


def test_a_throttle_wait_does_not_eat_the_call_budget(tmp_path: Path) -> None:
    """The third call waits 1 s for its turn, longer than its 0.5 s timeout: the timeout
    bounds the tries, `maxDelay` the wait."""

    async def body(h: Harness, servers: list[Server]) -> None:
        assert await h.handle(*(event(n) for n in range(3))) == []
        assert len(servers[0].seen) == 3

    run(
        tmp_path,
        [action(url="{base0}/api", timeout="0.5 seconds")],
        body,
        endpoints=lambda s: [{"endpoint": s[0].base, "mode": "throttle", "callsPerSecond": 2}],
    )


def test_records_that_are_not_memberships_are_skipped_not_fatal(tmp_path: Path) -> None:
    async def body(h: Harness, servers: list[Server]) -> None:
        for raw in (None, b"", b"\xff\xfe", b"[1]", b'{"eventId": 1}', b"nul", b'{"eventId":"e",'
                    b'"campaignId":true,"leadId":1}'):  # fmt: skip
            assert await h.dispatch.handle(raw) == []
        assert h.count("streams_dispatcher_memberships_total", outcome="malformed") == 7
        assert servers[0].seen == []

    run(tmp_path, [action(url="{base0}/api")], body)
