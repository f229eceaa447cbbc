"""Durations of action files (`30 seconds`, `50 minutes`, `6 hours`) as float seconds.

The engine's durations (`parse_duration_us`) stop at minutes; calls need seconds.
"""

from __future__ import annotations

import re
from typing import Final

_DURATION_RE: Final = re.compile(
    r"\s*([0-9]+(?:\.[0-9]+)?)\s*(millisecond|second|minute|hour|day)s?\s*", re.IGNORECASE
)
_UNIT_SECONDS: Final = {
    "millisecond": 0.001,
    "second": 1.0,
    "minute": 60.0,
    "hour": 3600.0,
    "day": 86400.0,
}


def parse_seconds(raw: object) -> float:
    """`N milliseconds|seconds|minutes|hours|days` (singular too) -> seconds; ValueError."""
    match = _DURATION_RE.fullmatch(raw) if isinstance(raw, str) else None
    if match is None:
        raise ValueError(
            f"{raw!r} is not a duration: write N seconds (milliseconds, minutes, hours, days)"
        )
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
