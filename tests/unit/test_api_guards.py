"""Pure pieces of the API's defences: the nesting bound, log escaping, the throttle of
failed authentications (with a fake clock), hiding server paths, the secret minimum."""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest

from streams.api.auth import MIN_SECRET_LENGTH, ClientConfigError, parse_clients
from streams.api.auth_throttle import AuthThrottle
from streams.api.envelope import server_paths_hidden
from streams.api.inputs import MAX_DEPTH, too_deep
from streams.api.logsafe import EscapingFilter, printable


def _nested(levels: int) -> Any:
    value: Any = 1
    for n in range(levels):
        value = [value] if n % 2 else {"k": value}
    return value


def test_too_deep_counts_levels() -> None:
    assert not too_deep(1) and not too_deep("x")
    assert not too_deep(_nested(MAX_DEPTH))
    assert too_deep(_nested(MAX_DEPTH + 1))
    assert too_deep([1, 2, {"a": [_nested(MAX_DEPTH)]}])
    assert not too_deep(_nested(5), 5) and too_deep(_nested(6), 5)
    assert not too_deep(_nested(100_000), 10**6)  # iterative: no RecursionError


def test_printable_escapes_every_control_character() -> None:
    assert printable("/nope\nFORGED\r\x1b[31m\x00\x7f\x85\u2028é") == (
        "/nope\\x0aFORGED\\x0d\\x1b[31m\\x00\\x7f\\x85\\u2028é"
    )
    assert printable("abcdef", 3) == "abc…"


def test_the_filter_escapes_formatted_messages() -> None:
    record = logging.LogRecord("x", logging.INFO, "f", 1, "path %s", ("/a\nFORGED",), None)
    assert EscapingFilter().filter(record)
    assert record.getMessage() == "path /a\\x0aFORGED"


def test_a_traceback_cannot_start_a_line() -> None:
    try:
        raise ValueError("bad value\nFORGED LINE\x1b[2J")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("x", logging.ERROR, "f", 1, "failed", (), exc_info)
    assert EscapingFilter().filter(record)
    text = logging.Formatter("%(levelname)s %(message)s").format(record)
    first, *rest = text.splitlines()
    assert first == "ERROR failed"
    assert rest and all(line.startswith("    ") for line in rest), text
    assert "    FORGED LINE\\x1b[2J" in rest


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_per_client_id() -> None:
    clock = Clock()
    throttle = AuthThrottle(3, 100, 60.0, clock)
    for _ in range(3):
        assert throttle.check("crm", "1.2.3.4") is None
        throttle.failed("crm", "1.2.3.4")
        clock.now += 1
    first = throttle.check("crm", "5.6.7.8")
    assert first is not None and first.newly and first.what == "client id 'crm'"
    assert first.retry_after == 57  # at 1003, the oldest failure leaves at 1060
    again = throttle.check("crm", "1.2.3.4")
    assert again is not None and not again.newly  # logged once
    assert throttle.check("other", "1.2.3.4") is None
    clock.now = 1060.5
    assert throttle.check("crm", "1.2.3.4") is None  # one failure left the window
    throttle.failed("crm", "1.2.3.4")
    renewed = throttle.check("crm", "1.2.3.4")
    assert renewed is not None and not renewed.newly  # same episode: 3 in the window
    clock.now = 1200
    assert throttle.check("crm", "1.2.3.4") is None
    for _ in range(3):
        throttle.failed("crm", "1.2.3.4")
    later = throttle.check("crm", "1.2.3.4")
    assert later is not None and later.newly  # a new episode is logged again


def test_throttle_per_address_and_bounded_memory() -> None:
    clock = Clock()
    throttle = AuthThrottle(100, 2, 60.0, clock, max_keys=50)
    throttle.failed("a", "9.9.9.9")
    throttle.failed("b", "9.9.9.9")
    blocked = throttle.check("c", "9.9.9.9")
    assert blocked is not None and blocked.what == "address 9.9.9.9"
    for n in range(1000):
        throttle.failed(f"id-{n}", f"10.0.{n // 256}.{n % 256}")
    assert len(throttle._clients._failures) <= 50
    assert len(throttle._addresses._failures) <= 50
    assert throttle.check("x" * 10_000, "1.1.1.1") is None


def test_server_paths_are_hidden() -> None:
    message = (
        "/srv/app/rules/activity-types/x.yaml: name: bad; used by "
        "/srv/app/rules/campaigns/a.yaml; [Errno 36] File name too long: '/tmp/q/r/.x.tmp'"
    )
    assert server_paths_hidden(message) == (
        "activity-types/x.yaml: name: bad; used by campaigns/a.yaml; "
        "[Errno 36] File name too long: '.x.tmp'"
    )
    assert server_paths_hidden("see http://example.test/a/b") == "see http://example.test/a/b"


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ClientConfigError, match=f"at least {MIN_SECRET_LENGTH}"):
        parse_clients("a:b", "STREAMS_API_CLIENTS")
    assert parse_clients(f"a:{'s' * MIN_SECRET_LENGTH}", "X") == {"a": "s" * MIN_SECRET_LENGTH}
    with pytest.raises(ClientConfigError) as refused:
        parse_clients("ok:0123456789abcdef,weak:short-one", "X")
    assert "short-one" not in str(refused.value)  # never a secret in a message
