"""A throwaway `redis-server` on a free port, for the demo and the integration tests.

Invariant: a `RedisServer` keeps its port and its data directory for its whole life, so
`restart()` (or `kill()` then `start()`) brings back the same server with the data that
its append-only file holds; that is what the Redis-restart chaos tests rely on.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

from streams.devstack.process import ManagedProcess, ServiceError, cache_dir, free_port

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


class RedisServer:
    """One `redis-server` child process; a context manager that stops it and removes its
    temporary data directory on exit."""

    def __init__(
        self,
        port: int | None = None,
        workdir: Path | None = None,
        *,
        appendonly: bool = True,
        start_timeout: float = 15.0,
    ) -> None:
        self.port = port if port is not None else free_port(HOST)
        self._owns_workdir = workdir is None
        self.workdir = (
            workdir if workdir is not None else Path(tempfile.mkdtemp(prefix="streams-redis-"))
        )
        self.appendonly = appendonly
        self.start_timeout = start_timeout
        self.binary: str | None = None
        self._proc: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.workdir / "redis-server.log"

    def alive(self) -> bool:
        return self._proc is not None and self._proc.alive()

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

    def start(self) -> RedisServer:
        """Start the server (no-op if it runs) and return once it answers PING."""
        if self.alive():
            return self
        binary = self.binary = ensure_redis_server()
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Named by its path, so every error from ManagedProcess says which binary failed.
        proc = self._proc = ManagedProcess(binary, self.argv(binary), self.log_path)
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
        tail = self._proc.log_tail() if self._proc is not None else ""
        raise ServiceError(
            f"{self.binary} on port {self.port} gave no PING reply within "
            f"{self.start_timeout:.0f} s (alive={self.alive()}, last error {last!r}); "
            f"last lines of {self.log_path}:\n{tail}"
        )

    def stop(self) -> None:
        """SIGTERM (Redis flushes its AOF on a clean shutdown); keeps the data dir."""
        if self._proc is not None:
            self._proc.stop()

    def kill(self) -> None:
        """SIGKILL, like a crash; whatever was written to the AOF stays on disk."""
        if self._proc is not None:
            self._proc.kill()

    def restart(self) -> RedisServer:
        """Stop and start again on the same port and data dir."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop, then remove the data dir if this object created it."""
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        try:
            return self.start()
        except BaseException:
            self.close()  # __exit__ will not run: do not leave the temporary dir behind
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
