"""Cases and filing: every recording labelled with its case within 2 days (regulation art. 11).

Art. 11 wants each recording stored, within 2 days, labelled with the case number, the party's
name and the handling officer. This module holds:

- the **cases** (case number, party, handling officers by badge, unit, the window from opened to
  closed, status, sensitivity per art. 10, notes), opened and changed by people or imported from
  the bureau's case-system CSV export (UTF-8 with or without BOM, or GBK/GB18030);
- **filing**: the links between footage and cases (``footage_cases``; footage may belong to
  several cases), made by the station (``how = 'auto'``) or by a person (``how = 'manual'``),
  every change audited in the transaction that makes it;
- the **2-day report**: footage still unfiled more than ``filing.deadline_days`` after it was
  recorded, grouped by officer.

The auto-filing rule. Footage *matches* a case when its officer is one of the case's handlers
and its corrected recording time ``t`` (``footage.recorded_at_corrected``: the recorder's time
minus the clock drift measured at the dock) lies in the case's window,
``opened_at <= t <= closed_at`` — both edges inclusive; a case not yet closed has no end. A case
closed before its footage is docked still receives the footage recorded inside its window (the
recording belongs to the case; the dock was just late). Exactly one match: the footage is filed
to it. Several: it is filed to none and marked ambiguous (``footage_ambiguous``) until a person
files it. None: it stays unfiled and shows up in the 2-day report.

A recorder whose clock was more than a year from the station's at the dock (``drivers.base.
clock_trusted``) gives no corrected time (NULL): its footage matches no case and waits for a
person, and its 2-day deadline runs from the ingest instead (``_T_DUE``).

Auto links are derived from the cases, so they follow the cases: filing runs for the new row at
ingest (inside ``offload.record_file``'s transaction) and again, for the footage of the officers
concerned, whenever a case is opened, changed, closed or imported. A backdated case therefore
picks up earlier footage, and an auto link that the rule no longer gives (the window shrank, a
second case now overlaps) is removed — audited like every other change. What people did is never
undone by the station: footage with a manual link is left alone, and a person's ``unfile`` leaves
a block (``filing_blocks``) so that auto-filing never files that footage to that case again.

``footage.case_no`` (kept from the first schema for compatibility) is derived: the case number
when the footage is filed to exactly one case, else NULL.

Times are stored as UTC ISO 8601 strings with seconds precision (``2026-11-27T08:30:00+00:00``),
the form the offload writes, so that they compare correctly as strings in SQL. Case times given
without an offset are read in ``filing.local_timezone``.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import os
import re
import stat
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from . import audit
from .catalog import Catalog, Migration, utcnow
from .display import shown
from .errors import EXIT_OK, EXIT_WARNING, EvidockError, NotFound

log = logging.getLogger(__name__)


class CaseError(EvidockError):
    """A case as given (command line or file) is not valid, or cannot be changed as asked."""


class CaseImportError(CaseError):
    """A case CSV cannot be imported at all (unreadable, unknown encoding, missing columns)."""


class FilingError(EvidockError):
    """A filing change cannot be made as asked."""


# -- schema -----------------------------------------------------------------------------------


def _m001_cases(db: sqlite_utils.Database) -> None:
    # Plain SQL rather than sqlite-utils' create(): the CHECK constraints keep status, window and
    # the filing vocabulary consistent whoever writes the rows.
    db.execute("""
        CREATE TABLE cases (
            case_no TEXT PRIMARY KEY,
            party TEXT NOT NULL,
            unit TEXT,
            opened_at TEXT NOT NULL,
            closed_at TEXT,
            status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
            sensitivity TEXT NOT NULL DEFAULT 'normal' CHECK (sensitivity IN ('normal', 'secret')),
            notes TEXT,
            source TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            CHECK (closed_at IS NULL OR closed_at >= opened_at),
            CHECK ((status = 'closed') = (closed_at IS NOT NULL))
        )""")
    db.execute("""
        CREATE TABLE case_handlers (
            case_no TEXT NOT NULL REFERENCES cases(case_no),
            badge TEXT NOT NULL,
            PRIMARY KEY (case_no, badge)
        )""")
    db.execute("CREATE INDEX case_handlers_badge ON case_handlers(badge)")
    db.execute("""
        CREATE TABLE footage_cases (
            footage_id INTEGER NOT NULL REFERENCES footage(id),
            case_no TEXT NOT NULL REFERENCES cases(case_no),
            filed_at TEXT NOT NULL,
            filed_by TEXT NOT NULL,
            how TEXT NOT NULL CHECK (how IN ('auto', 'manual')),
            reason TEXT NOT NULL,
            PRIMARY KEY (footage_id, case_no)
        )""")
    db.execute("CREATE INDEX footage_cases_case ON footage_cases(case_no)")
    db.execute("""
        CREATE TABLE filing_blocks (
            footage_id INTEGER NOT NULL REFERENCES footage(id),
            case_no TEXT NOT NULL REFERENCES cases(case_no),
            blocked_at TEXT NOT NULL,
            blocked_by TEXT NOT NULL,
            reason TEXT NOT NULL,
            PRIMARY KEY (footage_id, case_no)
        )""")
    db.execute("""
        CREATE TABLE footage_ambiguous (
            footage_id INTEGER PRIMARY KEY REFERENCES footage(id),
            candidates TEXT NOT NULL,
            marked_at TEXT NOT NULL
        )""")


MIGRATIONS: list[Migration] = [("cases-001", _m001_cases)]

# Tables of this module that hang off a footage row (retention removes them with the row).
FOOTAGE_TABLES = ("footage_cases", "filing_blocks", "footage_ambiguous")


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
        raise ValueError("empty time")
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
            raise ValueError(f"{text.strip()!r} is not a time evidock can read (write e.g. 2026-11-27 08:30 "
                             "or 2026-11-27T08:30:00+08:00)") from None
    if date_only and end_of_day:
        parsed = parsed.replace(hour=23, minute=59, second=59)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(tz))
    try:
        utc = parsed.astimezone(timezone.utc)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00: before year 1 in UTC
        utc = None
    if utc is None or not TIME_MIN <= utc <= TIME_MAX:
        raise ValueError(f"{text.strip()!r} is outside the times evidock accepts ({TIME_RANGE_TEXT}); "
                         "write a real date inside that range")
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


# -- case fields ------------------------------------------------------------------------------

FIELDS = ("case_no", "party", "handlers", "opened_at", "closed_at", "unit", "sensitivity", "notes")

# What the bureau's exports write under 密级 (and evidock's own words); anything else is refused.
SENSITIVITY_WORDS = {
    "": "normal", "normal": "normal", "普通": "normal", "一般": "normal", "公开": "normal",
    "内部": "normal", "非密": "normal", "无": "normal",
    "secret": "secret", "秘密": "secret", "机密": "secret", "绝密": "secret", "涉密": "secret",
}

_BADGE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,31}$")
# Badges in one cell: ';' as the export writes, and the separators people type in Chinese text.
_BADGE_SEP = re.compile(r"[;；,，、\s]+")


def _clean_text(v: Any, what: str, max_len: int, required: bool) -> str | None:
    s = "" if v is None else unicodedata.normalize("NFC", str(v)).strip()
    if not s:
        if required:
            raise ValueError(f"{what} is empty")
        return None
    if len(s) > max_len:
        raise ValueError(f"{what} is longer than {max_len} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in s):
        raise ValueError(f"{what} {s!r} contains control characters")
    return s


def _p_case_no(v: Any, tz: str) -> str | None:
    return _clean_text(v, "case number", 100, True)


def _p_party(v: Any, tz: str) -> str | None:
    return _clean_text(v, "party", 200, True)


def _p_handlers(v: Any, tz: str) -> tuple[str, ...]:
    items = [str(x) for x in v] if isinstance(v, (list, tuple)) else _BADGE_SEP.split(str(v or ""))
    badges: list[str] = []
    for b in (x.strip() for x in items):
        if not b:
            continue
        if not _BADGE.match(b):
            raise ValueError(f"handler badge {b!r} is not a badge number (letters, digits, '-', '_'; at most 32)")
        if b not in badges:
            badges.append(b)
    if not badges:
        raise ValueError("no handling officer (badge numbers separated by ';')")
    return tuple(sorted(badges))


def _p_opened(v: Any, tz: str) -> str | None:
    if v is None or not str(v).strip():
        raise ValueError("opened-at time is empty")
    try:
        return iso(parse_time(str(v), tz))
    except ValueError as e:
        raise ValueError(f"opened-at time (立案时间): {e}") from None


def _p_closed(v: Any, tz: str) -> str | None:
    if v is None or not str(v).strip():
        return None
    try:
        return iso(parse_time(str(v), tz, end_of_day=True))
    except ValueError as e:
        raise ValueError(f"closed-at time (结案时间): {e}") from None


def _p_unit(v: Any, tz: str) -> str | None:
    return _clean_text(v, "unit", 200, False)


def _p_sensitivity(v: Any, tz: str) -> str:
    word = (str(v) if v is not None else "").strip()
    try:
        return SENSITIVITY_WORDS[word.lower()]
    except KeyError:
        raise ValueError(f"sensitivity {word!r} is not one of: normal, secret (or 普通, 秘密, 机密, 绝密)") from None


def _p_notes(v: Any, tz: str) -> str | None:
    return _clean_text(v, "notes", 2000, False)


# One parser per field: value as given -> stored value, or ValueError saying what is wrong.
FIELD_PARSERS: dict[str, Callable[[Any, str], Any]] = {
    "case_no": _p_case_no,
    "party": _p_party,
    "handlers": _p_handlers,
    "opened_at": _p_opened,
    "closed_at": _p_closed,
    "unit": _p_unit,
    "sensitivity": _p_sensitivity,
    "notes": _p_notes,
}


def parse_fields(given: dict[str, Any], tz: str) -> tuple[dict[str, Any], list[str]]:
    """Parse the fields present in ``given``; every problem is collected, none raised."""
    out: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in given.items():
        try:
            out[name] = FIELD_PARSERS[name](value, tz)
        except ValueError as e:
            problems.append(str(e))
    return out, problems


def _window_problem(case: dict[str, Any]) -> str | None:
    if case.get("closed_at") and case.get("opened_at") and case["closed_at"] < case["opened_at"]:
        return f"closed ({case['closed_at']}) before it was opened ({case['opened_at']})"
    return None


# -- reading cases ----------------------------------------------------------------------------


def _case(conn: Any, case_no: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT case_no, party, unit, opened_at, closed_at, status, sensitivity, notes, source, created_at, updated_at"
        " FROM cases WHERE case_no = ?", (case_no,)
    ).fetchone()
    if row is None:
        return None
    keys = ("case_no", "party", "unit", "opened_at", "closed_at", "status", "sensitivity", "notes", "source",
            "created_at", "updated_at")
    case = dict(zip(keys, row))
    case["handlers"] = tuple(r[0] for r in conn.execute(
        "SELECT badge FROM case_handlers WHERE case_no = ? ORDER BY badge", (case_no,)))
    return case


def need_case(conn: Any, case_no: str) -> dict[str, Any]:
    case = _case(conn, case_no)
    if case is None:
        raise NotFound(f"no case {case_no!r}; see `evidock case list` (open it with `evidock case open` or import it)")
    return case


def get_case(catalog: Catalog, case_no: str) -> dict[str, Any]:
    """One case with its handlers, its footage (and how each was filed) and footage it might own."""
    conn = catalog.conn
    case = need_case(conn, case_no)
    names = dict(conn.execute("SELECT badge, name FROM officers WHERE name IS NOT NULL"))
    case["handlers"] = [{"badge": b, "name": names.get(b)} for b in case["handlers"]]
    case["footage"] = [
        {"id": r[0], "sha256": r[1], "officer": r[2], "recorded_at": r[3], "size": r[4],
         "filed_at": r[5], "filed_by": r[6], "how": r[7], "reason": r[8]}
        for r in conn.execute(
            "SELECT f.id, f.sha256, f.officer_badge, f.recorded_at_corrected, f.size,"
            " fc.filed_at, fc.filed_by, fc.how, fc.reason FROM footage_cases fc JOIN footage f ON f.id = fc.footage_id"
            " WHERE fc.case_no = ? ORDER BY 4, f.id", (case_no,))
    ]
    case["ambiguous_footage"] = [
        {"id": fid, "candidates": json.loads(cands)}
        for fid, cands in conn.execute(
            "SELECT a.footage_id, a.candidates FROM footage_ambiguous a, json_each(a.candidates) j"
            " WHERE j.value = ? ORDER BY a.footage_id", (case_no,))
    ]
    return case


def list_cases(catalog: Catalog, status: str | None = None) -> list[dict[str, Any]]:
    """Every case (or those with ``status``), with its handlers and how much footage is filed to it."""
    rows = []
    for r in catalog.db.query(
        "SELECT c.case_no, c.party, c.unit, c.opened_at, c.closed_at, c.status, c.sensitivity,"
        " (SELECT group_concat(badge, ';') FROM (SELECT badge FROM case_handlers h WHERE h.case_no = c.case_no ORDER BY badge)) AS handlers,"
        " (SELECT COUNT(*) FROM footage_cases fc WHERE fc.case_no = c.case_no) AS footage"
        " FROM cases c WHERE (:status IS NULL OR c.status = :status) ORDER BY c.opened_at, c.case_no",
        {"status": status},
    ):
        r["handlers"] = r["handlers"].split(";") if r["handlers"] else []
        rows.append(r)
    return rows


# -- filing changes ---------------------------------------------------------------------------


@dataclass
class FilingChanges:
    """What one operation changed in the filing, for the report (each change is also audited)."""

    filed: list[dict[str, Any]] = field(default_factory=list)
    unfiled: list[dict[str, Any]] = field(default_factory=list)
    ambiguous: list[dict[str, Any]] = field(default_factory=list)
    unchanged: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"filed": self.filed, "unfiled": self.unfiled, "ambiguous": self.ambiguous, "unchanged": self.unchanged}

    def lines(self) -> list[str]:
        out = [f"filed footage {c['footage']} to case {shown(c['case'])} ({c['how']})" for c in self.filed]
        out += [f"unfiled footage {c['footage']} from case {shown(c['case'])} ({c['how']})" for c in self.unfiled]
        out += [f"footage {c['footage']} matches several cases ({', '.join(map(shown, c['candidates']))}): filed to none, "
                "file it by hand with `evidock footage file`" for c in self.ambiguous if c["candidates"]]
        return out


def _sel(ids: Iterable[int] | None, officers: Iterable[str] | None) -> tuple[str, str]:
    """SQL condition on footage ``f`` picking the given ids or officers (json_each: no variable limit)."""
    if ids is not None:
        return "f.id IN (SELECT value FROM json_each(?))", json.dumps(sorted(set(ids)))
    assert officers is not None
    return "f.officer_badge IN (SELECT value FROM json_each(?))", json.dumps(sorted(set(officers)))


# The recording time filing goes by: the corrected one only. It is NULL when the recorder's
# clock was not trusted at that dock (more than a year from the station's, see
# ``offload.corrected_time``): such footage matches no case and waits for a person.
_T = "f.recorded_at_corrected"
# The time the 2-day deadline runs from: the recording time, else (not trusted) the ingest —
# footage whose recording time is unknown still becomes overdue, counted from when it arrived.
_T_DUE = "COALESCE(f.recorded_at_corrected, f.ingested_at)"


def _refile(catalog: Catalog, *, ids: Iterable[int] | None = None, officers: Iterable[str] | None = None,
            actor: str, trigger: str, changes: FilingChanges | None = None) -> FilingChanges:
    """Re-derive the auto links of the chosen footage from the cases (see the module docstring).

    Runs inside the caller's transaction; audits every change with ``trigger`` (what caused it).
    """
    conn = catalog.conn
    if not conn.in_transaction:
        raise RuntimeError("auto-filing must run inside the transaction of the change that caused it")
    changes = changes if changes is not None else FilingChanges()
    where, arg = _sel(ids, officers)
    footage = {r[0]: (r[1], r[2], r[3]) for r in conn.execute(
        f"SELECT f.id, f.sha256, f.officer_badge, {_T} FROM footage f WHERE {where}", (arg,))}
    if not footage:
        return changes
    matches: dict[int, list[str]] = defaultdict(list)
    for fid, case_no in conn.execute(
        f"SELECT f.id, c.case_no FROM footage f JOIN case_handlers h ON h.badge = f.officer_badge"
        f" JOIN cases c ON c.case_no = h.case_no WHERE {where}"
        f" AND c.opened_at <= {_T} AND (c.closed_at IS NULL OR {_T} <= c.closed_at)"
        " AND NOT EXISTS (SELECT 1 FROM filing_blocks b WHERE b.footage_id = f.id AND b.case_no = c.case_no)"
        " ORDER BY c.case_no", (arg,)
    ):
        matches[fid].append(case_no)
    auto: dict[int, set[str]] = defaultdict(set)
    manual: set[int] = set()
    for fid, case_no, how in conn.execute(
        f"SELECT fc.footage_id, fc.case_no, fc.how FROM footage_cases fc JOIN footage f ON f.id = fc.footage_id WHERE {where}",
        (arg,),
    ):
        if how == "manual":
            manual.add(fid)
        else:
            auto[fid].add(case_no)
    marked = {fid: json.loads(c) for fid, c in conn.execute(
        f"SELECT a.footage_id, a.candidates FROM footage_ambiguous a JOIN footage f ON f.id = a.footage_id WHERE {where}",
        (arg,))}
    now = utcnow()
    touched: set[int] = set()
    for fid, (sha, officer, t) in footage.items():
        cands = matches.get(fid, [])
        want = set() if fid in manual or len(cands) != 1 else {cands[0]}
        for case_no in sorted(auto[fid] - want):
            reason = (f"auto: case {case_no} is no longer the only case of officer {officer} whose window holds "
                      f"the recording ({t}); now matching: {', '.join(cands) or 'none'}")
            conn.execute("DELETE FROM footage_cases WHERE footage_id = ? AND case_no = ?", (fid, case_no))
            _audit_filing(catalog, "footage.unfile", fid, sha, case_no, "auto", reason, actor, trigger)
            changes.unfiled.append({"footage": fid, "case": case_no, "how": "auto", "reason": reason})
            touched.add(fid)
        for case_no in sorted(want - auto[fid]):
            reason = f"auto: officer {officer} handles case {case_no} and the recording ({t}) is inside its window"
            conn.execute(
                "INSERT INTO footage_cases (footage_id, case_no, filed_at, filed_by, how, reason) VALUES (?,?,?,?,?,?)",
                (fid, case_no, now, actor, "auto", reason),
            )
            _audit_filing(catalog, "footage.file", fid, sha, case_no, "auto", reason, actor, trigger)
            changes.filed.append({"footage": fid, "case": case_no, "how": "auto", "reason": reason})
            touched.add(fid)
        ambiguous = cands if fid not in manual and len(cands) > 1 else []
        if ambiguous != marked.get(fid, []):
            if ambiguous:
                conn.execute("INSERT OR REPLACE INTO footage_ambiguous (footage_id, candidates, marked_at) VALUES (?,?,?)",
                             (fid, json.dumps(ambiguous, ensure_ascii=False), now))
            else:
                conn.execute("DELETE FROM footage_ambiguous WHERE footage_id = ?", (fid,))
            audit.append(catalog, "footage.ambiguous", f"footage:{fid}",
                         {"footage": fid, "sha256": sha, "candidates": ambiguous, "trigger": trigger}, actor)
            changes.ambiguous.append({"footage": fid, "candidates": ambiguous})
    _sync_case_no(conn, touched)
    return changes


def _audit_filing(catalog: Catalog, event: str, fid: int, sha: str, case_no: str, how: str, reason: str,
                  actor: str, trigger: str | None = None) -> None:
    details: dict[str, Any] = {"footage": fid, "sha256": sha, "case": case_no, "how": how, "reason": reason}
    if trigger:
        details["trigger"] = trigger
    audit.append(catalog, event, f"footage:{fid}", details, actor)


def _sync_case_no(conn: Any, ids: Iterable[int]) -> None:
    """Keep the compatibility column ``footage.case_no``: the case when there is exactly one."""
    ids = sorted(set(ids))
    if ids:
        conn.execute(
            "UPDATE footage SET case_no = (SELECT CASE WHEN COUNT(*) = 1 THEN MAX(case_no) END"
            " FROM footage_cases fc WHERE fc.footage_id = footage.id) WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(ids),),
        )


def file_new_footage(catalog: Catalog, sha256: str) -> None:
    """Auto-file a footage row just inserted by the offload, inside the offload's transaction.

    Filing must never cost evidence: if it fails, its part is rolled back to a savepoint, the
    footage stays unfiled (it shows in ``footage overdue`` and is filed again at the next case
    change or ``evidock case refile``) and the file itself is still stored.
    """
    conn = catalog.conn
    row = conn.execute("SELECT id FROM footage WHERE sha256 = ?", (sha256,)).fetchone()
    if row is None:
        return
    conn.execute("SAVEPOINT autofile")
    try:
        _refile(catalog, ids=[row[0]], actor=audit.current_actor(), trigger="ingest")
    except Exception as e:  # noqa: BLE001 — see the docstring: the store must not depend on filing
        conn.execute("ROLLBACK TO autofile")
        log.error("footage %s (%s) was stored but could not be auto-filed (%s); it stays unfiled — "
                  "run `evidock case refile` or file it with `evidock footage file`", row[0], sha256, e)
    finally:
        conn.execute("RELEASE autofile")


def refile_all(catalog: Catalog, actor: str | None = None) -> FilingChanges:
    """Run auto-filing over every footage row (e.g. after a restore); audited like any change."""
    actor = actor or audit.current_actor()
    with catalog.transaction():
        officers = [r[0] for r in catalog.conn.execute("SELECT DISTINCT officer_badge FROM footage WHERE officer_badge IS NOT NULL")]
        return _refile(catalog, officers=officers, actor=actor, trigger="refile")


# -- opening, changing, closing cases ---------------------------------------------------------


@dataclass
class CaseResult:
    """One case after a change: what changed in it and in the filing."""

    case_no: str
    action: str  # opened | changed | closed | unchanged
    changed: dict[str, list[Any]]  # field -> [old, new]
    filing: FilingChanges

    def to_json(self) -> dict[str, Any]:
        return {"case": self.case_no, "action": self.action, "changed": self.changed, "filing": self.filing.to_json()}


def _store_case(catalog: Catalog, new: dict[str, Any], old: dict[str, Any] | None, source: str, actor: str) -> dict[str, list[Any]]:
    """Insert or update one case row and its handlers, audited; returns the fields that changed."""
    conn = catalog.conn
    now = utcnow()
    status = "closed" if new.get("closed_at") else "open"
    if old is None:
        conn.execute(
            "INSERT INTO cases (case_no, party, unit, opened_at, closed_at, status, sensitivity, notes, source,"
            " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (new["case_no"], new["party"], new.get("unit"), new["opened_at"], new.get("closed_at"), status,
             new.get("sensitivity") or "normal", new.get("notes"), source, now, now),
        )
        conn.executemany("INSERT INTO case_handlers (case_no, badge) VALUES (?, ?)",
                         [(new["case_no"], b) for b in new["handlers"]])
        snapshot = {k: (list(new[k]) if k == "handlers" else new.get(k)) for k in FIELDS}
        audit.append(catalog, "case.open", f"case:{new['case_no']}", {**snapshot, "status": status, "source": source}, actor)
        return {k: [None, v] for k, v in snapshot.items() if v is not None and k != "case_no"}
    changed = {}
    for k in FIELDS[1:]:
        if k in new and (new[k] or None) != (old.get(k) or None):
            changed[k] = [list(old[k]) if k == "handlers" else old.get(k), list(new[k]) if k == "handlers" else new[k]]
    if not changed:
        return {}
    merged = {**old, **{k: new[k] for k in changed}}
    status = "closed" if merged.get("closed_at") else "open"
    conn.execute(
        "UPDATE cases SET party=?, unit=?, opened_at=?, closed_at=?, status=?, sensitivity=?, notes=?, source=?,"
        " updated_at=? WHERE case_no=?",
        (merged["party"], merged.get("unit"), merged["opened_at"], merged.get("closed_at"), status,
         merged.get("sensitivity") or "normal", merged.get("notes"), source, now, old["case_no"]),
    )
    if "handlers" in changed:
        conn.execute("DELETE FROM case_handlers WHERE case_no = ?", (old["case_no"],))
        conn.executemany("INSERT INTO case_handlers (case_no, badge) VALUES (?, ?)",
                         [(old["case_no"], b) for b in merged["handlers"]])
    event = "case.close" if set(changed) == {"closed_at"} and merged.get("closed_at") else "case.change"
    audit.append(catalog, event, f"case:{old['case_no']}", {"changed": changed, "status": status, "source": source}, actor)
    return changed


def _invalid(case_no: str, problems: list[str]) -> CaseError:
    return CaseError(f"case {case_no!r}: " + "; ".join(problems) + "; nothing was changed")


def open_case(catalog: Catalog, given: dict[str, Any], tz: str, actor: str | None = None) -> CaseResult:
    """Open a new case from the fields given (raw text as typed), then file footage to it."""
    actor = actor or audit.current_actor()
    given = {"sensitivity": "normal", "opened_at": iso(now_utc()), **{k: v for k, v in given.items() if v is not None}}
    fields, problems = parse_fields(given, tz)
    case_no = fields.get("case_no") or str(given.get("case_no"))
    for k in ("party", "handlers"):
        if k not in given:
            problems.append(f"{k.replace('_', '-')} is required")
    if not problems and (p := _window_problem(fields)):
        problems.append(p)
    if problems:
        raise _invalid(case_no, problems)
    with catalog.transaction():
        old = _case(catalog.conn, case_no)
        if old is not None:
            raise CaseError(f"case {case_no!r} already exists (opened {old['opened_at']}, {old['status']}); change it with "
                            f"`evidock case edit {case_no} …`, close it with `evidock case close {case_no}`")
        changed = _store_case(catalog, fields, None, "cli", actor)
        filing = _refile(catalog, officers=fields["handlers"], actor=actor, trigger=f"case {case_no} opened")
    return CaseResult(case_no, "opened", changed, filing)


def edit_case(catalog: Catalog, case_no: str, given: dict[str, Any], tz: str, actor: str | None = None) -> CaseResult:
    """Change the fields given (None: leave as is; ``closed_at=''`` reopens), then re-file its officers' footage."""
    actor = actor or audit.current_actor()
    given = {k: v for k, v in given.items() if v is not None and k != "case_no"}
    fields, problems = parse_fields(given, tz)
    if problems:
        raise _invalid(case_no, problems)
    with catalog.transaction():
        old = need_case(catalog.conn, case_no)
        if p := _window_problem({**old, **fields}):
            raise _invalid(case_no, [p])
        changed = _store_case(catalog, fields, old, "cli", actor)
        filing = FilingChanges()
        if changed:
            officers = set(old["handlers"]) | set(fields.get("handlers", ()))
            filing = _refile(catalog, officers=officers, actor=actor, trigger=f"case {case_no} changed")
    action = ("closed" if set(changed) == {"closed_at"} and fields.get("closed_at") else "changed") if changed else "unchanged"
    return CaseResult(case_no, action, changed, filing)


