"""A real HTTP server on loopback that tests (and bench/actions.py) control: each path
answers with a scripted list of behaviours, and every request is recorded as it arrived.
Not a mock of the client: the dispatcher's aiohttp session talks to it over TCP."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Behaviour = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    at: float
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes


def status(code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Behaviour:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(status=code, body=body, headers=headers)

    return answer


def delayed(seconds: float, then: Behaviour | None = None) -> Behaviour:
    """Answers after `seconds` (a hang, if longer than the client waits)."""

    async def answer(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return await (then or status(200))(request)

    return answer


def endless(code: int = 500, chunk: bytes = b"x" * 65536, pause: float = 0.0) -> Behaviour:
    """A body that never ends (huge, or slow when `pause` > 0)."""

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=code)
        await response.prepare(request)
        try:
            while True:
                await response.write(chunk)
                await asyncio.sleep(pause)
        except (ConnectionResetError, asyncio.CancelledError, RuntimeError):
            pass
        return response

    return answer


@dataclass
class Server:
    scripts: dict[str, list[Behaviour]] = field(default_factory=lambda: defaultdict(list))
    default: Behaviour = field(default_factory=lambda: status(200, b'{"ok":true}'))
    seen: list[Seen] = field(default_factory=list)
    runner: web.AppRunner | None = None
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, path: str, *behaviours: Behaviour) -> None:
        self.scripts[path].extend(behaviours)

    def at(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(
            Seen(
                time.monotonic(),
                request.method,
                request.path,
                list(request.query.items()),
                dict(request.headers),
                body,
            )
        )
        queue = self.scripts.get(request.path)
        behaviour = queue.pop(0) if queue else self.default
        return await behaviour(request)

    async def start(self) -> Server:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self.runner, sock).start()
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def serving(*args: Any) -> Server:
    return await Server().start()
