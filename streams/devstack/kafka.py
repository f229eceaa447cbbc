"""A real single-node Kafka broker (KRaft: broker and controller in one JVM) for tests and
benchmarks, run from the Maven Central jars that `scripts/install-kafka` caches.

3.9 is the newest line that still accepts the old protocol versions that kafka-python and
aiokafka (Faust) may send; Kafka 4.0 dropped them (KIP-896).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from streams.devstack.process import (
    LocalService,
    ManagedProcess,
    ServiceError,
    cache_dir,
    free_port,
)
from streams.runtime.connections import KafkaUnavailable, ensure_topics

KAFKA_VERSION = "3.9.2"
REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-kafka"
HOST = "127.0.0.1"
NODE_ID = 1

# Everything to stdout, which ManagedProcess sends to the broker's log file.
LOG4J_PROPERTIES = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
"""


def ensure_kafka_jars() -> Path:
    """The directory of the broker's jars, downloaded first if this machine lacks them."""
    home = cache_dir() / f"kafka-{KAFKA_VERSION}"
    if (home / ".installed").is_file():
        return home / "libs"
    env = {**os.environ, "STREAMS_CACHE_DIR": str(cache_dir())}
    try:
        done = subprocess.run(
            [str(INSTALL_SCRIPT), KAFKA_VERSION],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceError(f"kafka: cannot run {INSTALL_SCRIPT}: {exc}") from exc
    if done.returncode != 0:
        raise ServiceError(
            f"kafka: {INSTALL_SCRIPT} {KAFKA_VERSION} failed "
            f"(exit {done.returncode}):\n{done.stderr.strip()}"
        )
    return Path(done.stdout.strip().splitlines()[-1])


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).is_file():
        raise ServiceError("kafka: no `java` on PATH (nor in $JAVA_HOME); install Java 17+")
    return java


def create_topics(bootstrap: str, topics: Mapping[str, int], timeout: float = 30.0) -> None:
    """Create each missing topic (the workers' own `ensure_topics`, as a ServiceError)."""
    try:
        ensure_topics(bootstrap, topics, timeout)
    except KafkaUnavailable as exc:
        raise ServiceError(f"kafka: {exc}") from exc


class KafkaBroker(LocalService):
    """A broker on free ports with its data in `workdir` (a temporary directory unless
    given). Ports and data are kept across `restart()`, so tests can check durability."""

    kind = "kafka"
    stop_grace = 30.0  # a controlled shutdown, so the next start needs no log recovery

    def __init__(
        self,
        port: int | None = None,
        workdir: Path | None = None,
        *,
        num_partitions: int = 4,
        heap: str = "512m",
        start_timeout: float = 60.0,
    ) -> None:
        super().__init__(port, workdir, start_timeout)
        self.controller_port = free_port(HOST)
        while self.controller_port == self.port:
            self.controller_port = free_port(HOST)
        self.num_partitions = num_partitions
        self.heap = heap

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        return self.workdir / "kafka.log"

    def start(self) -> Self:
        if self.alive():
            return self
        libs = ensure_kafka_jars()
        java = _java()
        config = self._write_config()
        classpath = f"{libs}/*"
        if not (self.data_dir / "meta.properties").is_file():
            self._format(java, classpath, config)
        argv = [
            java,
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            self._log4j_flag(),
            "-cp",
            classpath,
            "kafka.Kafka",
            str(config),
        ]
        self.process = ManagedProcess("kafka", argv, self.log_path, cwd=self.workdir).start()
        try:
            self._wait_ready()
        except BaseException:
            self.process.stop()
            raise
        return self

    def _write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "log4j.properties").write_text(LOG4J_PROPERTIES)
        settings = {
            "process.roles": "broker,controller",
            "node.id": NODE_ID,
            "controller.quorum.voters": f"{NODE_ID}@{HOST}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": self.data_dir,
            "num.partitions": self.num_partitions,
            "auto.create.topics.enable": "true",
            "default.replication.factor": 1,
            "min.insync.replicas": 1,
            "offsets.topic.replication.factor": 1,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            # The default 50 partitions each make the first consumer group or transaction
            # wait seconds on a 2-core machine while they are created.
            "offsets.topic.num.partitions": 8,
            "transaction.state.log.num.partitions": 8,
            "group.initial.rebalance.delay.ms": 0,
            # After a SIGKILL the controller refuses the restarted broker until the dead
            # one's session expires: 9 s by default, 4 s here.
            "broker.heartbeat.interval.ms": 1000,
            "broker.session.timeout.ms": 4000,
            "num.network.threads": 2,
            "num.io.threads": 4,
        }
        path = self.workdir / "server.properties"
        path.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        return path

    def _log4j_flag(self) -> str:
        return f"-Dlog4j.configuration=file:{self.workdir / 'log4j.properties'}"

    def _format(self, java: str, classpath: str, config: Path) -> None:
        # Kafka's own Uuid form: 16 random bytes, URL-safe base64 without padding.
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        argv = [java, "-Xmx256m", self._log4j_flag(), "-cp", classpath]
        # `--cluster-id=` form: an id may start with "-" (1 in 64), which `-t ID` would
        # take for an option.
        argv += [
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster_id}",
            "-c",
            str(config),
        ]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServiceError(f"kafka: cannot format {self.data_dir}: {exc}") from exc
        if done.returncode != 0:
            raise ServiceError(
                f"kafka: formatting {self.data_dir} failed (exit {done.returncode}):\n"
                f"{(done.stdout + done.stderr).strip()}"
            )

    def _wait_ready(self) -> None:
        """Until the broker answers a DescribeCluster listing itself unfenced: an open port
        alone comes seconds before the broker has registered with its controller."""
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        assert self.process is not None
        self.process.wait_for_port(HOST, self.port, self.start_timeout)
        deadline = time.monotonic() + self.start_timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if not self.process.alive():
                raise ServiceError(
                    f"kafka exited while starting; last lines of {self.log_path}:\n"
                    f"{self.process.log_tail()}"
                )
            try:
                with KafkaAdminClient(
                    bootstrap_servers=self.bootstrap,
                    bootstrap_timeout_ms=2000,
                    request_timeout_ms=2000,
                ) as admin:
                    cluster: dict[str, Any] = admin.describe_cluster()
                if any(not b.get("is_fenced", False) for b in cluster["brokers"]):
                    return
                last_error = f"no unfenced broker in {cluster['brokers']}"
            except KafkaError as exc:
                last_error = repr(exc)
            time.sleep(0.2)
        raise ServiceError(
            f"kafka did not serve requests on {self.bootstrap} within "
            f"{self.start_timeout:.0f} s ({last_error}); last lines of {self.log_path}:\n"
            f"{self.process.log_tail()}"
        )