def close_case(catalog: Catalog, case_no: str, closed_at: str | None, tz: str, actor: str | None = None) -> CaseResult:
    """Close a case at ``closed_at`` (default: now); footage recorded after it is no longer filed to it."""
    return edit_case(catalog, case_no, {"closed_at": closed_at or iso(now_utc())}, tz, actor)


# -- manual filing ----------------------------------------------------------------------------


def _need_reason(reason: str | None) -> str:
    r = (reason or "").strip()
    if not r:
        raise FilingError("a filing change needs a reason (--reason TEXT): it goes into the audit log")
    return r


def _need_footage(conn: Any, ids: Sequence[int]) -> dict[int, str]:
    have = dict(conn.execute("SELECT id, sha256 FROM footage WHERE id IN (SELECT value FROM json_each(?))",
                             (json.dumps(list(ids)),)))
    missing = [i for i in ids if i not in have]
    if missing:
        raise NotFound(f"no footage with id {', '.join(map(str, missing))}; nothing was changed — see `evidock footage list`")
    return have


def file_footage(catalog: Catalog, footage_ids: Sequence[int], case_no: str, reason: str,
                 actor: str | None = None) -> FilingChanges:
    """File footage to a case by hand (audited with ``reason``); all of it or, on any error, none."""
    actor = actor or audit.current_actor()
    reason = _need_reason(reason)
    changes = FilingChanges()
    with catalog.transaction() as conn:
        need_case(conn, case_no)
        shas = _need_footage(conn, footage_ids)
        now = utcnow()
        for fid in dict.fromkeys(footage_ids):
            link = conn.execute("SELECT how, filed_at FROM footage_cases WHERE footage_id = ? AND case_no = ?",
                                (fid, case_no)).fetchone()
            if link is not None and link[0] == "manual":
                changes.unchanged.append({"footage": fid, "case": case_no, "how": "manual", "filed_at": link[1]})
                continue
            if link is not None:
                # A person confirms what the station filed: the label dates from then, the decision is now theirs.
                conn.execute("UPDATE footage_cases SET how='manual', filed_by=?, reason=? WHERE footage_id=? AND case_no=?",
                             (actor, reason, fid, case_no))
            else:
                conn.execute(
                    "INSERT INTO footage_cases (footage_id, case_no, filed_at, filed_by, how, reason) VALUES (?,?,?,?,?,?)",
                    (fid, case_no, now, actor, "manual", reason),
                )
            conn.execute("DELETE FROM filing_blocks WHERE footage_id = ? AND case_no = ?", (fid, case_no))
            was = conn.execute("SELECT candidates FROM footage_ambiguous WHERE footage_id = ?", (fid,)).fetchone()
            conn.execute("DELETE FROM footage_ambiguous WHERE footage_id = ?", (fid,))
            _audit_filing(catalog, "footage.file", fid, shas[fid], case_no, "manual", reason, actor,
                          "confirmed an auto link" if link is not None else
                          (f"resolves ambiguity between {', '.join(json.loads(was[0]))}" if was else None))
            changes.filed.append({"footage": fid, "case": case_no, "how": "manual", "reason": reason})
        _sync_case_no(conn, footage_ids)
    return changes


