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


def tune_gc() -> None:
    """Move what exists now (imports, compiled rules) out of the collector's sight and
    collect young objects less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
