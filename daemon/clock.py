"""Time helpers shared by every layer: UTC now as ISO 8601, parsing the times people and case
systems write (in the station's time zone), and durations for people.
"""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from daemon.errors import InvalidValue
from daemon.i18n import N_


def utcnow() -> str:
    """The current UTC time as ISO 8601 with microseconds and an explicit offset."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


# -- times ------------------------------------------------------------------------------------

# What case systems, spreadsheets and people write, tried in order; True: a date without a time.
_TIME_FORMATS: tuple[tuple[str, bool], ...] = (
    ("%Y-%m-%d %H:%M:%S", False),
    ("%Y-%m-%d %H:%M", False),
    ("%Y-%m-%d", True),
    ("%Y/%m/%d %H:%M:%S", False),
    ("%Y/%m/%d %H:%M", False),
    ("%Y/%m/%d", True),
    ("%Y.%m.%d %H:%M:%S", False),
    ("%Y.%m.%d %H:%M", False),
    ("%Y.%m.%d", True),
    ("%Y年%m月%d日 %H:%M:%S", False),
    ("%Y年%m月%d日 %H:%M", False),
    ("%Y年%m月%d日%H时%M分", False),
    ("%Y年%m月%d日", True),
)


# The times evidock accepts from people and files (case times, --as-of, …): one range, said in
# every message. Outside it a time is a placeholder or a typo (``0001-01-01`` is what case
# systems write for "no date"), and near datetime's own ends (years 1 and 9999) a time-zone
# shift or a deadline added to it overflows — the OverflowError tracebacks this range prevents.
TIME_MIN = datetime(1970, 1, 1, tzinfo=timezone.utc)
TIME_MAX = datetime(9000, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
TIME_RANGE_TEXT = "1970-01-01 00:00:00 UTC … 9000-12-31 23:59:59 UTC"


def parse_time(text: str, tz: str, *, end_of_day: bool = False) -> datetime:
    """Read a time as people and case systems write it; UTC-aware result.

    Accepts ISO 8601 (with or without an offset), ``2026-11-27 08:30``, ``2026/11/27 8:30``,
    ``2026年11月27日`` and the like. Without an offset the time is in ``tz``. A bare date is
    the start of that day, or its last second with ``end_of_day`` (a case closed "on the 30th"
    covers the whole 30th). A time outside ``TIME_MIN`` … ``TIME_MAX`` is refused. Raises
    ValueError with a message for people.
    """
    s = " ".join(text.strip().split())
    if not s:
        raise InvalidValue(N_("empty time"))
    parsed: datetime | None = None
    date_only = False
    for fmt, is_date in _TIME_FORMATS:
        try:
            parsed = datetime.strptime(s, fmt)
        except ValueError:
            continue
        date_only = is_date
        break
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(s)
        except ValueError:
            raise InvalidValue(N_("{text!r} is not a time evidock can read (write e.g. 2026-11-27 08:30 "
                                  "or 2026-11-27T08:30:00+08:00)"), text=text.strip()) from None
    if date_only and end_of_day:
        parsed = parsed.replace(hour=23, minute=59, second=59)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(tz))
    try:
        utc = parsed.astimezone(timezone.utc)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00: before year 1 in UTC
        utc = None
    if utc is None or not TIME_MIN <= utc <= TIME_MAX:
        raise InvalidValue(N_("{text!r} is outside the times evidock accepts ({range}); "
                              "write a real date inside that range"), text=text.strip(), range=TIME_RANGE_TEXT)
    return utc


def iso(dt: datetime) -> str:
    """The stored form of a time: UTC, seconds, explicit offset (compares correctly as text)."""
    return dt.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def from_iso(s: str) -> datetime:
    dt = datetime.fromisoformat(s)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def format_duration(seconds: float) -> str:
    """``3 d 4 h 5 min`` — how late something is, for people."""
    s = int(max(seconds, 0))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m = s // 60
    parts = [f"{d} d" if d else "", f"{h} h" if h else "", f"{m} min" if m or not (d or h) else ""]
    return " ".join(p for p in parts if p)
