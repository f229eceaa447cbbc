"""Paging tokens of the activity reads: where to read next in each partition, encoded.

A token is where to read next in each partition of the topic, and nothing else: the server
keeps no state, so a token survives a restart of the API, and any API process can continue
a client's paging. Layout (then base64url without padding, so it is URL-safe as is)::

    version      1 byte   (1)
    topic tag    4 bytes  BLAKE2b-32 of the topic name: a token of another topic is refused
    count        varint   number of partitions the token knows (P)
    offsets      P varints: the next offset to read in partitions 0 .. P-1
    check        8 bytes  BLAKE2b-64 keyed MAC of everything before it

Only the canonical encoding of a token is accepted, so changing any character of a token is
detected (`1001 invalid nextPageToken`). The MAC key defaults to a constant, which makes the
check an integrity check, not an authentication: a client that forges a token gains nothing
that `sinceDatetime` does not give. `ActivityHistory(token_key=...)` makes forging
impossible where that matters.

Only the offsets are here: what a reader does with a partition the token does not know, or
an offset out of the retained range, is `history`'s (its docstring, "Tokens").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from typing import Final

from streams.api.history_errors import CANNOT_BE_BLANK, INVALID_VALUE, HistoryError
from streams.engine.datatypes import INT64_MAX

TOKEN_VERSION: Final = 1
DEFAULT_TOKEN_KEY: Final = b"streams.api.history nextPageToken v1"
_TAG_BYTES: Final = 4
_MAC_BYTES: Final = 8
_MAX_TOKEN_CHARS: Final = 200_000
"""Tokens of a topic of 10,000 partitions with large offsets stay well below this."""
_MAX_TOKEN_PARTITIONS: Final = 100_000
_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9_-]+")


def _uvarint(value: int, out: bytearray) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _read_uvarint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise ValueError("truncated or overlong number")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _topic_tag(topic: str) -> bytes:
    return hashlib.blake2b(topic.encode(), digest_size=_TAG_BYTES).digest()


def _mac(body: bytes, key: bytes) -> bytes:
    if len(key) > hashlib.blake2b.MAX_KEY_SIZE:
        key = hashlib.blake2b(key).digest()
    return hashlib.blake2b(body, key=key, digest_size=_MAC_BYTES).digest()


def _pack(topic: str, offsets: Sequence[int], key: bytes) -> bytes:
    body = bytearray((TOKEN_VERSION,))
    body += _topic_tag(topic)
    _uvarint(len(offsets), body)
    for offset in offsets:
        _uvarint(offset, body)
    return bytes(body) + _mac(bytes(body), key)


def encode_token(topic: str, offsets: Sequence[int], key: bytes = DEFAULT_TOKEN_KEY) -> str:
    """The token that reads partition `p` of `topic` from `offsets[p]`."""
    if any(not 0 <= offset <= INT64_MAX for offset in offsets):
        raise ValueError("offsets are 0 .. 2**63-1")
    if len(offsets) > _MAX_TOKEN_PARTITIONS:
        raise ValueError(f"at most {_MAX_TOKEN_PARTITIONS} partitions")
    return base64.urlsafe_b64encode(_pack(topic, offsets, key)).decode("ascii").rstrip("=")


def _invalid_token(token: str, reason: str) -> HistoryError:
    shown = token if len(token) <= 60 else token[:57] + "..."
    return HistoryError(INVALID_VALUE, f"invalid nextPageToken {shown!r}: {reason}")


def decode_token(token: object, topic: str, key: bytes = DEFAULT_TOKEN_KEY) -> list[int]:
    """The offsets of a token made by `encode_token` for `topic`; HistoryError 701 when it is
    blank, 1001 when it is anything but an unaltered token of this topic."""
    if token is None or token == "":
        raise HistoryError(CANNOT_BE_BLANK, "nextPageToken cannot be blank")
    if not isinstance(token, str):
        raise HistoryError(INVALID_VALUE, "invalid nextPageToken: not a string")
    if len(token) > _MAX_TOKEN_CHARS or not _TOKEN_RE.fullmatch(token) or len(token) % 4 == 1:
        raise _invalid_token(token, "not a paging token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise _invalid_token(token, "not a paging token") from None
    if len(raw) < 1 + _TAG_BYTES + 1 + _MAC_BYTES:
        raise _invalid_token(token, "too short")
    if raw[0] != TOKEN_VERSION:
        raise _invalid_token(token, f"unknown token version {raw[0]}")
    body_end = len(raw) - _MAC_BYTES
    if _mac(raw[:body_end], key) != raw[body_end:]:
        raise _invalid_token(token, "altered or truncated (check failed)")
    if raw[1 : 1 + _TAG_BYTES] != _topic_tag(topic):
        raise _invalid_token(token, f"made for another topic than {topic!r}")
    try:
        count, pos = _read_uvarint(raw, 1 + _TAG_BYTES, body_end)
        if count > _MAX_TOKEN_PARTITIONS:
            raise ValueError("too many partitions")
        offsets = []
        for _ in range(count):
            offset, pos = _read_uvarint(raw, pos, body_end)
            if offset > INT64_MAX:
                raise ValueError("offset out of range")
            offsets.append(offset)
        if pos != body_end:
            raise ValueError("trailing bytes")
    except ValueError as exc:
        raise _invalid_token(token, str(exc)) from None
    if _pack(topic, offsets, key) != raw or encode_token(topic, offsets, key) != token:
        raise _invalid_token(token, "not in canonical form")
    return offsets
