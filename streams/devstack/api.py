"""`python -m streams api` as a child process, for the tests and the demo."""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from streams.devstack.process import ManagedProcess, ServiceError, free_port


class ApiProcess(ManagedProcess):
    """The API with its settings passed as STREAMS_* variables (added to the inherited
    environment), listening on 127.0.0.1 and a port of its own unless the settings say
    otherwise."""

    def __init__(self, settings: Mapping[str, str], log_path: Path) -> None:
        self.port = int(settings.get("STREAMS_API_PORT") or free_port())
        self.host = settings.get("STREAMS_API_HOST") or "127.0.0.1"
        env = {
            **os.environ,
            **settings,
            "STREAMS_API_PORT": str(self.port),
            "STREAMS_API_HOST": self.host,
        }
        super().__init__("api", [sys.executable, "-m", "streams", "api"], log_path, env)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until `/health` answers 200 (listening, and connected to Kafka)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServiceError(f"api exited; last lines of its log:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise ServiceError(f"api not ready within {timeout:.0f} s:\n{self.log_tail()}")