def unfile_footage(catalog: Catalog, footage_id: int, case_no: str, reason: str, actor: str | None = None) -> FilingChanges:
    """Remove footage from a case by hand (audited); auto-filing will not put it back there."""
    actor = actor or audit.current_actor()
    reason = _need_reason(reason)
    changes = FilingChanges()
    with catalog.transaction() as conn:
        need_case(conn, case_no)
        sha = _need_footage(conn, [footage_id])[footage_id]
        link = conn.execute("SELECT how FROM footage_cases WHERE footage_id = ? AND case_no = ?",
                            (footage_id, case_no)).fetchone()
        if link is None:
            cases = [r[0] for r in conn.execute("SELECT case_no FROM footage_cases WHERE footage_id = ? ORDER BY case_no", (footage_id,))]
            raise FilingError(f"footage {footage_id} is not filed to case {case_no!r} (it is filed to: "
                              f"{', '.join(cases) or 'no case'}); nothing was changed")
        now = utcnow()
        conn.execute("DELETE FROM footage_cases WHERE footage_id = ? AND case_no = ?", (footage_id, case_no))
        conn.execute(
            "INSERT OR REPLACE INTO filing_blocks (footage_id, case_no, blocked_at, blocked_by, reason) VALUES (?,?,?,?,?)",
            (footage_id, case_no, now, actor, reason),
        )
        _audit_filing(catalog, "footage.unfile", footage_id, sha, case_no, "manual", reason, actor,
                      f"was filed {link[0]}")
        changes.unfiled.append({"footage": footage_id, "case": case_no, "how": "manual", "reason": reason})
        _sync_case_no(conn, [footage_id])
        _refile(catalog, ids=[footage_id], actor=actor, trigger=f"footage {footage_id} unfiled from {case_no}", changes=changes)
    return changes


