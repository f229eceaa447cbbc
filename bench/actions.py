"""Custom actions: calls/s against a local HTTP server with realistic latency, and the
dispatcher's overhead per call, against plain aiohttp in the same run.

    .venv/bin/python bench/actions.py [--calls 5000] [--latency 0.02] [--concurrency 100]

1. a server process (aiohttp, loopback) answers every POST after --latency seconds;
2. floor: plain aiohttp posts the same bodies with the same concurrency (a semaphore);
3. dispatcher: `Dispatch.handle` on N membership events (one action each, with a payload
   of variables, basic authentication, an endpoint concurrency of --concurrency): request
   building, Idempotency-Key, gate, retry loop, metrics;
4. printed, the best of --rounds alternated runs of each: calls/s and their ratio, and
   the CPU time per call (this process only; the server runs in another), whose
   difference is the overhead per call; plus `build_request` alone, per call.
The machine is shared: compare the ratios of one run, not absolute figures across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streams.actions.caller import Caller  # noqa: E402
from streams.actions.dispatch import Dispatch  # noqa: E402
from streams.actions.metrics import ActionMetrics  # noqa: E402
from streams.actions.payload import build_request  # noqa: E402
from streams.actions.secrets import read_secrets  # noqa: E402
from streams.devstack.process import free_port  # noqa: E402
from streams.engine.compiler import load_plan  # noqa: E402

ACTION = """\
name: notifyCrm
url: http://127.0.0.1:{port}/api/events
headers: {{X-Campaign: $campaign.id}}
authentication: {{type: basic, username: streams, secret: BENCH_SECRET}}
payload:
  event: $event.id
  campaign: {{id: $campaign.id, name: $campaign.name}}
  lead: $lead.id
  conference: $activity.primary
  attendees: $activity.attributes.numberOfAttendees
  country: $lead.fields.country?
  source: streams
"""
CAMPAIGN = """\
id: 2001
name: Conference follow-up
qualification: every time
triggers: [{trigger: Attends Conference}]
actions: [{action: notifyCrm, path: /leads/$lead.id}]
"""


def serve(port: int, latency: float) -> None:
    from aiohttp import web

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(latency)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def event(n: int) -> dict[str, Any]:
    return {
        "eventId": f"00000000-0000-5000-8000-{n:012d}",
        "campaignId": 2001,
        "campaignName": "Conference follow-up",
        "leadId": 1000 + n,
        "activityId": str(n),
        "activityTypeId": 100001,
        "activityDate": "2026-09-25T23:56:35Z",
        "trigger": "Attends Conference",
        "rulesVersion": "bench",
        "activityPrimary": "PyCon",
        "activityAttributes": {"numberOfAttendees": n},
        "leadFields": {"country": "France"},
    }


async def floor(url: str, bodies: list[bytes], concurrency: int) -> float:
    import aiohttp

    slots = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(body: bytes) -> None:
            async with slots, session.post(url, data=body) as response:
                await response.read()
                assert response.status == 204

        started = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bodies))
        return time.perf_counter() - started


async def dispatcher(rules: Path, raws: list[bytes]) -> float:
    import aiohttp

    plan = load_plan(rules).actions
    secrets = read_secrets(plan.actions.values(), {"BENCH_SECRET": "bench-secret"})
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        caller = Caller(plan, secrets, session, ActionMetrics())
        handler = Dispatch(plan, caller)
        started = time.perf_counter()
        letters = await asyncio.gather(*(handler.handle(raw) for raw in raws))
        took = time.perf_counter() - started
    assert not any(letters), letters[:1]
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="alternated runs of each")
    args = parser.parse_args()

    port = free_port()
    server = multiprocessing.Process(target=serve, args=(port, args.latency), daemon=True)
    server.start()
    workdir = Path(tempfile.mkdtemp(prefix="bench-actions-"))
    try:
        rules = workdir / "rules"
        shutil.copytree(ROOT / "rules" / "activity-types", rules / "activity-types")
        (rules / "campaigns").mkdir()
        (rules / "actions").mkdir()
        (rules / "campaigns" / "c.yaml").write_text(CAMPAIGN)
        (rules / "actions" / "a.yaml").write_text(ACTION.format(port=port))
        (rules / "endpoints.yaml").write_text(
            f"- endpoint: http://127.0.0.1:{port}\n  concurrency: {args.concurrency}\n"
        )
        time.sleep(1.0)  # the server starts
        events = [event(n) for n in range(args.calls)]
        raws = [orjson.dumps(e) for e in events]
        use = load_plan(rules).actions.uses[2001][0]

        started = time.process_time()
        for e in events:
            build_request(use, e)
        build_us = (time.process_time() - started) / args.calls * 1e6

        bodies = [orjson.dumps({"event": e["eventId"], "lead": e["leadId"]}) for e in events]
        url = f"http://127.0.0.1:{port}/api/events"
        asyncio.run(floor(url, bodies[:200], args.concurrency))  # warm-up
        floor_runs: list[tuple[float, float]] = []
        ours_runs: list[tuple[float, float]] = []
        for _ in range(args.rounds):  # alternated, the best of each: the machine is shared
            cpu = time.process_time()
            took = asyncio.run(floor(url, bodies, args.concurrency))
            floor_runs.append((took, time.process_time() - cpu))
            cpu = time.process_time()
            took = asyncio.run(dispatcher(rules, raws))
            ours_runs.append((took, time.process_time() - cpu))
        floor_s, floor_cpu = min(r[0] for r in floor_runs), min(r[1] for r in floor_runs)
        ours_s, ours_cpu = min(r[0] for r in ours_runs), min(r[1] for r in ours_runs)
    finally:
        server.terminate()
        server.join(5)
        shutil.rmtree(workdir, ignore_errors=True)

    n = args.calls
    ideal = args.concurrency / args.latency
    latency_ms = args.latency * 1000
    print(f"{n} calls x {args.rounds} rounds (best of each), server latency {latency_ms:.0f} ms")
    print(f"  concurrency {args.concurrency}")
    print(f"  (latency-bound ceiling: {ideal:,.0f} calls/s)")
    print(f"  plain aiohttp   {n / floor_s:8,.0f} calls/s   {floor_cpu / n * 1e6:7.0f} µs CPU/call")
    print(f"  dispatcher      {n / ours_s:8,.0f} calls/s   {ours_cpu / n * 1e6:7.0f} µs CPU/call")
    print(f"  ratio dispatcher/plain: {floor_s / ours_s:.2f} of the throughput")
    print(f"  overhead per call: {(ours_cpu - floor_cpu) / n * 1e6:.0f} µs CPU")
    print(f"  build_request alone: {build_us:.1f} µs/call")


if __name__ == "__main__":
    main()
