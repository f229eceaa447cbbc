"""Serving the app with uvicorn, with a deadline on request headers.

uvicorn bounds an idle keep-alive connection but not a request whose line and headers
arrive slowly (slowloris: hundreds of connections sending a header byte every few seconds
hold sockets and file descriptors for ever). `HeaderTimeoutProtocol` closes a connection
that has not sent a complete request line and headers `header_timeout` seconds after it
opened, or after the first bytes of its next request arrived, answering 408 first (an idle
kept-alive connection is left to uvicorn's keep-alive timeout, which closes it quietly).
A body that arrives slowly is the gate's concern (`STREAMS_API_BODY_TIMEOUT`).

It extends uvicorn's h11 protocol through four of its members (`connection_made`,
`connection_lost`, `data_received`, `handle_events`) and three attributes (`cycle`,
`cycle.response_complete`, `transport`): uvicorn is pinned below 1 in pyproject.toml, and
`tests/unit/test_api_server.py` fails loudly if those members change.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

TIMEOUT_RESPONSE: Final = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 40\r\n"
    b"connection: close\r\n\r\nrequest headers not received in time\r\n\r\n"
)


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request headers are late."""

    header_timeout: float = 10.0
    """Set on a subclass by `protocol_with_header_timeout`."""

    _header_timer: asyncio.TimerHandle | None = None
    _waiting_cycle: Any = None

    def _arm(self) -> None:
        self._disarm()
        self._waiting_cycle = self.cycle
        self._header_timer = asyncio.get_running_loop().call_later(
            self.header_timeout, self._headers_late
        )

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.cycle is not self._waiting_cycle:
            return
        log.info("closing a connection: no complete request headers in %gs", self.header_timeout)
        self.transport.write(TIMEOUT_RESPONSE)
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self._header_timer is not None and self.cycle is not self._waiting_cycle:
            self._disarm()  # a request's headers arrived: the route's time is its own

    def data_received(self, data: bytes) -> None:
        # The first bytes of a next request on a kept-alive connection start its deadline
        # (an idle kept-alive connection is uvicorn's keep-alive timeout's, closed quietly).
        waiting = self.cycle is None or self.cycle.response_complete
        if self._header_timer is None and waiting and not self.transport.is_closing():
            self._arm()
        super().data_received(data)


def protocol_with_header_timeout(timeout: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class to give uvicorn (`http=`), with this deadline."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout": timeout})
