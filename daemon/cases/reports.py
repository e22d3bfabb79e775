"""The 2-day report (footage not filed within ``filing.deadline_days``) and the filing columns of
the footage listing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from daemon.cases import segments
from daemon.cases.filing import _T_DUE
from daemon.cases.filing_rules import FilingRules
from daemon.cases.listing import RECORDED, FootageQuery
from daemon.catalog.db import Catalog
from daemon.catalog.kinds import kinds_sql
from daemon.clock import format_duration, from_iso, iso, now_utc
from daemon.errors import EXIT_OK, EXIT_WARNING
from daemon.catalog import keyset

# -- the 2-day report and the footage listing -------------------------------------------------


@dataclass
class OverdueReport:
    """The overdue footage a query asks for: per officer a summary (over every row the filters
    name), and the rows themselves (``footage``: streamed in id order, a page with ``limit``)."""

    as_of: str
    deadline_days: int
    officers: list[dict[str, Any]]
    footage: Iterable[dict[str, Any]] = ()

    @property
    def count(self) -> int:
        return sum(o["count"] for o in self.officers)

    @property
    def exit_code(self) -> int:
        return EXIT_WARNING if self.count else EXIT_OK

    def head(self) -> dict[str, Any]:
        """The document without its rows (``--json`` writes them after it, streamed)."""
        return {"as_of": self.as_of, "deadline_days": self.deadline_days, "count": self.count, "officers": self.officers}

    def to_json(self) -> dict[str, Any]:
        return {**self.head(), "footage": list(self.footage)}


def _overdue_where(q: FootageQuery, cutoff: str) -> tuple[list[str], list[Any]]:
    """The conditions of the overdue list (migration overdue-013's partial indexes answer them)."""
    where = ["f.filed = 0", f"{_T_DUE} < ?", kinds_sql()]  # issue 14: only what must be filed (video, audio, photo)
    args: list[Any] = [cutoff]
    for cond, value in (("f.officer_badge = ?", q.officer), ("f.device_serial = ?", q.device),
                        (f"{RECORDED} >= ?", q.since), (f"{RECORDED} < ?", q.until), ("f.kind = ?", q.kind)):
        if value is not None:
            where.append(cond)
            args.append(value)
    return where, args


def _unfiled_index(q: FootageQuery, otherwise: str) -> str:
    """Which of migration overdue-013's partial indexes a query reads. Named, since SQLite, not
    knowing how few rows are unfiled, would rather walk all of an officer's rows or every video."""
    return ("footage_unfiled_officer" if q.officer is not None else
            "footage_unfiled_device" if q.device is not None else otherwise)


def overdue_summary_sql(q: FootageQuery, cutoff: str) -> tuple[str, list[Any]]:
    """Per officer: how many rows are overdue and the earliest time the deadline ran from."""
    where, args = _overdue_where(q, cutoff)
    if q.officer is not None or q.device is not None:  # one range of the index already
        return (f"SELECT f.officer_badge, COUNT(*), MIN({_T_DUE})"
                f" FROM footage f INDEXED BY {_unfiled_index(q, 'footage_unfiled_officer')} WHERE {' AND '.join(where)}"
                " GROUP BY f.officer_badge", args)
    # Every officer: one range of (officer, due) per officer, the officers found by a loose index
    # scan, so the cost follows the overdue rows and not every unfiled one (a GROUP BY walks them
    # all: 1.8 s for 51 k overdue among 5 M unfiled rows).
    idx, cond = "footage INDEXED BY footage_unfiled_officer", " AND ".join(where)
    return (f"WITH RECURSIVE o(b) AS (SELECT MIN(officer_badge) FROM {idx} WHERE filed = 0"
            f" UNION ALL SELECT (SELECT MIN(officer_badge) FROM {idx} WHERE filed = 0 AND officer_badge > o.b)"
            " FROM o WHERE o.b IS NOT NULL)"
            f" SELECT o.b, COUNT(*), MIN({_T_DUE}) FROM o CROSS JOIN footage f INDEXED BY footage_unfiled_officer"
            f" ON f.officer_badge = o.b WHERE o.b IS NOT NULL AND {cond} GROUP BY o.b"
            f" UNION ALL SELECT NULL, COUNT(*), MIN({_T_DUE}) FROM footage f INDEXED BY footage_unfiled_officer"
            f" WHERE f.officer_badge IS NULL AND {cond} HAVING COUNT(*) > 0", args + args)


def overdue_sql(q: FootageQuery, cutoff: str) -> tuple[str, list[Any]]:
    """The overdue rows, in id order (backwards for the page before a cursor or the latest page)."""
    where, args = _overdue_where(q, cutoff)
    for cond, value in (("f.id > ?", q.after), ("f.id < ?", q.before)):
        if value is not None:
            where.append(cond)
            args.append(value)
    backwards = keyset.backwards(q.before, q.after, q.latest)
    index = _unfiled_index(q, "footage_unfiled_id")
    sql = (f"SELECT f.id, f.sha256, f.officer_badge, {_T_DUE}, f.device_serial, f.source_path, a.candidates,"
           " f.recorded_at_corrected, f.ingested_at, f.kind"
           f" FROM footage f INDEXED BY {index} LEFT JOIN footage_ambiguous a ON a.footage_id = f.id"
           f" WHERE {' AND '.join(where)} ORDER BY f.id" + (" DESC" if backwards else ""))
    if q.limit is not None:
        sql += " LIMIT ?"
        args.append(q.limit)
    return sql, args


def overdue(catalog: Catalog, deadline_days: int, as_of: datetime | None = None,
            q: FootageQuery = FootageQuery()) -> OverdueReport:
    """Footage to file (``kinds.FILEABLE``) whose deadline (``deadline_days`` after recording, or
    after ingest when the recording time is not trusted) passed before ``as_of``, still filed to no
    case; narrowed by ``q``'s filters (officer, recorder, recorded time, kind) and paged by its
    cursor (its ``case_no`` and ``unfiled`` do not apply). The officers' summary is one aggregate query; the rows come as SQLite reads them."""
    as_of = as_of or now_utc()
    deadline = timedelta(days=deadline_days)
    cutoff = iso(as_of - deadline)
    conn = catalog.conn
    names = dict(conn.execute("SELECT badge, name FROM officers"))
    officers = []
    for officer, n, first in conn.execute(*overdue_summary_sql(q, cutoff)):
        officers.append({"officer": officer, "name": names.get(officer), "count": n,
                         "most_late_s": int((as_of - from_iso(first) - deadline).total_seconds())})
    officers.sort(key=lambda g: (-g["most_late_s"], g["officer"] or ""))
    return OverdueReport(iso(as_of), deadline_days, officers, _overdue_rows(catalog, q, cutoff, as_of, deadline, names))


def _overdue_rows(catalog: Catalog, q: FootageQuery, cutoff: str, as_of: datetime, deadline: timedelta,
                  names: dict[str, str]) -> Iterator[dict[str, Any]]:
    cur = catalog.conn.execute(*overdue_sql(q, cutoff))
    rows = keyset.in_order(cur, keyset.backwards(q.before, q.after, q.latest))
    for fid, sha, officer, t, device, path, cands, recorded, ingested, kind in rows:
        due = from_iso(t) + deadline
        late = (as_of - due).total_seconds()
        yield {"id": fid, "sha256": sha, "officer": officer, "name": names.get(officer), "device": device,
               "source_path": path, "kind": kind, "recorded_at": recorded, "ingested_at": ingested,
               "due_at": iso(due), "late_by_s": int(late), "late_by": format_duration(late),
               "ambiguous": json.loads(cands) if cands else []}


def overdue_per_device(catalog: Catalog, deadline_days: int, as_of: datetime) -> dict[str, int]:
    """How many rows are overdue per recorder (one aggregate query on the unfiled rows' index)."""
    where, args = _overdue_where(FootageQuery(), iso(as_of - timedelta(days=deadline_days)))
    return {serial: n for serial, n in catalog.conn.execute(
        f"SELECT f.device_serial, COUNT(*) FROM footage f INDEXED BY footage_unfiled_device WHERE {' AND '.join(where)} GROUP BY f.device_serial", args)
        if serial is not None}


def ambiguous_queue(catalog: Catalog, deadline_days: int, rules: FilingRules | None = None,
                    now: datetime | None = None) -> list[dict[str, Any]]:
    """The clerk's queue: each segment with ambiguous footage, its candidate cases and its deadline
    (the earliest of its chunks' recording time, or ingest when not trusted, + ``deadline_days``),
    soonest first."""
    conn = catalog.conn
    marked = {fid: json.loads(c) for fid, c in conn.execute("SELECT footage_id, candidates FROM footage_ambiguous")}
    if not marked:
        return []
    deadline, now = timedelta(days=deadline_days), now or now_utc()
    out = []
    for seg in segments.segments_of_ids(conn, marked, rules or FilingRules()):
        mine = [r for r in seg if r["id"] in marked]
        due = min(from_iso(r["recorded_at_corrected"] or r["ingested_at"]) for r in mine) + deadline
        last = seg[-1]
        end = (iso(from_iso(last["recorded_at_corrected"]) + timedelta(seconds=float(last["duration_s"])))
               if last["recorded_at_corrected"] and last.get("duration_s") else last["recorded_at_corrected"])
        out.append({
            "footage": [r["id"] for r in mine], "segment": [r["id"] for r in seg], "officer": seg[0]["officer_badge"],
            "device": seg[0]["device_serial"], "start": seg[0]["recorded_at_corrected"], "end": end,
            "candidates": sorted({c for r in mine for c in marked[r["id"]]}), "due_at": iso(due), "overdue": due < now,
            "files": [r["source_path"] for r in seg],
        })
    out.sort(key=lambda e: (e["due_at"], e["officer"] or "", e["footage"][0]))
    return out
