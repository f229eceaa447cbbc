"""The paging token codec (streams.api.paging_token): round trip, URL safety, and every
altered or foreign token refused with 1001 (701 when blank). Also the parameter parsers
(history_params) and the activity number (activity_shapes); the page logic is in
test_history_merge.py."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.api.activity_shapes import activity_number
from streams.api.history_errors import CANNOT_BE_BLANK, INVALID_DATA, INVALID_VALUE, HistoryError
from streams.api.history_params import parse_batch_size, parse_ids, parse_names, parse_since
from streams.api.paging_token import decode_token, encode_token

offsets_st = st.lists(st.integers(min_value=0, max_value=2**63 - 1), max_size=64)
topics_st = st.text(min_size=1, max_size=60)
URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")


@given(topics_st, offsets_st)
def test_round_trip(topic: str, offsets: list[int]) -> None:
    token = encode_token(topic, offsets)
    assert URL_SAFE.fullmatch(token)
    assert decode_token(token, topic) == offsets


@given(topics_st, offsets_st, st.binary(min_size=1, max_size=64))
def test_round_trip_with_a_key(topic: str, offsets: list[int], key: bytes) -> None:
    token = encode_token(topic, offsets, key)
    assert decode_token(token, topic, key) == offsets


def _code(token: object, topic: str = "activities", key: bytes | None = None) -> int:
    with pytest.raises(HistoryError) as caught:
        if key is None:
            decode_token(token, topic)
        else:
            decode_token(token, topic, key)
    assert "nextPageToken" in caught.value.message
    return caught.value.code


ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@given(offsets_st, st.data())
def test_any_changed_character_is_refused(offsets: list[int], data: st.DataObject) -> None:
    token = encode_token("activities", offsets)
    index = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from(ALPHABET).filter(lambda c: c != token[index]))
    tampered = token[:index] + replacement + token[index + 1 :]
    assert _code(tampered) == INVALID_VALUE


@given(offsets_st, st.data())
def test_truncated_or_extended_tokens_are_refused(offsets: list[int], data: st.DataObject) -> None:
    token = encode_token("activities", offsets)
    cut = data.draw(st.integers(1, len(token) - 1))
    assert _code(token[:cut]) == INVALID_VALUE
    extra = data.draw(st.text(ALPHABET, min_size=1, max_size=8))
    assert _code(token + extra) == INVALID_VALUE


@given(offsets_st, offsets_st)
def test_forged_offsets_need_the_key(offsets: list[int], forged: list[int]) -> None:
    key = b"a secret only the API knows"
    token = encode_token("activities", offsets, key)
    assert _code(encode_token("activities", forged), key=key) == INVALID_VALUE
    assert decode_token(token, "activities", key) == offsets


def test_a_token_of_another_topic_is_refused() -> None:
    token = encode_token("activities", [1, 2, 3])
    assert _code(token, topic="activities-eu") == INVALID_VALUE


def test_other_versions_are_refused() -> None:
    raw = bytearray(base64.urlsafe_b64decode(encode_token("activities", [5]) + "=="))
    raw[0] = 2
    token = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    assert _code(token) == INVALID_VALUE


@pytest.mark.parametrize(
    "garbage",
    ["x", "abc", "not a token", "????", "AAAA", "A" * 40, "%2F%2F", "YWJj=", "é", "a.b"],
)
def test_garbage_is_refused(garbage: str) -> None:
    assert _code(garbage) == INVALID_VALUE


@pytest.mark.parametrize("blank", [None, ""])
def test_blank_is_701(blank: str | None) -> None:
    assert _code(blank) == CANNOT_BE_BLANK


def test_not_a_string_is_refused() -> None:
    assert _code(12345) == INVALID_VALUE


def test_encode_refuses_impossible_offsets() -> None:
    with pytest.raises(ValueError):
        encode_token("activities", [-1])
    with pytest.raises(ValueError):
        encode_token("activities", [2**63])


def test_tokens_are_short() -> None:
    """Four partitions of a busy topic: a token well under a URL's comfortable length."""
    assert len(encode_token("activities", [10**9] * 4)) < 60


# --- parameters ----------------------------------------------------------------------------


def _raises(code: int, call: object, *args: object) -> None:
    assert callable(call)
    with pytest.raises(HistoryError) as caught:
        call(*args)
    assert caught.value.code == code, caught.value.message


def test_parse_since() -> None:
    assert parse_since("2026-09-26T06:56:35+07:00") == datetime(
        2026, 9, 26, 6, 56, 35, tzinfo=timezone(timedelta(hours=7))
    )
    assert parse_since("2026-09-26T06:56:35Z") == datetime(2026, 9, 26, 6, 56, 35, tzinfo=UTC)
    assert parse_since("2026-09-26") == datetime(2026, 9, 26, tzinfo=UTC)
    assert parse_since(" 2026-09-26T00:00:00 ") == datetime(2026, 9, 26, tzinfo=UTC)
    _raises(CANNOT_BE_BLANK, parse_since, None)
    _raises(CANNOT_BE_BLANK, parse_since, " ")
    _raises(INVALID_VALUE, parse_since, "yesterday")


def test_parse_ids() -> None:
    assert parse_ids("1, 13,100001", "activityTypeIds") == [1, 13, 100001]
    assert parse_ids(None, "leadIds") is None
    assert parse_ids("", "leadIds") is None
    for bad in ("1,x", "0", "-3", "1,,2", "1.5", "99999999999999999999"):
        _raises(INVALID_VALUE, parse_ids, bad, "leadIds")


def test_parse_names_and_batch_size() -> None:
    assert parse_names("firstName, country,,") == ["firstName", "country"]
    assert parse_names(None) == []
    assert parse_batch_size(None) == 300
    assert parse_batch_size("25") == 25
    _raises(INVALID_DATA, parse_batch_size, "0")
    _raises(INVALID_DATA, parse_batch_size, "301")
    _raises(INVALID_VALUE, parse_batch_size, "ten")
    _raises(INVALID_VALUE, parse_batch_size, "+-5")
    _raises(INVALID_VALUE, parse_batch_size, "1e2")
    _raises(INVALID_DATA, parse_batch_size, "-5")


# --- the activity number -------------------------------------------------------------------


@given(st.text(min_size=1, max_size=80))
def test_activity_number_is_exact_in_json(identity: str) -> None:
    number = activity_number(identity)
    assert 0 < number < 2**53
    assert activity_number(identity) == number


def test_numeric_identities_are_their_own_number() -> None:
    assert activity_number("102988") == 102988
    assert activity_number("0102988") != 102988  # not canonical: hashed
    assert activity_number(str(2**52)) >= 2**52  # too large: hashed into the upper half
    assert activity_number("h-3f2a") >= 2**52
