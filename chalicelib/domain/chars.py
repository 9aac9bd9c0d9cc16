"""The characters SQS accepts in a message body or a string value, and how it counts them.

Shared by messages (bodies, attribute values) and queues (attribute values, policies).
"""

from __future__ import annotations

import re

# Anything outside #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF.
_INVALID_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Of ASCII, only the C0 controls other than tab, LF and CR are refused.
_ASCII_ALLOWED = bytes([0x09, 0x0A, 0x0D, *range(0x20, 0x80)])
ALLOWED_CHARS = "#x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]"


def utf8_len(text: str) -> int:
    """Bytes SQS counts for ``text`` (UTF-8)."""
    return len(text.encode("utf-8", "surrogatepass"))


def first_invalid_char(text: str) -> str | None:
    """The first character SQS refuses in a body or string value, or None.

    ASCII text (``str.isascii`` is a flag CPython keeps) is checked by deleting every
    allowed byte, which leaves the refused ones in order: ~7x faster than the regex on
    a 64 KiB body.
    """
    if text.isascii():
        refused = text.encode("ascii").translate(None, _ASCII_ALLOWED)
        return chr(refused[0]) if refused else None
    found = _INVALID_CHAR.search(text)
    return found.group() if found else None
