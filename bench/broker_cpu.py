"""The embedded broker's CPU time per record, and its start time, for JVM and broker variants.

    .venv/bin/python bench/broker_cpu.py --rounds 3 \\
        --variant base= --variant serial=-XX:+UseSerialGC --variant io1=num.io.threads=1

Each round starts, for each variant in turn (the order rotates every round, so that no
variant always runs first or last on a machine others share), a fresh `KafkaBroker`
(streams.devstack.kafka) and times its start: spawn (the storage format's JVM included,
as a test's fresh broker pays it) -> port open -> ready (it serves a DescribeCluster).
Then it drives the worker's traffic through it: bench/stream.py's load generator
(`start_paced_sender`, its own process, librdkafka) produces sample activities keyed by
lead to `in` (4 partitions); bench/passthrough.py's "raw" relay (aiokafka, the worker's
client: getmany, re-encode, send_batch per partition, commit per batch) consumes them in
a consumer group and re-produces them to `out` (4 partitions); bench/stream.py's timing
consumer (`TimingReader`) reads `out` here. Phases: `warm-up` (the first records a young
JVM serves, while it compiles its request paths), then each `--rates` rate for
`--seconds`. For each phase: the broker's CPU time per record (user + system, every
thread, /proc) from the first send to the last record read, with its JIT compiler
threads' and its GC threads' (incl. the VM thread, where SerialGC collects) shares, and
produce -> consumed p50 / p99; also the broker's CPU over its start, and the load average.

A variant is NAME=TOKENS (space separated): a token starting with "-" is a JVM flag,
added to streams.devstack.kafka.JVM_OPTIONS (a `-XX:+Use...GC` token replaces them, as
does a leading `-only`); `heap=SIZE` sets -Xmx/-Xms; `cds=off` starts it without the
class-data-sharing archives (streams.devstack.class_archive); any other KEY=VALUE is a
server.properties entry. `base=` is the module's defaults.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import passthrough  # noqa: E402
from bench.stream import (  # noqa: E402
    PARTITIONS,
    Harness,
    TimingReader,
    cpu_seconds,
    jit_seconds,
    start_paced_sender,
)
from streams.devstack.kafka import HOST, JVM_OPTIONS, KafkaBroker, create_topics  # noqa: E402
from streams.samples import sample_activities  # noqa: E402

GC_THREADS = ("GC Thread", "G1 ", "VM Thread", "VM Periodic")
"""/proc comm prefixes of a HotSpot JVM's collector threads (SerialGC collects in the VM
thread; ParallelGC in "GC Thread#N"; G1 also in "G1 Conc", "G1 Refine", ...)."""


@dataclass(frozen=True)
class Variant:
    name: str
    jvm_options: tuple[str, ...]
    settings: dict[str, str]
    heap: str = "512m"
    class_sharing: bool = True


def parse_variant(text: str) -> Variant:
    name, _, rest = text.partition("=")
    options = list(JVM_OPTIONS)
    settings: dict[str, str] = {}
    heap = "512m"
    sharing = True
    for token in rest.split():
        if token == "-only":
            options = []
        elif token.startswith("-"):
            if token.startswith("-XX:+Use") and token.endswith("GC"):
                options = [o for o in options if o not in JVM_OPTIONS]
            options.append(token)
        elif token in ("cds=on", "cds=off"):
            sharing = token == "cds=on"
        elif token.startswith("heap="):
            heap = token.removeprefix("heap=")
        elif "=" in token:
            key, _, value = token.partition("=")
            settings[key] = value
        else:
            raise SystemExit(f"--variant {text!r}: {token!r} is neither -FLAG nor KEY=VALUE")
    return Variant(name, tuple(options), settings, heap, sharing)


def gc_seconds(pid: int) -> float:
    """CPU time so far of a JVM's collector threads (GC_THREADS)."""
    ticks = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            if (task / "comm").read_text().startswith(GC_THREADS):
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Phase:
    label: str
    rate: float
    records: int
    read: int = 0
    cpu: float = 0.0
    jit: float = 0.0
    gc: float = 0.0
    relay_cpu: float = 0.0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    load: float = 0.0

    def us(self, seconds: float) -> float:
        return seconds / max(self.read, 1) * 1e6

    def line(self) -> str:
        cuts = statistics.quantiles(self.latencies, n=100) if len(self.latencies) > 1 else []
        lat = f"p50 {cuts[49] * 1e3:6.1f} p99 {cuts[98] * 1e3:7.1f} ms" if cuts else "no latency"
        short = "" if self.read >= self.records else f"  ONLY {self.read:,} of {self.records:,}"
        return (
            f"{self.label:>8} {self.rate:>7,.0f}/s: broker {self.us(self.cpu):5.1f} µs/record "
            f"(JIT {self.us(self.jit):4.1f}, GC {self.us(self.gc):4.1f}, rest "
            f"{self.us(self.cpu - self.jit - self.gc):5.1f}), relay {self.us(self.relay_cpu):5.1f}"
            f" µs/record, {lat}, load {self.load:4.1f}{short}"
        )


