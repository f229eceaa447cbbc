"""State in a dict: the backtest's and the unit tests' store.

`load` hands out the live objects, so a change is visible before `save`; the backtest runs
one process and cannot crash half-way through a batch, so nothing needs the isolation, and
copying would cost a third of its time. The one exception is an error of the engine on a
record (`streams.pipeline`): redoing the batch needs the states as they were before it,
which a second `load` cannot give from live objects. `copies=True` hands out copies
(`LeadState.copy`) instead, kept only by `save`; the backtest runs again with it when that
happens (`streams.backtest`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, MutableMapping

from streams.engine.leadstate import LeadState


class MemoryStore:
    def __init__(self, copies: bool = False) -> None:
        self.leads: MutableMapping[int, LeadState] = {}
        """A dict; the native core's states (`engine.native.NativeLeads`) when it runs."""
        self.copies = copies

    async def load(self, lead_ids: Collection[int]) -> dict[int, LeadState]:
        leads = self.leads
        out: dict[int, LeadState] = {}
        for lead_id in lead_ids:
            state = leads.get(lead_id)
            if state is None:
                state = LeadState() if self.copies else leads.setdefault(lead_id, LeadState())
            elif self.copies:
                state = state.copy()
            out[lead_id] = state
        return out

    async def save(self, states: Mapping[int, LeadState]) -> None:
        self.leads.update(states)