# -- case CSV import --------------------------------------------------------------------------

# Header as the bureau's case system exports it (English or Chinese) -> field.
COLUMNS: dict[str, str] = {
    "case_no": "case_no", "案号": "case_no",
    "party": "party", "当事人": "party",
    "handlers": "handlers", "承办人警号": "handlers",
    "opened_at": "opened_at", "立案时间": "opened_at",
    "closed_at": "closed_at", "结案时间": "closed_at",
    "unit": "unit", "单位": "unit",
    "sensitivity": "sensitivity", "密级": "sensitivity",
}
REQUIRED_COLUMNS = ("case_no", "party", "handlers", "opened_at")

# Tried in order. GB18030 is a superset of GBK (what Chinese office software calls "ANSI").
ENCODINGS: tuple[tuple[str, str], ...] = (("utf-8", "UTF-8"), ("gb18030", "GB18030 (GBK)"))


def decode_csv(raw: bytes, path: str) -> tuple[str, str]:
    """The text of a case CSV and the name of the encoding it was in."""
    if raw.startswith(codecs.BOM_UTF8):
        try:
            return raw[len(codecs.BOM_UTF8):].decode("utf-8"), "UTF-8 with BOM"
        except UnicodeDecodeError as e:
            raise CaseImportError(f"{path}: starts with a UTF-8 BOM but byte {e.start} is not UTF-8; "
                                  "save it again as CSV UTF-8") from None
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise CaseImportError(f"{path}: is UTF-16 (\"Unicode text\"); save it as CSV (UTF-8 or GBK) and import again")
    for codec, name in ENCODINGS:
        try:
            return raw.decode(codec), name
        except UnicodeDecodeError:
            continue
    raise CaseImportError(f"{path}: is neither UTF-8 nor GBK/GB18030 text; save it as CSV UTF-8 and import again")


