"""`python -m streams demo` (what scripts/demo runs) on its own embedded Apache Kafka: the
`curl` lines it prints add an activity through its API, and the feed shows the membership
that activity earned; the demo then ends by itself with exit 0 and leaves nothing running."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_prints_working_curl_lines_for_its_api() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("STREAMS_BROKER", "STREAMS_REDIS_URL")  # its own embedded stack
    }
    demo = subprocess.Popen(
        [sys.executable, "-m", "streams", "demo", "--count", "400", "--rate", "40", "--no-hold"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    snippet_done = threading.Event()

    def read() -> None:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.append(line.rstrip("\n"))
            if line.strip().startswith("-d '"):
                snippet_done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert snippet_done.wait(300), "no curl lines within 300 s:\n" + "\n".join(lines)
        start = next(i for i, line in enumerate(lines) if line.strip().startswith("token=$("))
        end = next(i for i, line in enumerate(lines) if line.strip().startswith("-d '"))
        snippet = "\n".join(lines[start : end + 1])
        assert "client_secret=" in snippet and "client_id=demo" in snippet
        done = subprocess.run(
            ["bash", "-euc", snippet], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        assert '"status":"added"' in done.stdout, done.stdout
        assert demo.wait(timeout=300) == 0, "\n".join(lines)
        reader.join(10)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    text = "\n".join(lines)
    assert re.search(r"lead 9001\s+joined 'Big conferences' \(2002\)", text), text
    assert "memberships per campaign" in text
    assert "Traceback" not in text
    # What it started is stopped: the API's and the worker's ports are closed again.
    ports = [int(p) for p in re.findall(r"metrics: http://127\.0\.0\.1:(\d+)/metrics", text)]
    ports += [int(p) for p in re.findall(r"API ready on http://127\.0\.0\.1:(\d+)", text)]
    assert len(ports) == 2, text
    for port in ports:
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"
