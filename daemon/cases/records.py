"""Reading cases from the catalog: one case with its handlers, all cases, or a clear "not found"."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from daemon.catalog.db import Catalog
from daemon.errors import NotFound
from daemon.i18n import N_
from daemon.catalog import keyset

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
        raise NotFound(N_("no case {case_no}; see `evidock case list` (open it with `evidock case open` or import it)"),
                       case_no=repr(case_no))
    return case


def get_case(catalog: Catalog, case_no: str) -> dict[str, Any]:
    """One case with its handlers, its footage (and how each was filed) and footage it might own."""
    conn = catalog.conn
    case = need_case(conn, case_no)
    names = dict(conn.execute("SELECT badge, name FROM officers WHERE name IS NOT NULL"))
    case["handlers"] = [{"badge": b, "name": names.get(b)} for b in case["handlers"]]
    case["footage"] = [
        {"id": r[0], "sha256": r[1], "officer": r[2], "officer_name": names.get(r[2]), "recorded_at": r[3], "size": r[4],
         "filed_at": r[5], "filed_by": r[6], "how": r[7], "reason": r[8]}
        for r in conn.execute(
            "SELECT f.id, f.sha256, f.officer_badge, f.recorded_at_corrected, f.size,"
            " fc.filed_at, fc.filed_by, fc.how, fc.reason FROM footage_cases fc JOIN footage f ON f.id = fc.footage_id"
            " WHERE fc.case_no = ? ORDER BY 4, f.id", (case_no,))
    ]
    case["activities"] = [
        {"id": aid, "kind": kind, "start": start, "end": end, "handlers": badges.split(";") if badges else [],
         "all_handlers": bool(all_h), "source": source}
        for aid, kind, start, end, all_h, badges, source in conn.execute(
            "SELECT a.id, a.kind, a.start_at, a.end_at, a.all_handlers, (SELECT group_concat(badge, ';') FROM"
            " (SELECT badge FROM case_activity_handlers ah WHERE ah.activity_id = a.id ORDER BY badge)), a.source"
            " FROM case_activities a WHERE a.case_no = ? ORDER BY a.start_at, a.id", (case_no,))
    ]
    case["ambiguous_footage"] = [
        {"id": fid, "candidates": json.loads(cands)}
        for fid, cands in conn.execute(
            "SELECT a.footage_id, a.candidates FROM footage_ambiguous a, json_each(a.candidates) j"
            " WHERE j.value = ? ORDER BY a.footage_id", (case_no,))
    ]
    return case


def list_cases(catalog: Catalog, status: str | None = None, *, officer: str | None = None, since: str | None = None,
               until: str | None = None, limit: int | None = None, after: str | None = None,
               before: str | None = None, latest: bool = False) -> Iterator[dict[str, Any]]:
    """Cases (or those with ``status``, handled by ``officer``, opened in [since, until)) in the order
    they were opened, with their handlers and how much footage is filed to each; one at a time.
    Keyset pages like the footage listing's, the cursor a case number (``after``/``before``):
    an unknown one is an error naming it."""
    where, args = ["(:status IS NULL OR c.status = :status)"], {"status": status}
    if officer is not None:
        where.append("c.case_no IN (SELECT case_no FROM case_handlers WHERE badge = :officer)")
        args["officer"] = officer
    for cond, key, value in (("c.opened_at >= :since", "since", since), ("c.opened_at < :until", "until", until)):
        if value is not None:
            where.append(cond)
            args[key] = value
    for op, key, cursor in ((">", "after", after), ("<", "before", before)):
        if cursor is not None:
            args[key + "_at"] = need_case(catalog.conn, cursor)["opened_at"]
            args[key] = cursor
            where.append(f"(c.opened_at, c.case_no) {op} (:{key}_at, :{key})")
    backwards = keyset.backwards(before, after, latest)
    order = "DESC" if backwards else "ASC"
    sql = ("SELECT c.case_no, c.party, c.unit, c.opened_at, c.closed_at, c.status, c.sensitivity,"
           " (SELECT group_concat(badge, ';') FROM (SELECT badge FROM case_handlers h WHERE h.case_no = c.case_no"
           "  ORDER BY badge)) AS handlers,"
           " (SELECT COUNT(*) FROM footage_cases fc WHERE fc.case_no = c.case_no) AS footage"
           f" FROM cases c WHERE {' AND '.join(where)} ORDER BY c.opened_at {order}, c.case_no {order}")
    if limit is not None:
        sql += " LIMIT :limit"
        args["limit"] = limit
    got = catalog.db.query(sql, args)
    for r in keyset.in_order(got, backwards):
        r["handlers"] = r["handlers"].split(";") if r["handlers"] else []
        yield r