@dataclass
class RowProblem:
    line: int
    case_no: str | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "case_no": self.case_no, "reason": self.reason}


@dataclass
class ImportReport:
    path: str
    encoding: str
    rows: int = 0
    created: list[str] = field(default_factory=list)
    updated: list[dict[str, Any]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    filing: FilingChanges = field(default_factory=FilingChanges)

    @property
    def exit_code(self) -> int:
        return EXIT_WARNING if self.problems else EXIT_OK

    def summary(self) -> str:
        return (f"{self.path} ({self.encoding}): {self.rows} rows; {len(self.created)} cases created, "
                f"{len(self.updated)} updated, {len(self.unchanged)} unchanged, {len(self.problems)} rows not imported; "
                f"{len(self.filing.filed)} footage filed, {len(self.filing.unfiled)} unfiled, "
                f"{sum(1 for a in self.filing.ambiguous if a['candidates'])} ambiguous")

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.path, "encoding": self.encoding, "rows": self.rows, "created": self.created,
            "updated": self.updated, "unchanged": self.unchanged,
            "problems": [p.to_json() for p in self.problems], "ignored_columns": self.ignored_columns,
            "filing": self.filing.to_json(), "summary": self.summary(),
        }


def _header(cells: list[str], path: str) -> tuple[dict[int, str], list[str]]:
    """Map column positions to fields; unknown headers are ignored (the export has more columns)."""
    columns: dict[int, str] = {}
    ignored: list[str] = []
    seen: dict[str, str] = {}
    for i, cell in enumerate(cells):
        name = unicodedata.normalize("NFC", cell).strip().lstrip("\ufeff")
        fld = COLUMNS.get(name) or COLUMNS.get(name.lower())
        if fld is None:
            if name:
                ignored.append(name)
            continue
        if fld in seen:
            raise CaseImportError(f"{path}: columns {seen[fld]!r} and {name!r} both give {fld}; keep one and import again")
        seen[fld] = name
        columns[i] = fld
    missing = [f for f in REQUIRED_COLUMNS if f not in seen]
    if missing:
        want = ", ".join(f"{f} ({next(k for k, v in COLUMNS.items() if v == f and not k.isascii())})" for f in missing)
        raise CaseImportError(f"{path}: missing column(s) {want}; the header has: "
                              f"{', '.join(repr(c.strip()) for c in cells) or 'nothing'}. Nothing was imported")
    return columns, ignored


