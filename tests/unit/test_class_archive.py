"""streams.devstack.class_archive's bookkeeping (the JVM itself is exercised by
tests/integration/test_devstack_kafka.py): which flags a broker gets, and which recorded
archive is kept, so that the cache never holds a partial archive."""

from __future__ import annotations

import os
from pathlib import Path

from streams.devstack import class_archive


def _java_stub(tmp_path: Path, writes: bool = True) -> str:
    """A `java` that writes the file named by -XX:SharedArchiveFile= (as -Xshare:dump
    does), or fails."""
    stub = tmp_path / "java"
    body = (
        'for a in "$@"; do case $a in -XX:SharedArchiveFile=*) echo archive > "${a#*=}";; '
        "esac; done"
        if writes
        else "exit 1"
    )
    stub.write_text(f"#!/bin/sh\n{body}\n")
    stub.chmod(0o755)
    return str(stub)


def test_first_broker_records_kafka_classes_over_a_fresh_base(tmp_path: Path) -> None:
    archives = tmp_path / "cds"
    flags = class_archive.options(_java_stub(tmp_path), archives, tmp_path / "rec.jsa")
    assert flags == [
        f"-XX:SharedArchiveFile={archives / 'base.jsa'}",
        f"-XX:ArchiveClassesAtExit={tmp_path / 'rec.jsa'}",
    ]
    assert (archives / "base.jsa").read_text() == "archive\n"
    assert [p.name for p in archives.iterdir()] == ["base.jsa"], "no scratch file left"


def test_later_brokers_map_base_and_top(tmp_path: Path) -> None:
    archives = tmp_path / "cds"
    archives.mkdir()
    (archives / "base.jsa").write_text("b")
    (archives / "top.jsa").write_text("t")
    flags = class_archive.options("/nonexistent/java", archives, tmp_path / "rec.jsa")
    base, top = archives / "base.jsa", archives / "top.jsa"
    assert flags == [f"-XX:SharedArchiveFile={base}{os.pathsep}{top}"]


def test_no_flags_when_the_base_cannot_be_made(tmp_path: Path) -> None:
    archives = tmp_path / "cds"
    assert class_archive.options(_java_stub(tmp_path, writes=False), archives, tmp_path / "r") == []
    assert class_archive.options("/nonexistent/java", archives, tmp_path / "r") == []
    assert class_archive.tool_options("/nonexistent/java", archives) == []
    assert list(archives.iterdir()) == [], "no partial base left behind"


def test_a_clean_exit_keeps_the_recording_as_top(tmp_path: Path) -> None:
    recorded = tmp_path / "rec.jsa"
    recorded.write_text("kafka classes")
    class_archive.keep_recorded(recorded, tmp_path, exit_code=143)  # SIGTERM, shut down
    assert (tmp_path / "top.jsa").read_text() == "kafka classes"
    assert not recorded.exists()


def test_a_killed_broker_or_a_second_recording_is_dropped(tmp_path: Path) -> None:
    recorded = tmp_path / "rec.jsa"
    recorded.write_text("maybe cut short")
    class_archive.keep_recorded(recorded, tmp_path, exit_code=-9)
    assert not (tmp_path / "top.jsa").exists()
    assert not recorded.exists()

    (tmp_path / "top.jsa").write_text("first")
    recorded.write_text("second")
    class_archive.keep_recorded(recorded, tmp_path, exit_code=0)
    assert (tmp_path / "top.jsa").read_text() == "first"
    assert not recorded.exists()
