"""The activity reads when Kafka does not answer: a 608 whose message names no server
(the operator's log has the address), and no consumer kept from the failed attempt."""

from __future__ import annotations

import logging

import pytest

from streams.api.consumer_pool import UNAVAILABLE_MESSAGE, ConsumerPool
from streams.api.history_errors import TEMPORARILY_UNAVAILABLE, HistoryUnavailable

pytestmark = pytest.mark.integration


def test_an_unreachable_broker_is_a_608_naming_no_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = ConsumerPool(
        "127.0.0.1:9", "activities", size=2, request_timeout=1.0, metadata_max_age=60.0
    )
    with (
        caplog.at_level(logging.WARNING, logger="streams.api.consumer_pool"),
        pytest.raises(HistoryUnavailable) as raised,
        pool.lease(),
    ):
        pass
    assert raised.value.code == TEMPORARILY_UNAVAILABLE
    assert raised.value.message == UNAVAILABLE_MESSAGE
    assert "127.0.0.1" not in str(raised.value)
    assert any("Kafka at 127.0.0.1:9" in r.getMessage() for r in caplog.records)
