"""The pieces of uvicorn's h11 protocol that `streams.api.server` extends: if a uvicorn
release renames or drops them, this fails loudly (the header timeout would silently stop
working otherwise)."""

from __future__ import annotations

import inspect

from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle

from streams.api.server import HeaderTimeoutProtocol, protocol_with_header_timeout


def test_the_extended_members_exist_with_their_signatures() -> None:
    expected = {
        "connection_made": ["self", "transport"],
        "connection_lost": ["self", "exc"],
        "data_received": ["self", "data"],
        "handle_events": ["self"],
    }
    for name, parameters in expected.items():
        member = getattr(H11Protocol, name)
        assert list(inspect.signature(member).parameters) == parameters, name


def test_the_attributes_used_are_set_by_uvicorn() -> None:
    source = inspect.getsource(H11Protocol)
    for attribute in ("self.cycle = ", "self.transport = "):
        assert attribute in source, attribute
    cycle_source = inspect.getsource(RequestResponseCycle)
    assert "self.response_complete = " in cycle_source


def test_the_timeout_is_per_class() -> None:
    fast, slow = protocol_with_header_timeout(1.0), protocol_with_header_timeout(30.0)
    assert issubclass(fast, HeaderTimeoutProtocol) and issubclass(fast, H11Protocol)
    assert (fast.header_timeout, slow.header_timeout) == (1.0, 30.0)
