"""bench/stream.py's pure parts: the load generator's schedule and send times, its linger,
--compare, the JIT threads' CPU time, the broker's warm-up."""

from __future__ import annotations

import ctypes
import os
import threading
import time
from pathlib import Path

import pytest

from bench import stream
from bench.stream import (
    AUTO_LINGER_MS,
    LINGER_ABOVE,
    WARMUP_PHASE,
    Harness,
    Timed,
    compare_variant,
    due,
    jit_seconds,
    linger_for,
    send_times,
)


def test_the_first_record_is_due_at_the_start_then_one_per_interval() -> None:
    assert due(10.0, 1000.0, 9.999, 50) == 0
    assert due(10.0, 1000.0, 10.0, 50) == 1
    assert due(10.0, 1000.0, 10.0005, 50) == 1
    assert due(10.0, 1000.0, 10.0011, 50) == 2
    assert due(10.0, 1000.0, 10.0201, 50) == 21


def test_a_late_wake_up_makes_everything_due_by_then_due_and_never_more_than_all() -> None:
    assert due(0.0, 22_000.0, 0.001, 10_000) == 23
    assert due(0.0, 22_000.0, 60.0, 10_000) == 10_000


def test_the_default_linger_is_none_at_low_rates_and_a_millisecond_above() -> None:
    assert linger_for(Harness(), 1000.0) == 0.0
    assert linger_for(Harness(), LINGER_ABOVE) == 0.0
    assert linger_for(Harness(), 22_000.0) == AUTO_LINGER_MS
    assert linger_for(Harness(linger_ms=5.0), 500.0) == 5.0
    assert linger_for(Harness(linger_ms=0.0), 22_000.0) == 0.0


def test_a_compared_variant_names_its_settings() -> None:
    assert compare_variant("sw=STREAMS_A=1") == ("sw", {"STREAMS_A": "1"})
    assert compare_variant("two=STREAMS_A=x=y,STREAMS_B=2") == (
        "two",
        {"STREAMS_A": "x=y", "STREAMS_B": "2"},
    )
    for bad in ("", "name", "name=", "=STREAMS_A=1"):
        with pytest.raises(SystemExit, match="NAME=STREAMS_X=V"):
            compare_variant(bad)


def test_each_record_is_stamped_with_its_wake_up_time() -> None:
    ticks = [(0, 100.0), (1, 100.001), (4, 100.002)]
    assert send_times(["a", "b", "c", "d", "e", "f"], ticks) == {
        "a": 100.0,
        "b": 100.001,
        "c": 100.001,
        "d": 100.001,
        "e": 100.002,
        "f": 100.002,
    }
    assert send_times([], []) == {}


def test_the_jit_time_is_read_from_the_compiler_threads_only_and_their_names_kept() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    named = threading.Event()
    stop = threading.Event()
    pr_set_name = 15

    def compiler() -> None:  # a thread named as a JVM's C2 compiler thread, busy
        libc.prctl(pr_set_name, b"C2 CompilerThre", 0, 0, 0)
        named.set()
        while not stop.is_set():
            sum(range(1000))

    busy = threading.Thread(target=compiler)
    busy.start()
    try:
        assert named.wait(10)
        threads: dict[str, bool] = {}
        deadline = time.monotonic() + 30
        while jit_seconds(os.getpid(), threads) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert jit_seconds(os.getpid(), threads) > 0
        assert sorted(threads.values()) == [False] * (len(threads) - 1) + [True]
        assert jit_seconds(os.getpid()) <= jit_seconds(os.getpid(), threads)  # read in order
    finally:
        stop.set()
        busy.join()


def _warm_up_phases(
    monkeypatch: pytest.MonkeyPatch, jit_us: list[float], seconds: float, services: bool = True
) -> list[float]:
    """The lengths of the warm-up phases `warm_broker` runs when its phases' broker JIT
    time per activity is `jit_us`, one after another."""
    lengths: list[float] = []

    def phase(*args: object, **_: object) -> Timed:
        lengths.append(float(args[3]))  # type: ignore[arg-type]
        timed = Timed()
        timed.sent = 1000
        timed.latencies = [0.01] * 1000
        timed.segments["append"] = [0.001] * 1000
        timed.broker_jit = jit_us[len(lengths) - 1] * 1000 / 1e6
        return timed

    monkeypatch.setattr(stream, "latency", phase)
    harness = Harness(services={"broker": 1} if services else {})
    stream.warm_broker("b", "r", Path("."), {}, harness, 30_000.0, seconds)
    return lengths


def test_the_broker_warm_up_ends_once_its_jit_share_is_small(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _warm_up_phases(monkeypatch, [9.0, 3.0, 0.5, 0.2, 0.1], 90.0) == [
        WARMUP_PHASE,
        WARMUP_PHASE,
        WARMUP_PHASE,
    ]


def test_the_broker_warm_up_is_bounded_and_runs_full_without_the_brokers_pid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _warm_up_phases(monkeypatch, [9.0, 9.0, 9.0, 9.0], 50.0) == [20.0, 20.0, 10.0]
    assert _warm_up_phases(monkeypatch, [0.0, 0.0, 0.0], 45.0, services=False) == [
        20.0,
        20.0,
        5.0,
    ]
    assert _warm_up_phases(monkeypatch, [], 0.0) == []


def test_a_half_rate_phase_is_dated_before_the_clock_and_otherwise_the_same_stream() -> None:
    """300 activities per lead run the sample stream's dates past today: a latency phase
    moves them back, so none is beyond the worker's future horizon (a dead letter the
    peers never pay for): every date by the same amount (dated attributes move with
    them), the same leads, types and identities in the same order."""
    from datetime import UTC, datetime, timedelta

    from streams.samples import sample_activities

    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    moved = stream.phase_activities(6_000, 20, 5, now)
    plain = list(sample_activities(6_000, 20, seed=5))
    when = stream.activity_date
    assert max(map(when, plain)) > now + timedelta(days=1)  # beyond the horizon unmoved
    assert max(map(when, moved)) == now - stream.PHASE_END_BEFORE
    shift = when(plain[0]) - when(moved[0])
    for a, b in zip(plain, moved, strict=True):
        assert when(a) - shift == when(b)
        same = ("marketoGUID", "leadId", "activityTypeId", "primaryAttributeValue")
        assert [a.get(k) for k in same] == [b.get(k) for k in same]
    assert stream.phase_activities(100, 20, 5, now) == list(sample_activities(100, 20, seed=5))