@dataclass
class Run:
    variant: str
    spawn_port: float
    spawn_ready: float
    start_cpu: float
    phases: list[Phase]


_SAMPLES: dict[tuple[int, int], list[dict[str, Any]]] = {}


def activities(run: str, phase: int, count: int) -> list[dict[str, Any]]:
    """`count` sample activities with identities unique to this run and phase (the
    stream itself made once per phase and count: it takes seconds)."""
    base = _SAMPLES.get((phase, count))
    if base is None:
        base = _SAMPLES[(phase, count)] = list(sample_activities(count, leads=2000, seed=phase + 1))
    return [a | {"marketoGUID": f"{run}-{phase}-{i}"} for i, a in enumerate(base)]


def drive(
    broker: KafkaBroker,
    relay_pid: int,
    reader: TimingReader,
    topics: tuple[str, str],
    phase: Phase,
    items: list[dict[str, Any]],
    timeout: float,
) -> None:
    """One phase: send `items` at `phase.rate`, read them back, fill in `phase`."""
    import orjson

    pid = broker.process.pid if broker.process else 0
    paced = start_paced_sender(Harness(), broker.bootstrap, topics[0], items, {}, phase.rate)
    paced.wait_ready()  # records encoded and handed over, its client made: not timed
    cpu, jit, gc, relay = (
        cpu_seconds(pid),
        jit_seconds(pid),
        gc_seconds(pid),
        cpu_seconds(relay_pid),
    )
    started = time.monotonic()
    paced.go.set()
    got: list[tuple[bytes, float]] = []
    deadline = started + len(items) / phase.rate + timeout
    while len(got) < len(items) and time.monotonic() < deadline:
        got.extend((value, time.time()) for _, value, _ in reader.poll(0.2))
    phase.seconds = time.monotonic() - started
    phase.cpu = cpu_seconds(pid) - cpu
    phase.jit = jit_seconds(pid) - jit
    phase.gc = gc_seconds(pid) - gc
    phase.relay_cpu = cpu_seconds(relay_pid) - relay
    phase.load = os.getloadavg()[0]
    phase.read = len(got)
    sent = paced.report()[0] if paced.receive.poll(30) else {}
    paced.process.join(30)
    for value, at in got:
        if (when := sent.get(orjson.loads(value)["marketoGUID"])) is not None:
            phase.latencies.append(at - when)


def traffic(broker: KafkaBroker, run: str, args: argparse.Namespace, logs: Path) -> list[Phase]:
    """The warm-up, then each rate: the load generator, the relay and the timing consumer."""
    topics = (f"in-{run}", f"out-{run}")
    create_topics(broker.bootstrap, dict.fromkeys(topics, PARTITIONS))
    relay = passthrough.variant_process("raw", broker.bootstrap, *topics, logs, [])
    reader = TimingReader("confluent", broker.bootstrap, [topics[1]])
    plan = [("warm-up", args.warmup_rate, args.warmup)]
    plan += [(f"{rate / 1000:g}k", rate, args.seconds) for rate in args.rates]
    phases: list[Phase] = []
    with relay:
        for index, (label, rate, seconds) in enumerate(plan):
            items = activities(run, index, int(rate * seconds))
            phase = Phase(label, rate, len(items))
            drive(broker, relay.pid, reader, topics, phase, items, args.timeout)
            phases.append(phase)
            time.sleep(args.pause)
    reader.close()
    return phases


