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

The rest is for reading: times in the station's time zone (``local_time``), durations
(``duration``), sizes (``size``) and tables aligned by display width (``table``: a CJK character
is two cells, measured with ``wcwidth``). Imports only ``daemon.i18n`` of evidock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from wcwidth import wcswidth, wcwidth

from daemon.i18n import _

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


# --- times, durations, sizes and tables for people (issue 12) -----------------------------------
# JSON keeps the data (ISO-8601 with an offset, exact bytes); these are only for human output.

def width(text: str) -> int:
    """Display cells of ``text`` on a terminal: a CJK character takes 2, a combining mark 0."""
    n = wcswidth(text)
    if n >= 0:
        return n
    return sum(max(wcwidth(c), 0) for c in text)  # a non-printable slipped in: count what shows


def fit(text: str, cells: int) -> str:
    """``text`` cut to at most ``cells`` display cells, ending in ``…`` when it was cut."""
    if width(text) <= cells:
        return text
    out, used = [], 0
    for c in text:
        w = max(wcwidth(c), 0)
        if used + w > cells - 1:
            break
        out.append(c)
        used += w
    return "".join(out) + "…"


def pad(text: str, cells: int, align: str = "<") -> str:
    """``text`` padded with spaces to ``cells`` display cells (``>`` aligns right)."""
    gap = " " * max(cells - width(text), 0)
    return gap + text if align == ">" else text + gap


def local_time(value: str | datetime | None, tz: str, seconds: bool = False, missing: str = "-") -> str:
    """An instant as the station's wall-clock time, ``2026-11-27 08:30`` (``:05`` with ``seconds``).

    ``value`` is a datetime or an ISO-8601 text as the catalog stores it (a text without an
    offset is UTC). Anything that does not read as a time is shown escaped, as it is.
    """
    if value is None or value == "":
        return missing
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return shown(str(value))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def duration(seconds: float | None, missing: str = "-") -> str:
    """A span as its two largest units: ``2 天 3 小时`` / ``2 d 3 h``, ``5 分 12 秒`` / ``5 min 12 s``."""
    if seconds is None:
        return missing
    sign, s = ("-" if seconds < 0 else ""), int(round(abs(seconds)))
    d, rest = divmod(s, 86400)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    units = [(d, _("{n} d")), (h, _("{n} h")), (m, _("{n} min")), (sec, _("{n} s"))]
    while len(units) > 1 and units[0][0] == 0:
        units.pop(0)
    shown_units = [fmt.format(n=n) for n, fmt in units[:2] if n or fmt is units[0][1]]
    return sign + " ".join(shown_units)


def seconds(value: float | None, missing: str = "-", sign: bool = False) -> str:
    """A short span or offset in seconds, one decimal: ``-75.0 s`` / ``-75.0 秒`` (never ``-0.0``)."""
    if value is None:
        return missing
    v = round(float(value), 1)
    v = 0.0 if v == 0 else v  # no negative zero
    return _("{n} s").format(n=f"{v:+.1f}" if sign else f"{v:.1f}")


_SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def size(n: int | None, missing: str = "-") -> str:
    """Bytes for people: ``512 B``, ``1.2 GiB``, ``512 MiB`` (three significant digits at most)."""
    if n is None:
        return missing
    value, unit = float(n), 0
    while abs(value) >= 1024 and unit < len(_SIZE_UNITS) - 1:
        value /= 1024
        unit += 1
    if unit == 0:
        return f"{int(value)} B"
    text = f"{value:.1f}" if abs(value) < 100 else f"{value:.0f}"
    return f"{text.removesuffix('.0')} {_SIZE_UNITS[unit]}"


@dataclass(frozen=True)
class Column:
    """One column of a table: its header (already translated), how wide it may grow, its alignment."""

    header: str
    max_width: int = 40
    align: str = "<"


def table(columns: list[Column], rows: list[list[Any]], empty: str) -> str:
    """A table for a terminal: a header row, then each row; ``empty`` when there are no rows.

    Cells go through ``shown`` (untrusted text cannot break a row or reach the terminal),
    are cut to their column's ``max_width`` with ``…`` and aligned by display width (a CJK
    character is 2 cells wide), never by ``len()``. Columns are separated by two spaces;
    trailing spaces are dropped.
    """
    if not rows:
        return empty
    cells = [[fit(shown(v) if not isinstance(v, (int, float)) or isinstance(v, bool) else str(v), c.max_width)
              for v, c in zip(row, columns, strict=True)] for row in rows]
    widths = [max([width(c.header)] + [width(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = []
    for row in [[c.header for c in columns]] + cells:
        line = "  ".join(pad(v, w, c.align) for v, w, c in zip(row, widths, columns, strict=True))
        lines.append(line.rstrip())
    return "\n".join(lines)
