"""A child process that runs streams of records through `Processor`, for the differential
test of the compiled engine and the native core (tests/unit/test_compiled_engine.py).

    STREAMS_ENGINE=compiled python -m tests.engine_child
    STREAMS_ENGINE=native python -m tests.engine_child

The engine is chosen when `streams` is first imported, once per process, so the compiled,
native and pure engines cannot run in one process: the test starts one child of each
kind and sends them the same requests. The answer says whether the native core ran the
request (`native`: of the stores here, only over a `MemoryStore`); its states are the bytes the core
wrote, not re-encoded. Protocol on stdin/stdout: length-prefixed pickles;
the child first sends which engine it runs, then answers each request (a dict, see `run`)
with the outcome of every batch and the final states, or the exception a batch raised.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import struct
import sys
import traceback
from pathlib import Path
from typing import Any, BinaryIO

HEADER = struct.Struct(">Q")


def send(channel: BinaryIO, message: object) -> None:
    payload = pickle.dumps(message)
    channel.write(HEADER.pack(len(payload)) + payload)
    channel.flush()


def receive(channel: BinaryIO) -> Any:
    header = channel.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    return pickle.loads(channel.read(HEADER.unpack(header)[0]))


def run(request: dict[str, Any], plans: dict[tuple[str, int | None], Any]) -> dict[str, Any]:
    """Request: `rules` (a directory), `retention_us` (None: the default), `max_history`,
    `index_from` ("default", None for the scanning reference, or an int), `store` ("memory",
    "json" or "journal"), `reload_every` (a fresh plan and engine every n batches, 0: never),
    `now_us`, `batches` (lists of (value, topic, partition, offset))."""
    from streams.engine.bounds import Limits
    from streams.engine.compiler import load_plan
    from streams.engine.evaluator import Engine
    from streams.engine.native import NativeLeads
    from streams.pipeline import Processor, Record
    from streams.state.codec import encode_state
    from streams.state.memory import MemoryStore
    from tests.unit.test_history_index import JournalStore, JsonStore

    key = (request["rules"], request["retention_us"])

    def plan(fresh: bool = False) -> Any:
        if fresh or key not in plans:
            path = Path(request["rules"])
            retention = request["retention_us"]
            plans[key] = load_plan(path) if retention is None else load_plan(path, retention)
        return plans[key]

    def engine(processor: Any, current: Any) -> None:
        if request["index_from"] != "default":
            processor.engine = Engine(current, index_from=request["index_from"])
        else:
            processor.engine = Engine(current)

    store = {"memory": MemoryStore, "json": JsonStore, "journal": JournalStore}[request["store"]]()
    processor = Processor(plan(), store, limits=Limits(max_history=request["max_history"]))
    engine(processor, processor.plan)
    outcomes: list[Any] = []

    async def go() -> None:
        for n, batch in enumerate(request["batches"]):
            if (
                request["reload_every"]
                and n % request["reload_every"] == request["reload_every"] - 1
            ):
                engine(processor, plan(fresh=True))
            records = [Record(*r) for r in batch]
            try:
                got = await processor.process(records, request["now_us"])
            except Exception as exc:  # the other engine must raise the same
                traceback.print_exc()
                outcomes.append(("raised", type(exc).__name__, str(exc)))
                return
            outcomes.append(
                (got.events, got.dead_letters, got.accepted, got.duplicates, got.redelivered)
            )

    asyncio.run(go())
    leads = store.leads if isinstance(store, MemoryStore) else None
    if isinstance(leads, NativeLeads):
        states = {lead: leads.encoded(lead) for lead in leads}
    elif isinstance(store, MemoryStore):
        states = {lead: encode_state(state) for lead, state in store.leads.items()}
    elif isinstance(store, JsonStore):
        states = dict(store.raw)
    else:
        states = store.states()
    return {"outcomes": outcomes, "states": states, "native": processor.native is not None}


def main() -> None:
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr, never into the channel
    sys.stdout = sys.stderr
    import streams
    from streams.engine_select import in_use

    send(
        channel,
        {
            "compiled": in_use(),
            "native": streams.ENGINE.native is not None,
            "describe": streams.ENGINE.describe(),
        },
    )
    plans: dict[tuple[str, int | None], Any] = {}
    while (request := receive(sys.stdin.buffer)) is not None:
        send(channel, run(request, plans))


if __name__ == "__main__":
    main()
