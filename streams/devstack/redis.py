"""A throwaway `redis-server` on a free port, for the demo and the integration tests.

Invariant: a `RedisServer` keeps its port and its data directory for its whole life, so
`restart()` (or `kill()` then `start()`) brings back the same server with the data that
its append-only file holds; that is what the Redis-restart chaos tests rely on.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Self

import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

from streams.devstack.process import LocalService, ManagedProcess, ServiceError, cache_dir

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-redis"


def ensure_redis_server() -> str:
    """Path of `redis-server`, installing the Debian package first if it is missing, so
    that a fresh machine runs the demo and the tests without a manual step."""
    found = shutil.which("redis-server")
    if found:
        return found
    if not INSTALL_SCRIPT.is_file():
        raise ServiceError(f"redis-server is not on PATH and {INSTALL_SCRIPT} is missing")
    log = cache_dir() / "install-redis.log"
    with log.open("wb") as out:
        rc = subprocess.run(
            ["bash", str(INSTALL_SCRIPT)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        ).returncode
    found = shutil.which("redis-server")
    if rc != 0 or not found:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise ServiceError(
            f"redis-server is not on PATH and {INSTALL_SCRIPT} could not install it "
            f"(exit {rc}); last lines of {log}:\n{tail}"
        )
    return found


class RedisServer(LocalService):
    """One `redis-server` child process; a context manager that stops it and removes its
    temporary data directory on exit."""

    kind = "redis"

    def __init__(
        self,
        port: int | None = None,
        workdir: Path | None = None,
        *,
        appendonly: bool = True,
        start_timeout: float = 15.0,
    ) -> None:
        super().__init__(port, workdir, start_timeout)
        self.appendonly = appendonly
        self.binary: str | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.workdir / "redis-server.log"

    def argv(self, binary: str) -> list[str]:
        return [
            binary,
            "--port",
            str(self.port),
            "--bind",
            HOST,
            "--dir",
            str(self.workdir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
            "--daemonize",
            "no",
        ]

    def start(self) -> Self:
        """Start the server (no-op if it runs) and return once it answers PING."""
        if self.alive():
            return self
        binary = self.binary = ensure_redis_server()
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Named by its path, so every error from ManagedProcess says which binary failed.
        proc = self.process = ManagedProcess(binary, self.argv(binary), self.log_path)
        proc.start()
        deadline = time.monotonic() + self.start_timeout
        try:
            proc.wait_for_port(HOST, self.port, self.start_timeout)
            self._wait_for_ping(deadline)
        except BaseException:
            proc.stop()
            raise
        return self

    def _wait_for_ping(self, deadline: float) -> None:
        """PING until it succeeds: the port opens before an AOF is loaded (LOADING)."""
        last: Exception | None = None
        # No client-side retries: they would stretch one PING far past the deadline.
        client = redis.Redis(
            host=HOST,
            port=self.port,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            while time.monotonic() < deadline:
                if not self.alive():
                    break
                try:
                    if client.ping():
                        return
                except redis.exceptions.RedisError as exc:
                    last = exc
                time.sleep(0.05)
        finally:
            client.close()
        tail = self.process.log_tail() if self.process is not None else ""
        raise ServiceError(
            f"{self.binary} on port {self.port} gave no PING reply within "
            f"{self.start_timeout:.0f} s (alive={self.alive()}, last error {last!r}); "
            f"last lines of {self.log_path}:\n{tail}"
        )
