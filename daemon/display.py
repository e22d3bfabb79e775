"""Showing untrusted text to people: every string from a recorder or a file, escaped, one line.

File names, officer badges and device serials come from recorders; case numbers and parties come
from a CSV or a command line. Printed raw, a name holding a newline splits a row of a listing and
one holding ``ESC[2J`` clears the screen of whoever lists the footage (invariant 5: nothing from a
recorder is trusted). Human output therefore goes through ``shown``; JSON output keeps the exact
data (JSON escapes it by itself).

The escape is unambiguous, so two different raw names never look the same:

- a backslash is always doubled (``\\\\``), so every other backslash starts an escape;
- ``\\xNN`` is used only for a byte that is not UTF-8 (a raw byte of a recorder's file name);
- a character that is not printable (controls, format characters such as bidi overrides, line
  separators) becomes ``\\n``, ``\\r``, ``\\t`` or ``\\uNNNN`` / ``\\UNNNNNNNN`` — never ``\\xNN``,
  so the control character U+0085 (``\\u0085``) and the undecodable byte 0x85 (``\\x85``) differ.
"""

from __future__ import annotations

_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _char(c: str) -> str:
    named = _NAMED.get(c)
    if named is not None:
        return named
    o = ord(c)
    if 0xDC80 <= o <= 0xDCFF:  # surrogateescape: one byte of the raw name that is not UTF-8
        return f"\\x{o - 0xDC00:02x}"
    if c.isprintable() and not 0xD800 <= o <= 0xDFFF:
        return c
    return f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}"


def shown(value: str | bytes | None, missing: str = "-") -> str:
    """``value`` as one printable line, escaped unambiguously (see the module docstring).

    Bytes (a raw file name) are read as UTF-8, undecodable bytes shown as ``\\xNN``; ``None``
    is shown as ``missing``.
    """
    if value is None:
        return missing
    if isinstance(value, (bytes, bytearray, memoryview)):
        text = bytes(value).decode("utf-8", "surrogateescape")
    else:
        text = str(value)
    return "".join(c if c.isprintable() and c != "\\" and not 0xD800 <= ord(c) <= 0xDFFF else _char(c)
                   for c in text)


def cell(value: str | bytes | None, width: int = 0, missing: str = "-") -> str:
    """``shown(value)`` left-aligned in a column of ``width`` (a table cell)."""
    return f"{shown(value, missing):{width}}" if width else shown(value, missing)
