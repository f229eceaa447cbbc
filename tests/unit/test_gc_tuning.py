"""`tune_gc`: the collector's thresholds a process runs with (the worker's young one its own)."""

from __future__ import annotations

import gc

from streams.gc_tuning import THRESHOLDS, WORKER_YOUNG, tune_gc


def test_tune_gc_sets_the_thresholds_and_the_worker_collects_young_objects_less_often() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == THRESHOLDS
        tune_gc(young=WORKER_YOUNG)
        assert gc.get_threshold() == (WORKER_YOUNG, *THRESHOLDS[1:])
        assert THRESHOLDS[0] < WORKER_YOUNG
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
