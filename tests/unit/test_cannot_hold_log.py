"""The WARNING for leads whose stored state the native core cannot hold
(`native.CannotHoldLog`): every batch handed to the Python engine goes on being counted by
the worker, but a lead is named at most once per window, so a busy lead with such a state
does not log a line per batch."""

from __future__ import annotations

import logging

import pytest

from streams.engine.native import REASON_CHARS, REASONS_SHOWN, CannotHoldLog
from streams.runtime.metrics import WorkerMetrics
from streams.state.redis_store import CannotHold


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refusal(*leads: int) -> CannotHold:
    return CannotHold({lead: f"lead {lead}: a state the core cannot hold" for lead in leads})


def test_a_lead_is_named_once_per_window_with_the_batches_since(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    said = CannotHoldLog(every_s=600, clock=clock)
    with caplog.at_level(logging.WARNING, logger="streams.engine.native"):
        assert said.note(refusal(7))
        for _ in range(50):  # a busy lead: a batch a second
            clock.now += 1
            assert not said.note(refusal(7))
        assert said.note(refusal(7, 9)), "a lead not named yet is named"
        clock.now += 549
        assert not said.note(refusal(9))
        clock.now += 1  # 600 s after lead 7 was named
        assert said.note(refusal(7, 9))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert lines[0].startswith("engine: lead(s) 7 hold a state the native core cannot")
    assert "(1 batch(es) since the last such line" in lines[0]
    assert lines[1].startswith("engine: lead(s) 9 hold") and "(51 batch(es)" in lines[1]
    assert lines[2].startswith("engine: lead(s) 7 hold") and "(2 batch(es)" in lines[2]
    assert "lead 7: a state the core cannot hold" in lines[0]


def test_the_leads_remembered_are_bounded() -> None:
    clock = Clock()
    said = CannotHoldLog(every_s=600, clock=clock, bound=3)
    for lead in range(10):
        said.note(refusal(lead))
    assert list(said.named) == [7, 8, 9]
    assert said.note(refusal(0)), "a lead forgotten is named again"


def test_the_worker_counts_each_reason_from_zero() -> None:
    metrics = WorkerMetrics()
    for reason in ("cannot_hold", "fault"):
        got = metrics.registry.get_sample_value(
            "streams_native_fallbacks_total", {"reason": reason}
        )
        assert got == 0.0, reason


def test_the_line_says_what_each_lead_named_holds_bounded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each lead the line names is named with the core's reason (what it cannot hold and
    where), only the leads named (not those named within the window), each reason cut to
    `REASON_CHARS`, at most `REASONS_SHOWN` of them: the line stays bounded whatever the
    batch holds."""
    clock = Clock()
    said = CannotHoldLog(every_s=600, clock=clock)

    def reason(lead: int) -> str:
        where = f'the history of type 7, entry {lead}, attribute "a": null'
        return f"lead {lead}: a state the core cannot hold: {where}"

    with caplog.at_level(logging.WARNING, logger="streams.engine.native"):
        said.note(CannotHold({3: reason(3)}))
        said.note(CannotHold({3: reason(3), 4: reason(4)}))
        said.note(CannotHold({lead: reason(lead) + "x" * 5000 for lead in range(100, 400)}))
    first, second, third = (r.getMessage() for r in caplog.records)
    assert reason(3) in first
    assert reason(4) in second and "entry 3," not in second
    assert third.count("a state the core cannot hold") == REASONS_SHOWN
    cut = reason(100) + "x" * (REASON_CHARS - 1 - len(reason(100))) + "…"
    assert cut in third and third.count("x…") == REASONS_SHOWN
    assert "and 280 more" in third
    assert len(third) < 2000
