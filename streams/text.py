"""Wording shared by every message: counts with the right plural."""

from __future__ import annotations


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """`1 duplicate`, `2 duplicates`, `0 memberships`; `plural` for an irregular noun."""
    return f"{number:,} {noun if number == 1 else (plural or noun + 's')}"
