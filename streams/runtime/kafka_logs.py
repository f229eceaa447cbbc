"""The Kafka clients' logs as state changes: a broker outage logs three kinds of line, not
thousands.

aiokafka (under Faust and the API's writer) and kafka-python log every failed reconnect,
metadata refresh and retried request at WARNING or ERROR, several times a second per
connection: a broker outage of a minute wrote ~18,000 ERROR lines to a worker's log. Here
those records are kept at DEBUG (shown only with --log-level debug) and summed up instead:

- `Kafka clients: connection trouble (<first message>); ...` once, when they start;
- `Kafka clients: still failing after S s (N errors, R/s; last: ...)` at
  most once every `SUMMARY_EVERY` seconds while they go on;
- `Kafka clients: recovered after D s (N errors)` once they stopped for `QUIET` seconds.

Invariant: no client record is lost, only lowered (with --log-level debug every one is
still written, at DEBUG); records below WARNING pass unchanged; our own code logs what
it decides (a failed batch, a crash) at its own level, untouched by this.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Final

CLIENT_LOGGERS: Final = ("aiokafka", "kafka")
CHATTY: Final = "kafka"
"""kafka-python logs every connection it opens and closes at INFO: kept at DEBUG too."""
SUMMARY_EVERY: Final = 30.0
QUIET: Final = 10.0
"""Seconds without a client warning or error after which the trouble is over."""

log = logging.getLogger("streams.kafka")


class Trouble:
    """Counts the clients' warnings and errors and logs the state changes (thread-safe:
    kafka-python logs from its own threads)."""

    def __init__(self, summary_every: float = SUMMARY_EVERY, quiet: float = QUIET) -> None:
        self.summary_every = summary_every
        self.quiet = quiet
        self._lock = threading.Lock()
        self._since: float | None = None
        self._last: float = 0.0
        self._last_summary: float = 0.0
        self._count = 0
        self._message = ""
        self._watcher: threading.Thread | None = None

    def record(self, message: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._count += 1
            self._last = now
            self._message = message
            if self._since is None:
                self._since = self._last_summary = now
                log.warning(
                    "Kafka clients: connection trouble (%s); retrying, their messages are "
                    "at DEBUG, a summary every %.0f s",
                    message,
                    self.summary_every,
                )
                self._watch()
            elif now - self._last_summary >= self.summary_every:
                self._last_summary = now
                log.warning(
                    "Kafka clients: still failing after %.0f s (%d errors, %.1f/s; last: %s)",
                    now - self._since,
                    self._count,
                    self._count / max(now - self._since, 1e-3),
                    message,
                )

    def check(self) -> bool:
        """Log the recovery if the trouble is over; whether it is."""
        with self._lock:
            if self._since is None:
                return True
            now = time.monotonic()
            if now - self._last < self.quiet:
                return False
            log.warning(
                "Kafka clients: recovered after %.1f s (%d errors, none in the last %.0f s)",
                self._last - self._since,
                self._count,
                now - self._last,
            )
            self._since = None
            self._count = 0
            return True

    def _watch(self) -> None:
        """One daemon thread for the life of the process, started at the first trouble: the
        recovery is logged even when no client logs anything any more."""
        if self._watcher is not None:
            return

        def watch() -> None:
            while True:
                time.sleep(min(1.0, self.quiet / 4))
                self.check()

        self._watcher = threading.Thread(target=watch, name="kafka-log-watch", daemon=True)
        self._watcher.start()


class ClientLogHandler(logging.Handler):
    """On the client libraries' top loggers (which then no longer propagate): WARNING and
    up becomes DEBUG and counts as trouble, kafka-python's INFO becomes DEBUG; every record
    is handed on to the root logger's handlers, as propagation would have, if the root
    logger takes its (new) level."""

    def __init__(self, trouble: Trouble) -> None:
        super().__init__(logging.NOTSET)
        self.trouble = trouble

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.trouble.record(record.getMessage().splitlines()[0][:300])
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        elif record.levelno == logging.INFO and record.name.split(".")[0] == CHATTY:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        root = logging.getLogger()
        if root.isEnabledFor(record.levelno):
            root.handle(record)


_installed: Trouble | None = None


def quiet_client_logs() -> Trouble:
    """Install the handler on the client libraries' loggers (once per process; later calls
    return the same `Trouble`). Call after the logging configuration: a worker's Faust
    replaces the root handlers later, which is fine, records go to whichever are there."""
    global _installed
    if _installed is None:
        _installed = Trouble()
        handler = ClientLogHandler(_installed)
        for name in CLIENT_LOGGERS:
            client = logging.getLogger(name)
            client.addHandler(handler)
            client.propagate = False
    return _installed
