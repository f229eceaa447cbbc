"""Dead letters always fit (issue 7, item 1): the spec's shape, the original copied up to a
bound and described beyond it, and the minimal letter for when even that is refused."""

from __future__ import annotations

import base64
import hashlib

import orjson
import pytest

from streams.engine.activity import (
    DEAD_LETTER_RECORD_MAX_BYTES,
    Rejection,
    dead_letter,
    minimal_dead_letter,
)

REJECTION = Rejection("malformed", "not UTF-8: invalid start byte at byte 0")
SPEC_MEMBERS = {"error", "record", "topic", "partition", "offset"}


def test_a_small_record_travels_whole_in_the_spec_shape() -> None:
    raw = b'{"leadId": 1, "colour": "red"}'
    letter = dead_letter(raw, REJECTION, "activities", 3, 1842)
    assert letter == {
        "error": {"code": "malformed", "message": REJECTION.message},
        "record": raw.decode(),
        "topic": "activities",
        "partition": 3,
        "offset": 1842,
    }


def test_undecodable_bytes_also_travel_as_base64() -> None:
    raw = b"caf\xe9"
    letter = dead_letter(raw, REJECTION, "activities", 0, 1)
    assert base64.b64decode(letter["recordBase64"]) == raw
    assert "recordTruncated" not in letter


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff" * 500_000,
        b"x" * 1_048_400,
        ("\u00e9" * 400_000).encode(),
        b"\x00" * 300_000,
        '{"a": "' + "\U0001f600" * 100_000 + '"}',
    ],
    ids=["ff-500k", "ascii-1MB", "2-byte-chars", "nul-bytes", "str-emoji"],
)
def test_a_large_record_is_cut_and_described_and_the_letter_fits(raw: bytes | str) -> None:
    data = raw.encode() if isinstance(raw, str) else raw
    letter = dead_letter(raw, REJECTION, "activities", 2, 7)
    assert letter.keys() >= SPEC_MEMBERS
    assert letter["recordTruncated"] is True
    assert letter["recordLength"] == len(data)
    assert letter["recordSha256"] == hashlib.sha256(data).hexdigest()
    assert len(orjson.dumps(letter)) < 500_000, "fits Kafka's default 1 MB message"
    copied = (
        base64.b64decode(letter["recordBase64"])
        if "recordBase64" in letter
        else letter["record"].encode()
    )
    assert data.startswith(copied)
    assert DEAD_LETTER_RECORD_MAX_BYTES - 3 <= len(copied) <= DEAD_LETTER_RECORD_MAX_BYTES


def test_a_cut_inside_a_character_keeps_the_text_without_base64() -> None:
    raw = ("\u00e9" * 40).encode()  # 80 bytes; cut at 51 splits a character
    letter = dead_letter(raw, REJECTION, "a", 0, 0, record_max_bytes=51)
    assert letter["record"] == "\u00e9" * 25
    assert "recordBase64" not in letter


def test_the_message_is_bounded_too() -> None:
    letter = dead_letter(b"{}", Rejection("unknown_attribute", "m" * 100_000), "a", 0, 0)
    assert len(letter["error"]["message"]) == 1_000


def test_the_minimal_letter_names_the_position_the_error_and_why() -> None:
    raw = b"\xff" * 500_000
    letter = minimal_dead_letter(
        raw, Rejection("malformed", "x" * 5_000), "activities", 5, 99, "E" * 10_000
    )
    assert letter.keys() >= SPEC_MEMBERS
    assert (letter["topic"], letter["partition"], letter["offset"]) == ("activities", 5, 99)
    assert letter["record"] == ""
    assert letter["recordLength"] == 500_000
    assert letter["recordSha256"] == hashlib.sha256(raw).hexdigest()
    assert letter["deadLetterError"] == "E" * 500
    assert len(orjson.dumps(letter)) < 1_200


def _sent_through_faust(error: Exception) -> Exception:
    """What Faust raises for an error at `send`: ProducerSendError from the Kafka error."""
    from faust.exceptions import ProducerSendError

    try:
        try:
            raise error
        except Exception as exc:
            raise ProducerSendError(f"Error while sending: {exc!r}") from exc
    except ProducerSendError as wrapped:
        return wrapped


def test_only_errors_of_the_message_get_a_minimal_letter() -> None:
    """The broker being away fails the batch (redelivered, the full letter sent later);
    a letter refused for itself is replaced by the minimal one."""
    from aiokafka.errors import (
        KafkaConnectionError,
        KafkaTimeoutError,
        MessageSizeTooLargeError,
        RequestTimedOutError,
    )

    from streams.runtime.worker import _transient

    refused = [MessageSizeTooLargeError(), _sent_through_faust(MessageSizeTooLargeError())]
    away = [
        KafkaTimeoutError(),
        RequestTimedOutError(),
        _sent_through_faust(KafkaConnectionError()),
        ConnectionResetError(),
    ]
    assert [_transient(e) for e in refused] == [False, False]
    assert [_transient(e) for e in away] == [True] * 4
