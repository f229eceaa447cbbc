"""`python -m streams worker` as a child process, for the demo, the tests and benchmarks."""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from streams.devstack.process import ManagedProcess, ServiceError, free_port


class WorkerProcess(ManagedProcess):
    """A worker with its settings passed as STREAMS_* variables (`env` adds to the
    inherited environment) and its own web port, on loopback unless the settings say
    otherwise."""

    def __init__(self, settings: Mapping[str, str], log_path: Path) -> None:
        self.web_port = int(settings.get("STREAMS_WEB_PORT") or free_port())
        env = {
            **os.environ,
            "STREAMS_WEB_HOST": "127.0.0.1",
            **settings,
            "STREAMS_WEB_PORT": str(self.web_port),
        }
        super().__init__("worker", [sys.executable, "-m", "streams", "worker"], log_path, env)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until `/ready` answers 200: the worker joined its group, holds its assignment and
        is warmed up (streams/runtime/readiness.py)."""
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.web_port}/ready"
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServiceError(f"worker exited; last lines of its log:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise ServiceError(f"worker not ready within {timeout:.0f} s:\n{self.log_tail()}")

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.web_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text: str = response.read().decode()
            return text
