"""The state interface the pipeline is written against.

A batch is evaluated as: `load` every lead it touches (one round trip), evaluate in record
order in memory, then `save` them (one round trip). `save` is atomic per lead: a crash
leaves each lead either before or after the batch, never half-way; the engine's record of
positions turns a replayed batch into a no-op that re-emits the same events.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol

from streams.engine.leadstate import LeadState


class Store(Protocol):
    async def load(self, lead_ids: Collection[int]) -> dict[int, LeadState]:
        """The state of every lead asked for; a lead never seen gets an empty state.
        Loading again before `save` gives the states as last saved, whatever was done to
        the objects handed out (the pipeline redoes a batch so after an engine error); a
        store that hands out live objects (`MemoryStore` by default) hands out the same
        ones again, and the pipeline refuses them."""
        ...

    async def save(self, states: Mapping[int, LeadState]) -> None:
        """Persist the states, each lead atomically."""
        ...
