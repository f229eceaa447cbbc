"""Smaller holes, each probed against real processes (issue 7, item 10): slow request
headers, 709 messages, trailing-slash redirects, HEAD /health, the API's start without a
broker, and the worker's web port (its address, Faust's unauthenticated views).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.devstack.process import free_port
from streams.devstack.worker import WorkerProcess
from tests.hostile.api_stack import Stack, stack, start_stack
from tests.integration.streaming import isolated_settings, listening_address
from tests.integration.test_api import RULES, error_code

pytestmark = pytest.mark.integration
__all__ = ["stack"]  # the fixture

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def patient(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One API with a short header timeout and catalog writes on a copy of the rules."""
    rules = tmp_path_factory.mktemp("rules") / "rules"
    shutil.copytree(RULES, rules)
    running = start_stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("api"),
        count=1,
        STREAMS_API_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
        STREAMS_API_BODY_TIMEOUT=str(BODY_TIMEOUT),
        STREAMS_API_CATALOG_WRITES="true",
        STREAMS_RULES_DIR=str(rules),
    )
    try:
        yield running
    finally:
        for api in running.apis:
            api.close()


def _closed(sock: socket.socket, within: float) -> bytes | None:
    """What the server sent before closing, or None if it kept the connection open."""
    sock.settimeout(within)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        return None
    except OSError:
        pass
    return received


def _health_answer(sock: socket.socket) -> bytes:
    """One answer to GET /health: read until its body (or the connection's end)."""
    received = b""
    while b"}" not in received and (chunk := sock.recv(4096)):
        received += chunk
    return received


def test_slow_request_headers_are_cut_off(patient: Stack) -> None:
    api = patient.apis[0]
    host, port = api.process.host, api.process.port
    slow: list[socket.socket] = []
    try:
        for _ in range(200):
            sock = socket.create_connection((host, port), timeout=5)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: a")
            slow.append(sock)
        # The API answers others meanwhile.
        assert api.http.get("/health").status_code == 200
        time.sleep(1.0)
        sock = slow[0]
        sock.sendall(b"b")  # trickling bytes does not extend the deadline
        began = time.monotonic()
        answers = [_closed(s, HEADER_TIMEOUT + 10) for s in slow]
        assert all(a is not None for a in answers), "a slow connection was kept open"
        assert time.monotonic() - began < HEADER_TIMEOUT + 10
        assert answers[0] is not None and answers[0].startswith(b"HTTP/1.1 408")
    finally:
        for sock in slow:
            sock.close()
    patient.assert_answering()


