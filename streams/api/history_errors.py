"""The errors of the activity reads, with Marketo's codes (from the one table in
`envelope`), as integers: framework-free, so the reading modules need no HTTP layer; the
routes turn a `HistoryError` into Marketo's envelope with its `code` and `message`.

Error codes
===========

- 701 (cannot be blank): a required scalar parameter is missing or blank: `nextPageToken`,
  `sinceDatetime`.
- 1001 (invalid value): a value of the wrong type, or unreadable: a tampered, garbage,
  truncated or other-topic `nextPageToken`, or one that knows more partitions than the topic
  has; an unparsable `sinceDatetime`; an id that is not a positive integer; a `batchSize`
  that is not an integer.
- 1003 (invalid data): a value out of its allowed range: `activityTypeIds` with no id, more
  than 10, or an id that names no approved type; `leadIds` with more than 30 ids; `fields`
  missing or empty (Get Lead Changes); `batchSize` outside 1..300.
- 608 (API temporarily unavailable, `HistoryUnavailable`): Kafka did not answer; the request
  may be retried.
"""

from __future__ import annotations

from typing import Final

from streams.api import envelope

CANNOT_BE_BLANK: Final = int(envelope.CANNOT_BE_BLANK)
INVALID_VALUE: Final = int(envelope.INVALID_VALUE)
INVALID_DATA: Final = int(envelope.INVALID_DATA)
TEMPORARILY_UNAVAILABLE: Final = int(envelope.TEMPORARILY_UNAVAILABLE)


class HistoryError(Exception):
    """A request that cannot be answered; `code` is Marketo's error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class HistoryUnavailable(HistoryError):
    """Kafka did not answer in time (608): nothing was read, the request may be retried."""

    def __init__(self, message: str) -> None:
        super().__init__(TEMPORARILY_UNAVAILABLE, message)
