"""Garbage-collector settings for processes that hold a large, long-lived heap (the
backtest's and the workers' lead states, the compiled rules).

CPython's default thresholds run a young collection every 700 allocations and a full one
every 100 young ones, and each full collection walks every container in the heap: with
millions of state objects that was a quarter of the backtest's time (bench/engine.py).
The state holds no reference cycles, so collecting rarely loses nothing.
"""

from __future__ import annotations

import gc
from typing import Final

THRESHOLDS: Final = (50_000, 50, 100)

WORKER_YOUNG: Final = 500_000
"""A worker's young-generation threshold. A batch's records, activities and events (a few
hundred thousand containers for 5,000 records) live until the batch is delivered: at
50,000 a young collection ran every few thousand records and walked them all, alive; at
500,000 one runs every few batches, when theirs are freed, and walks mostly state added
since. Measured on bench/stream.py's sustained phase: young collections' CPU 0.54 s ->
0.19-0.23 s of 6-8 s (the pause, a few tens of ms, is rarer: net growth of 500,000
containers takes minutes at 1,000 activities/s)."""


def tune_gc(young: int = THRESHOLDS[0]) -> None:
    """Move what exists now (imports, compiled rules) out of the collector's sight and
    collect young objects less often (after `young` net allocations of containers)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(young, *THRESHOLDS[1:])
