"""Child processes for local services: started in their own process group, stopped whole.

Invariant: a `ManagedProcess` that was started is stopped by `stop()` together with every
process it spawned (SIGTERM to the group, then SIGKILL after a grace period), so a demo
or a test run leaves nothing behind, even when the service forks helpers; and if the
process that started it dies without stopping it, Linux kills it (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from streams.paths import cache_dir

_PR_SET_PDEATHSIG = 1

__all__ = ["LocalService", "ManagedProcess", "ServiceError", "cache_dir", "free_port"]


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux for SIGKILL when the parent dies, so a test run
    or a demo that is itself killed (timeout, kill -9) leaves no broker or worker behind.
    The parent is the thread that started the child: start services from a thread that
    outlives them (the main thread, in the demo and the tests)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


class ServiceError(RuntimeError):
    """A local service could not be installed or started; the message says which and why."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class ManagedProcess:
    """One service process with its log file; a context manager that stops it on exit."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            raise ServiceError(f"{self.name}: cannot run {self.argv[0]}: {exc}") from exc
        finally:
            log.close()
        return self

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise ServiceError(f"{self.name}: not started")
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_for_port(self, host: str, port: int, timeout: float) -> None:
        """Block until `host:port` accepts connections; fail early if the process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServiceError(
                    f"{self.name} exited before listening on {host}:{port}; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            if port_open(host, port):
                return
            time.sleep(0.1)
        self.stop()
        raise ServiceError(
            f"{self.name} did not listen on {host}:{port} within {timeout:.0f} s; "
            f"last lines of {self.log_path}:\n{self.log_tail()}"
        )

    def kill(self) -> None:
        """SIGKILL the whole group at once (for crash tests)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the group, wait up to `grace` seconds, then SIGKILL what is left."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        # The leader may be gone while children it spawned still run.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=grace)

    def __enter__(self) -> Self:
        return self.start() if self.proc is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class LocalService:
    """A service (broker, Redis) on a free port with its files in `workdir`: a temporary
    directory unless given, removed by `close()` only when this object created it. Port and
    files are kept across `restart()`, so tests can check what survives one. Subclasses
    start their `process` in `start()`, which returns at once if it already runs."""

    kind = "service"
    """Names the temporary directory (`streams-<kind>-…`)."""
    stop_grace = 10.0
    """Seconds `stop()` waits after SIGTERM before SIGKILL."""

    def __init__(self, port: int | None, workdir: Path | None, start_timeout: float) -> None:
        self.port = port if port is not None else free_port()
        self._owns_workdir = workdir is None
        self.workdir = (
            workdir
            if workdir is not None
            else Path(tempfile.mkdtemp(prefix=f"streams-{self.kind}-"))
        )
        self.start_timeout = start_timeout
        self.process: ManagedProcess | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def stop(self) -> None:
        """SIGTERM, a clean shutdown; the files stay for the next `start()`."""
        if self.process is not None:
            self.process.stop(grace=self.stop_grace)

    def kill(self) -> None:
        """SIGKILL, as a crash would; `start()` afterwards recovers from the files."""
        if self.process is not None:
            self.process.kill()

    def restart(self) -> Self:
        """Stop and start again on the same port and files."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop, then remove the files if this object created their directory."""
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
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
