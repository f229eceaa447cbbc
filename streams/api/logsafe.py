"""Text from a request, made safe to log: one log record stays one line.

A client controls the path, the client id it sends and anything quoted from its body; a
newline, carriage return or escape sequence in them would let it forge access-log lines or
drive a terminal. `printable` escapes every control character (C0, DEL, C1, and the Unicode
line and paragraph separators) as `\\xNN` / `\\uNNNN`, and `EscapingFilter` applies it to
every record of a handler, so the app's own logs and the libraries' are covered too. A
traceback keeps its lines, each indented: only a record's first line starts at the margin.
"""

from __future__ import annotations

import logging
import re
from typing import Final

_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str, limit: int | None = None) -> str:
    """`text` with control characters escaped, cut to `limit` characters first."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return _CONTROL.sub(_escape, text)


_FORMATTER: Final = logging.Formatter()


class EscapingFilter(logging.Filter):
    """Escapes control characters in the formatted message of every record it sees; a
    traceback keeps its line breaks but every line of it is indented (and its other control
    characters escaped), so no text of an exception message can start a line of its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        escaped = printable(message)
        if escaped != message:
            record.msg, record.args = escaped, None
        if record.exc_info and not record.exc_text:
            text = _FORMATTER.formatException(record.exc_info)
            record.exc_text = "\n".join("    " + printable(line) for line in text.splitlines())
        return True
