"""Hostile and valid traffic at once, on two API processes sharing one topic: the valid
records are all added and all on the topic, whatever the hostile callers do meanwhile
(deep records, compressed and broken bodies, slow headers, wrong secrets, forged paths).
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.hostile.api_stack import Stack, stack
from tests.integration.test_api import record

pytestmark = pytest.mark.integration
__all__ = ["stack"]  # the fixture

EXTERNAL = "/rest/v1/activities/external.json"
CALLS, RECORDS = 12, 50


def _hostile(stack: Stack, stop: threading.Event) -> list[Callable[[], None]]:
    api = stack.apis[0]
    url = api.process.url
    host, port = api.process.host, api.process.port
    auth = {**api.auth, "Content-Type": "application/json"}
    deep = "[" * 400 + "1" + "]" * 400
    records = ",".join(f'{{"leadId":{i},"extra":{deep}}}' for i in range(1, 40))

    def deep_bodies() -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while not stop.is_set():
                http.post(EXTERNAL, content=f'{{"input":[{records}]}}', headers=auth)

    def broken_bodies() -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while not stop.is_set():
                http.post(EXTERNAL, content=b"\x1f\x8b\x08junk", headers=auth)
                http.post(
                    EXTERNAL,
                    content=b'{"input": [',
                    headers={**auth, "Content-Encoding": "gzip"},
                )
                http.post(EXTERNAL, content=b'{"input": [{"leadId": 1,', headers=auth)

    def wrong_secrets() -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while not stop.is_set():
                http.get(
                    "/identity/oauth/token",
                    params={
                        "grant_type": "client_credentials",
                        "client_id": f"x\nFORGED {uuid.uuid4().hex}",
                        "client_secret": "guess",
                    },
                )
                http.get("/nope%0aFORGED%20LINE")

    def slow_headers() -> None:
        held: list[socket.socket] = []
        try:
            while not stop.is_set() and len(held) < 100:
                sock = socket.create_connection((host, port), timeout=5)
                sock.sendall(b"POST /rest/v1/activities/external.json HTTP/1.1\r\nHost: x\r\n")
                held.append(sock)
            stop.wait()
        finally:
            for sock in held:
                sock.close()

    return [deep_bodies, broken_bodies, wrong_secrets, slow_headers]


def test_valid_traffic_is_all_added_while_hostile_callers_run(stack: Stack) -> None:
    stop = threading.Event()
    hostile = [threading.Thread(target=f, daemon=True) for f in _hostile(stack, stop)]
    failures: list[str] = []

    def valid(number: int) -> None:
        api = stack.apis[number % len(stack.apis)]
        with httpx.Client(base_url=api.process.url, timeout=120) as http:
            for call in range(CALLS):
                batch = [
                    record(50_000 + number * 1000 + i, f"mixed-{number}-{call}-{i}")
                    for i in range(RECORDS)
                ]
                response = http.post(EXTERNAL, json={"input": batch}, headers=api.auth)
                body = response.json()
                if response.status_code != 200 or not body.get("success"):
                    failures.append(f"{response.status_code} {body}")
                    continue
                statuses = [entry["status"] for entry in body["result"]]
                if statuses != ["added"] * RECORDS:
                    failures.append(str(body["result"][:3]))
                with lock:
                    stack.added.update(entry["marketoGUID"] for entry in body["result"])

    lock = threading.Lock()
    writers = [threading.Thread(target=valid, args=(n,)) for n in range(4)]
    for thread in hostile + writers:
        thread.start()
    for thread in writers:
        thread.join(300)
    stop.set()
    for thread in hostile:
        thread.join(60)
    assert failures == []
    assert len(stack.added) >= 4 * CALLS * RECORDS
    stack.assert_answering()
    stack.assert_nothing_lost()
