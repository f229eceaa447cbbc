"""The embedded broker's JVM flags and server.properties (no JVM is started here): the
defaults are the measured ones (streams/devstack/kafka.py), and a caller's overrides
(bench/broker_cpu.py's variants) replace them rather than being added beside them."""

from __future__ import annotations

from pathlib import Path

from streams.devstack.kafka import JVM_OPTIONS, KafkaBroker


def _properties(broker: KafkaBroker) -> list[tuple[str, str]]:
    lines = broker._write_config().read_text().splitlines()
    return [(key, value) for key, _, value in (line.partition("=") for line in lines)]


def test_default_command_carries_the_heap_and_jvm_options(tmp_path: Path) -> None:
    broker = KafkaBroker(workdir=tmp_path, heap="300m")
    argv = broker.command("java", "libs/*", tmp_path / "server.properties")
    assert argv[:3] == ["java", "-Xmx300m", "-Xms300m"]
    assert argv[3 : 3 + len(JVM_OPTIONS)] == list(JVM_OPTIONS)
    assert argv[-2:] == ["kafka.Kafka", str(tmp_path / "server.properties")]


def test_jvm_options_replace_the_defaults(tmp_path: Path) -> None:
    broker = KafkaBroker(workdir=tmp_path, jvm_options=["-XX:+UseSerialGC"])
    argv = broker.command("java", "libs/*", tmp_path / "server.properties")
    assert "-XX:+UseSerialGC" in argv
    assert not set(JVM_OPTIONS) & set(argv)


def test_settings_override_and_extend_server_properties(tmp_path: Path) -> None:
    default = dict(_properties(KafkaBroker(workdir=tmp_path / "a")))
    entries = _properties(
        KafkaBroker(
            workdir=tmp_path / "b", settings={"num.io.threads": 3, "queued.max.requests": "7"}
        )
    )
    changed = dict(entries)
    assert [k for k, _ in entries].count("num.io.threads") == 1, "replaced, not repeated"
    assert changed["num.io.threads"] == "3" != default["num.io.threads"]
    assert changed["queued.max.requests"] == "7"
    assert "queued.max.requests" not in default
    assert changed["process.roles"] == default["process.roles"] == "broker,controller"
