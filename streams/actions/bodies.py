"""Reading responses boundedly: a huge, endless or non-JSON body never costs more than
`limit` bytes, and what is kept for a dead letter is its first KiB as text."""

from __future__ import annotations

from typing import Any, Final

EXCERPT_BYTES: Final = 1024
READ_LIMIT: Final = 64 * 1024
"""The most read of any response (a token endpoint's JSON included)."""


async def read_bounded(response: Any, limit: int = READ_LIMIT) -> bytes:
    """At most `limit` bytes of an aiohttp response's body; the rest is never read (the
    connection is then closed rather than reused). Time is bounded by the caller."""
    chunks: list[bytes] = []
    total = 0
    while total < limit:
        chunk = await response.content.read(limit - total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def excerpt(body: bytes) -> str:
    return body[:EXCERPT_BYTES].decode("utf-8", errors="replace")