def test_keep_alive_requests_get_the_same_deadline(patient: Stack) -> None:
    api = patient.apis[0]
    with socket.create_connection((api.process.host, api.process.port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _health_answer(sock).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # the second request, unfinished
        assert _closed(sock, HEADER_TIMEOUT + 10) is not None


def test_an_idle_kept_alive_connection_gets_no_408(patient: Stack) -> None:
    """Between requests a kept-alive connection is idle, not slow: no unsolicited 408."""
    api = patient.apis[0]
    with socket.create_connection((api.process.host, api.process.port), timeout=30) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _health_answer(sock).startswith(b"HTTP/1.1 200")
        time.sleep(HEADER_TIMEOUT + 1)  # below uvicorn's keep-alive timeout (5 s)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _health_answer(sock).startswith(b"HTTP/1.1 200")


def test_a_slow_but_complete_request_is_served(patient: Stack) -> None:
    api = patient.apis[0]
    with socket.create_connection((api.process.host, api.process.port), timeout=30) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        time.sleep(HEADER_TIMEOUT / 3)
        sock.sendall(b"\r\n")
        assert _health_answer(sock).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("authenticated", [True, False], ids=["with-token", "anonymous"])
def test_a_body_that_trickles_in_is_cut_off(patient: Stack, authenticated: bool) -> None:
    """A body still incomplete `BODY_TIMEOUT` seconds after the headers gets 408 and the
    connection is closed; the client's slot in flight is given back."""
    api = patient.apis[0]
    head = b"POST /rest/v1/activities/external.json HTTP/1.1\r\nHost: x\r\n"
    if authenticated:
        head += b"Authorization: %s\r\nContent-Type: application/json\r\n" % (
            api.auth["Authorization"].encode()
        )
        body = b'{"input": ['
    else:  # the token may come in a form body: it is read before any token is checked
        head += b"Content-Type: application/x-www-form-urlencoded\r\n"
        body = b"_method=GET&access_token="
    with socket.create_connection((api.process.host, api.process.port), timeout=30) as sock:
        sock.sendall(head + b"Content-Length: 1000\r\n\r\n" + body)
        began = time.monotonic()
        for _ in range(3):  # trickling bytes does not extend the deadline
            time.sleep(BODY_TIMEOUT / 3)
            sock.sendall(b" ")
        answer = _closed(sock, BODY_TIMEOUT + 10)
        assert answer is not None, "a trickling body kept its connection open"
        assert time.monotonic() - began < BODY_TIMEOUT + 10
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"code":"408"' in answer and b"connection: close" in answer.lower()
    for _ in range(12):  # more than the client's concurrent calls: its slots came back
        assert api.http.get("/rest/v1/activities/types.json", headers=api.auth).status_code == 200


def test_709_messages_name_no_server_path(patient: Stack) -> None:
    api = patient.apis[0]
    rules_dir = patient.apis[0].settings["STREAMS_RULES_DIR"]
    body = api.post("/rest/v1/activities/external/type/depositCheque/delete.json", {})
    assert error_code(body) == "709", body
    message = body["errors"][0]["message"]
    assert "campaigns/" in message  # it still names the campaign files
    assert rules_dir not in message and str(Path(rules_dir).parent) not in message, message
    assert not [word for word in message.split() if word.startswith("/")], message


def test_a_trailing_slash_is_not_redirected_from_the_host_header(stack: Stack) -> None:
    api = stack.apis[0]
    for path in ("/docs/", "/rest/v1/activities/types.json/", "/health/"):
        response = api.http.get(path, headers={"Host": "evil.example", **api.auth})
        assert "location" not in response.headers, (path, response.headers)
        assert response.status_code == 404
        assert error_code(response.json()) == "610"


def test_head_health(stack: Stack) -> None:
    for api in stack.apis:
        response = api.http.head("/health")
        assert response.status_code == 200
        assert response.content == b""


def test_the_api_honours_the_connect_timeout(tmp_path: Path) -> None:
    """No broker, STREAMS_CONNECT_TIMEOUT=1: exit 1 promptly, with one clear line."""
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "streams", "api", "--port", str(free_port())],
        env={
            "PATH": "/usr/bin:/bin",
            "STREAMS_BROKER": f"127.0.0.1:{free_port()}",
            "STREAMS_CONNECT_TIMEOUT": "1",
            "STREAMS_RULES_DIR": str(RULES),
            "STREAMS_API_CLIENTS": f"client:{'s' * 32}",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - began
    assert result.returncode == 1, result.stderr
    assert elapsed < 15, f"{elapsed:.1f} s"
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Kafka at") and "within 1 s" in last, result.stderr
    assert "kafka.net" not in result.stderr, result.stderr  # the library's retries are quiet


def test_the_worker_web_port_is_loopback_and_has_no_router(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    settings = isolated_settings(kafka_bootstrap, redis_url, RULES)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        worker.wait_ready(90)
        assert listening_address(worker.web_port) == "127.0.0.1"
        import urllib.error
        import urllib.request

        base = f"http://127.0.0.1:{worker.web_port}"
        for path in ("/router/", "/table/", "/graph/", "/stats/"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(base + path, timeout=5)
            assert refused.value.code == 404, path
        with urllib.request.urlopen(base + "/health", timeout=5) as response:
            assert response.status == 200
    finally:
        worker.stop()