def one_run(variant: Variant, args: argparse.Namespace, logs: Path) -> Run:
    run = uuid.uuid4().hex[:6]
    broker = KafkaBroker(
        workdir=logs / f"{variant.name}-{run}",
        heap=variant.heap,
        jvm_options=variant.jvm_options,
        settings=variant.settings,
        class_sharing=variant.class_sharing,
    )
    spawned = time.monotonic()
    broker.launch()
    assert broker.process is not None
    try:
        broker.process.wait_for_port(HOST, broker.port, broker.start_timeout)
        port_open = time.monotonic() - spawned
        broker.wait_ready(brokers=1)
        ready = time.monotonic() - spawned
        start_cpu = cpu_seconds(broker.process.pid)
        phases = [] if args.start_only else traffic(broker, run, args, logs)
    finally:
        broker.close()
    return Run(variant.name, port_open, ready, start_cpu, phases)


def summary(runs: list[Run], variants: list[Variant]) -> None:
    """Medians over the rounds, per variant."""
    print("\nmedians over rounds (broker µs/record: all / JIT / GC; start s; p99 ms)")
    for variant in variants:
        mine = [r for r in runs if r.variant == variant.name]
        if not mine:
            continue
        med = statistics.median
        cells = [
            f"{variant.name:>12}: port {med(r.spawn_port for r in mine):4.1f} s, ready "
            f"{med(r.spawn_ready for r in mine):4.1f} s, start CPU "
            f"{med(r.start_cpu for r in mine):4.1f} s"
        ]
        for i, label in enumerate(p.label for p in mine[0].phases):
            ps = [r.phases[i] for r in mine if len(r.phases) > i]
            all_ = med(p.us(p.cpu) for p in ps)
            jit = med(p.us(p.jit) for p in ps)
            gc = med(p.us(p.gc) for p in ps)
            p99 = med(statistics.quantiles(p.latencies, n=100)[98] * 1e3 for p in ps)
            cells.append(f"{label} {all_:.1f}/{jit:.1f}/{gc:.1f} p99 {p99:.0f}")
        print(" | ".join(cells), flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--variant", action="append", default=[], metavar="NAME=TOKENS")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--rates", type=float, nargs="+", default=[15_000.0, 30_000.0])
    p.add_argument("--seconds", type=float, default=20.0, help="per rate phase")
    p.add_argument("--warmup", type=float, default=20.0, help="warm-up phase, seconds")
    p.add_argument("--warmup-rate", type=float, default=15_000.0)
    p.add_argument("--timeout", type=float, default=60.0, help="past a phase's schedule")
    p.add_argument("--start-only", action="store_true", help="time the starts, no traffic")
    p.add_argument("--pause", type=float, default=2.0, help="seconds between phases")
    args = p.parse_args()
    variants = [parse_variant(v) for v in args.variant or ["base="]]
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="broker-cpu-") as tmp:
        for round_ in range(args.rounds):
            shift = round_ % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                r = one_run(variant, args, Path(tmp))
                runs.append(r)
                print(
                    f"round {round_ + 1} {variant.name}: port open {r.spawn_port:.1f} s, "
                    f"ready {r.spawn_ready:.1f} s, broker CPU to ready {r.start_cpu:.1f} s "
                    f"({' '.join(variant.jvm_options)} {variant.settings or ''} "
                    f"heap {variant.heap}, cds {'on' if variant.class_sharing else 'off'})",
                    flush=True,
                )
                for phase in r.phases:
                    print("  " + phase.line(), flush=True)
            summary(runs, variants)
    return 0


if __name__ == "__main__":
    sys.exit(main())
