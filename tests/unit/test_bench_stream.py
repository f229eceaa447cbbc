"""bench/stream.py's pure parts: the load generator's schedule, its linger, --compare."""

from __future__ import annotations

import pytest

from bench.stream import (
    AUTO_LINGER_MS,
    LINGER_ABOVE,
    Harness,
    compare_variant,
    due,
    linger_for,
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
