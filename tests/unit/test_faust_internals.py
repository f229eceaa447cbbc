"""The Faust internals the worker's consumption path relies on (streams/runtime/fast_drain.py,
streams/runtime/faust_app.py), and what `FastDrainConsumer.wait_first` does with them.

These fail loudly when an upgrade of faust-streaming or mode-streaming changes what the fast
drain steps by hand: read fast_drain.py's module doc before changing the pins.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import re
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as aiokafka_driver
from mode.services import WaitResults

from streams.runtime.fast_drain import FastDrainConsumer, FastDrainTransport
from streams.runtime.faust_app import create_app


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", importlib.metadata.version(name))[:3])


def test_the_installed_faust_is_the_supported_one() -> None:
    assert (0, 15, 2) <= _version("faust-streaming") < (0, 16), (
        "faust-streaming outside the range fast_drain.py was checked against"
    )
    assert (0, 7) <= _version("mode-streaming") < (0, 8)
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"faust-streaming>=0.15.2,<0.16"' in pyproject


def test_the_drain_loop_is_the_only_two_coroutine_caller_of_wait_first() -> None:
    """FastDrainConsumer takes any `wait_first(coro, coro)` without timeout for the drain
    loop's delivery: that must stay the only such call, with the callback first."""
    source = inspect.getsource(faust_consumer)
    assert source.count("wait_first(") == 1
    call = " ".join(source[source.index("wait_first(") :].split())
    assert call.startswith("wait_first( callback(message), self.suspend_flow.wait() )"), call[:80]
    drain = inspect.getsource(faust_consumer.Consumer._drain_messages)
    assert "await self.wait_first(" in drain
    assert "wait_first" not in inspect.getsource(aiokafka_driver.Consumer)


def test_mode_wait_results_and_the_transport_hook() -> None:
    assert WaitResults._fields == ("done", "results", "stopped")
    assert aiokafka_driver.Transport.Consumer is aiokafka_driver.Consumer
    assert FastDrainTransport.Consumer is FastDrainConsumer
    assert "spinner" in inspect.getsource(faust.Worker.__init__), "run_worker turns it off"


def test_create_app_swaps_in_the_fast_drain_transport(tmp_path: Path) -> None:
    app = create_app("t", "localhost:1", datadir=tmp_path, fast_drain=True)
    assert isinstance(app.transport, FastDrainTransport)
    assert app.transport.Consumer is FastDrainConsumer
    plain = create_app("t", "localhost:1", datadir=tmp_path)
    assert type(plain.transport) is aiokafka_driver.Transport


async def _wait_first(*coros: Any, timeout: Any = None) -> Any:
    """`FastDrainConsumer.wait_first` on a consumer that is never started: the inline path
    touches nothing of it."""
    consumer = FastDrainConsumer.__new__(FastDrainConsumer)
    return await FastDrainConsumer.wait_first(consumer, *coros, timeout=timeout)


def test_a_callback_that_does_not_suspend_is_delivered_inline() -> None:
    closed: list[str] = []

    async def callback() -> str:
        return "delivered"

    async def suspend_flow() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            closed.append("never awaited")

    async def main() -> WaitResults:
        other = suspend_flow()
        result = await _wait_first(callback(), other)
        assert other.cr_frame is None, "the flow coroutine is closed"
        return result

    result = asyncio.run(main())
    assert isinstance(result, WaitResults)
    assert result.results == ["delivered"]
    assert result.stopped is False


def test_a_callback_that_raises_at_once_raises() -> None:
    async def callback() -> None:
        raise ValueError("boom")

    async def suspend_flow() -> None:
        await asyncio.sleep(3600)

    async def main() -> None:
        await _wait_first(callback(), suspend_flow())

    with pytest.raises(ValueError, match="boom"):
        asyncio.run(main())


def test_a_callback_that_suspends_finishes_under_modes_wait_first() -> None:
    """A full stream queue: the delivery waits, then completes; Faust's `wait_first`
    (mode's) runs it with the flow coroutine, as without the fast drain."""
    steps: list[str] = []

    async def callback(gate: asyncio.Event) -> str:
        steps.append("started")
        await gate.wait()
        steps.append("resumed")
        return "delivered late"

    async def suspend_flow(never: asyncio.Event) -> None:
        await never.wait()

    async def main() -> Any:
        gate, never = asyncio.Event(), asyncio.Event()
        consumer = FastDrainConsumer.__new__(FastDrainConsumer)
        seen: list[int] = []

        async def parent(self: Any, *coros: Any, timeout: Any = None) -> Any:
            seen.append(len(coros))
            done, _ = await asyncio.wait(
                [asyncio.ensure_future(c) for c in coros], return_when=asyncio.FIRST_COMPLETED
            )
            return WaitResults(list(done), [d.result() for d in done], False)

        asyncio.get_running_loop().call_later(0.05, gate.set)
        original = faust_consumer.Consumer.wait_first
        faust_consumer.Consumer.wait_first = parent  # type: ignore[method-assign]
        try:
            result = await FastDrainConsumer.wait_first(
                consumer, callback(gate), suspend_flow(never)
            )
        finally:
            faust_consumer.Consumer.wait_first = original  # type: ignore[method-assign]
        assert seen == [2]
        return result

    result = asyncio.run(main())
    assert steps == ["started", "resumed"]
    assert result.results == ["delivered late"]