# A case export of a whole bureau is a few MiB; a bigger "CSV" is the wrong file, read into memory.
MAX_CSV_BYTES = 64 * 1024 * 1024


def read_csv_bytes(path: Path) -> bytes:
    """The bytes of a case CSV: a regular file of at most ``MAX_CSV_BYTES``, else CaseImportError.

    A FIFO, a device (``/dev/zero`` never ends) or a directory is refused before anything is read:
    the file is opened non-blocking (a FIFO without a writer would block the open itself) and its
    type checked on the open descriptor, so it cannot be swapped between the check and the read.
    """
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except IsADirectoryError:
        raise CaseImportError(f"{name}: is a directory, not a CSV file; give the exported .csv file") from None
    except OSError as e:
        raise CaseImportError(f"{name}: cannot read it ({e.strerror}); check the path") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode)
                    or stat.S_ISBLK(st.st_mode) else "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file")
            raise CaseImportError(f"{name}: is {kind}, not a regular file; only a saved CSV file is imported — "
                                  "save the export to a file and import that. Nothing was imported")
        if st.st_size > MAX_CSV_BYTES:
            raise CaseImportError(f"{name}: is {st.st_size} bytes, more than the {MAX_CSV_BYTES // (1024 * 1024)} MiB a "
                                  "case CSV may have; is it the right file? Split the export. Nothing was imported")
        os.set_blocking(fd, True)
        chunks, size = [], 0
        while size <= MAX_CSV_BYTES:  # a file that grows while it is read is still bounded
            chunk = os.read(fd, min(1 << 20, MAX_CSV_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_CSV_BYTES:
            raise CaseImportError(f"{name}: grew past {MAX_CSV_BYTES // (1024 * 1024)} MiB while it was read; "
                                  "import a finished export. Nothing was imported")
        return b"".join(chunks)
    except OSError as e:
        raise CaseImportError(f"{name}: cannot read it ({e.strerror}); check the path") from None
    finally:
        os.close(fd)


def read_case_csv(path: Path, tz: str) -> tuple[ImportReport, list[tuple[int, dict[str, Any]]]]:
    """Parse a case export: the good rows (line, fields) and a report of the bad ones. Writes nothing."""
    name = str(path)
    raw = read_csv_bytes(Path(path))
    text, encoding = decode_csv(raw, name)
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise CaseImportError(f"{name}: is empty; export the cases with a header row and import again") from None
    except csv.Error as e:
        raise CaseImportError(f"{name}: line 1: {e}") from None
    columns, ignored = _header(header, name)
    report = ImportReport(name, encoding, ignored_columns=ignored)
    parsed: list[tuple[int, dict[str, Any]]] = []
    line = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            report.problems.append(RowProblem(line, None, f"not valid CSV ({e})"))
            break
        start, line = line, reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue  # blank line
        report.rows += 1
        given = {fld: (cells[i] if i < len(cells) else "") for i, fld in columns.items()}
        case_no = given["case_no"].strip() or None
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
            report.problems.append(RowProblem(start, case_no, f"{len(cells)} cells but the header has {len(header)} "
                                                                "(an unquoted comma?)"))
            continue
        fields, problems = parse_fields(given, tz)
        if not problems and (p := _window_problem(fields)):
            problems.append(p)
        if problems:
            report.problems.append(RowProblem(start, case_no, "; ".join(problems)))
            continue
        parsed.append((start, fields))
    # A case number twice in one file: identical rows are one case; differing rows cannot be
    # told apart, so none of them is imported.
    by_no: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for ln, f in parsed:
        by_no[f["case_no"]].append((ln, f))
    good: list[tuple[int, dict[str, Any]]] = []
    for case_no, rows in by_no.items():
        first_line, first_fields = rows[0]
        if all(f == first_fields for _, f in rows[1:]):
            good.append(rows[0])
            for ln, _ in rows[1:]:
                report.problems.append(RowProblem(ln, case_no, f"repeats line {first_line} (same case number, same data); "
                                                                "imported once"))
        else:
            lines = ", ".join(str(ln) for ln, _ in rows)
            for ln, _ in rows:
                report.problems.append(RowProblem(ln, case_no, f"case number {case_no} is on lines {lines} with different "
                                                                "data; none of them was imported — fix the export"))
    report.problems.sort(key=lambda p: p.line)
    good.sort(key=lambda r: r[0])
    return report, good


def import_cases(catalog: Catalog, path: Path, tz: str, actor: str | None = None) -> ImportReport:
    """Import the bureau's case export: good rows create or update cases (keyed by case number),
    bad rows are reported by line, then the footage of every officer concerned is re-filed.
    One transaction: the cases, the filing and their audit entries commit together."""
    actor = actor or audit.current_actor()
    report, good = read_case_csv(Path(path), tz)
    source = f"import {Path(path).name}"
    with catalog.transaction():
        officers: set[str] = set()
        for line, fields in good:
            old = _case(catalog.conn, fields["case_no"])
            changed = _store_case(catalog, fields, old, f"{source} line {line}", actor)
            if old is None:
                report.created.append(fields["case_no"])
            elif changed:
                report.updated.append({"case": fields["case_no"], "changed": changed})
            else:
                report.unchanged.append(fields["case_no"])
            if old is None or changed:
                officers |= set(fields["handlers"]) | set(old["handlers"] if old else ())
        if officers:
            _refile(catalog, officers=officers, actor=actor, trigger=source, changes=report.filing)
        audit.append(catalog, "case.import", f"file:{Path(path).name}", {
            "file": str(path), "encoding": report.encoding, "rows": report.rows, "created": len(report.created),
            "updated": len(report.updated), "unchanged": len(report.unchanged),
            "problems": [p.to_json() for p in report.problems],
        }, actor)
    return report


# -- the 2-day report and the footage listing -------------------------------------------------


@dataclass
class OverdueReport:
    as_of: str
    deadline_days: int
    officers: list[dict[str, Any]]

    @property
    def count(self) -> int:
        return sum(o["count"] for o in self.officers)

    @property
    def exit_code(self) -> int:
        return EXIT_WARNING if self.count else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {"as_of": self.as_of, "deadline_days": self.deadline_days, "count": self.count, "officers": self.officers}


def overdue(catalog: Catalog, deadline_days: int, as_of: datetime | None = None) -> OverdueReport:
    """Footage recorded more than ``deadline_days`` before ``as_of`` and still filed to no case."""
    as_of = as_of or now_utc()
    deadline = timedelta(days=deadline_days)
    cutoff = iso(as_of - deadline)
    groups: dict[str | None, dict[str, Any]] = {}
    for fid, sha, officer, name, t, device, path, cands, recorded, ingested in catalog.conn.execute(
        f"SELECT f.id, f.sha256, f.officer_badge, o.name, {_T_DUE}, f.device_serial, f.source_path, a.candidates,"
        " f.recorded_at_corrected, f.ingested_at"
        " FROM footage f LEFT JOIN officers o ON o.badge = f.officer_badge"
        " LEFT JOIN footage_ambiguous a ON a.footage_id = f.id"
        f" WHERE NOT EXISTS (SELECT 1 FROM footage_cases fc WHERE fc.footage_id = f.id) AND {_T_DUE} < ?"
        f" ORDER BY f.officer_badge, {_T_DUE}, f.id", (cutoff,)
    ):
        due = from_iso(t) + deadline
        late = (as_of - due).total_seconds()
        g = groups.setdefault(officer, {"officer": officer, "name": name, "count": 0, "most_late_s": 0, "footage": []})
        g["count"] += 1
        g["most_late_s"] = max(g["most_late_s"], int(late))
        g["footage"].append({
            "id": fid, "sha256": sha, "device": device, "source_path": path, "recorded_at": recorded,
            "ingested_at": ingested, "due_at": iso(due),
            "late_by_s": int(late), "late_by": format_duration(late),
            "ambiguous": json.loads(cands) if cands else [],
        })
    officers = sorted(groups.values(), key=lambda g: (-g["most_late_s"], g["officer"] or ""))
    return OverdueReport(iso(as_of), deadline_days, officers)


def annotate_filing(catalog: Catalog, rows: list[dict[str, Any]], deadline_days: int, *,
                    case_no: str | None = None, unfiled: bool = False, now: datetime | None = None) -> list[dict[str, Any]]:
    """Add ``cases``, ``filed_at``, ``overdue`` and ``ambiguous`` to footage rows; keep those asked for."""
    conn = catalog.conn
    if case_no is not None:
        need_case(conn, case_no)
    links: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for fid, cno, filed_at in conn.execute("SELECT footage_id, case_no, filed_at FROM footage_cases ORDER BY case_no"):
        links[fid].append((cno, filed_at))
    marked = {fid: json.loads(c) for fid, c in conn.execute("SELECT footage_id, candidates FROM footage_ambiguous")}
    cutoff = iso((now or now_utc()) - timedelta(days=deadline_days))
    out = []
    for r in rows:
        mine = links.get(r["id"], [])
        r["cases"] = [c for c, _ in mine]
        r["filed_at"] = min((f for _, f in mine), default=None)
        t = r.get("recorded_at_corrected") or r.get("ingested_at")  # as _T_DUE
        r["overdue"] = not mine and t is not None and t < cutoff
        r["ambiguous"] = marked.get(r["id"], [])
        if (case_no is None or case_no in r["cases"]) and (not unfiled or not mine):
            out.append(r)
    return out
