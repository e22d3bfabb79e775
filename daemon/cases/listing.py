"""The footage listing (``evidock footage list``, and the API's): rows asked for by filters that
map to indexed queries, a page at a time or streamed.

Each catalog footage row with its media columns (duration_s, codec, proxy, proxy_path) and its
filing state (cases, filed_at, overdue, ambiguous), in one query: the filters (officer, recorder,
case, recorded time, kind, unfiled) are SQL conditions an index answers (migration listing-009),
and pages are keyset pages on the row id (``after``/``before`` a cursor, never OFFSET), so a page
costs the same on the first day and after five years, and rows added between pages neither
repeat nor push others out. ``iter_footage`` yields rows as SQLite reads them: memory does not
grow with the catalog. Rendering (tables, JSON) is the caller's.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from daemon.cases.records import need_case
from daemon.catalog.db import Catalog
from daemon.catalog.kinds import fileable
from daemon.clock import iso, now_utc
from daemon.media.listing import proxy_columns
from daemon.catalog import keyset

RECORDED = "COALESCE(f.recorded_at_corrected, f.recorded_at)"  # the time a listing shows and filters on


@dataclass(frozen=True)
class FootageQuery:
    """What a listing asks for. Times are ISO-8601 UTC; ``since`` inclusive, ``until`` exclusive.
    ``after``/``before``: a cursor (a row's id): rows after it, or the last ``limit`` before it."""

    officer: str | None = None
    unit: str | None = None  # only footage of the officers of this unit (the registry's), the API's scope
    device: str | None = None
    case_no: str | None = None
    since: str | None = None
    until: str | None = None
    kind: str | None = None
    unfiled: bool = False
    limit: int | None = None
    after: int | None = None
    before: int | None = None
    latest: bool = False  # without a cursor: the last ``limit`` rows rather than the first


def footage_sql(q: FootageQuery) -> tuple[str, list[Any]]:
    """The query of a listing and its arguments (``EXPLAIN QUERY PLAN`` of it is tested)."""
    where, args = [], []
    join = ""
    if q.case_no is not None:
        join = " JOIN footage_cases fc ON fc.footage_id = f.id AND fc.case_no = ?"
        args.append(q.case_no)
    for cond, value in (("f.officer_badge = ?", q.officer),
                        ("f.officer_badge IN (SELECT badge FROM officers WHERE unit = ?)", q.unit),
                        ("f.device_serial = ?", q.device),
                        (f"{RECORDED} >= ?", q.since), (f"{RECORDED} < ?", q.until), ("f.kind = ?", q.kind),
                        ("f.id > ?", q.after), ("f.id < ?", q.before)):
        if value is not None:
            where.append(cond)
            args.append(value)
    if q.unfiled:
        where.append("f.filed = 0")  # kept with the links (migration overdue-013)
    backwards = keyset.backwards(q.before, q.after, q.latest)
    # A time range alone: without this SQLite would rather walk the whole table in id order than
    # sort the range's rows, which at millions of rows is the slow choice for a day or a week.
    # Unfiled alone: the index of the unfiled rows only, in id order, rather than every row.
    narrow = q.officer or q.unit or q.device or q.case_no  # a filter with an index of its own
    hint = (" INDEXED BY footage_time" if (q.since or q.until) and not narrow
            else " INDEXED BY footage_unfiled_id" if q.unfiled and not (narrow or q.kind)
            else "")
    sql = ("SELECT f.id, f.sha256, f.size, f.device_serial AS device, f.officer_badge AS officer,"
           " (SELECT name FROM officers o WHERE o.badge = f.officer_badge) AS officer_name,"
           " f.bound_officer, f.attributed_by, f.source_path, f.source_path_raw, f.recorded_at,"
           " f.recorded_at_corrected, f.important, f.case_no, f.session_id, f.ingested_at, f.kind,"
           " (SELECT json_group_array(case_no) FROM (SELECT case_no FROM footage_cases c WHERE c.footage_id = f.id"
           "  ORDER BY case_no)) AS cases_json,"
           " (SELECT MIN(filed_at) FROM footage_cases c WHERE c.footage_id = f.id) AS filed_at,"
           " a.candidates AS ambiguous_json, j.state AS proxy_state, j.proxy_path AS proxy_file,"
           " i.duration_s, i.video_codec, i.audio_codec"
           f" FROM footage f{hint}{join}"
           " LEFT JOIN footage_ambiguous a ON a.footage_id = f.id"
           " LEFT JOIN media_jobs j ON j.footage_id = f.id LEFT JOIN media_info i ON i.footage_id = f.id"
           + (" WHERE " + " AND ".join(where) if where else "")
           + (" ORDER BY f.id DESC" if backwards else " ORDER BY f.id"))
    if q.limit is not None:
        sql += " LIMIT ?"
        args.append(q.limit)
    return sql, args


def iter_footage(catalog: Catalog, deadline_days: int, q: FootageQuery = FootageQuery(),
                 now: datetime | None = None) -> Iterator[dict[str, Any]]:
    """The rows ``q`` asks for, in id order, one at a time. An unknown case is an error naming it.
    ``deadline_days`` decides ``overdue`` (art. 11)."""
    if q.case_no is not None:
        need_case(catalog.conn, q.case_no)
    cutoff = iso((now or now_utc()) - timedelta(days=deadline_days))
    sql, args = footage_sql(q)
    cur = catalog.conn.execute(sql, args)
    names = [d[0] for d in cur.description]
    for values in keyset.in_order(cur, keyset.backwards(q.before, q.after, q.latest)):
        yield _row(catalog, dict(zip(names, values)), cutoff)


def _row(catalog: Catalog, r: dict[str, Any], cutoff: str) -> dict[str, Any]:
    raw = r.pop("source_path_raw")
    r["important"] = bool(r["important"])
    try:
        bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        r["source_path_bytes_b64"] = base64.b64encode(raw).decode()
    r.update(proxy_columns(catalog, r.pop("proxy_state"), r.pop("proxy_file"), r.pop("duration_s"),
                           r.pop("video_codec"), r.pop("audio_codec")))
    r["cases"] = json.loads(r.pop("cases_json"))
    t = r.get("recorded_at_corrected") or r.get("ingested_at")
    r["overdue"] = not r["cases"] and t is not None and t < cutoff and fileable(r.get("kind"))
    amb = r.pop("ambiguous_json")
    r["ambiguous"] = json.loads(amb) if amb else []
    return r


def list_footage(catalog: Catalog, deadline_days: int, *, case_no: str | None = None,
                 unfiled: bool = False, kind: str | None = None) -> list[dict[str, Any]]:
    """Every footage row (or those filed to ``case_no``, filed to none, or of one ``kind``), as a list."""
    return list(iter_footage(catalog, deadline_days, FootageQuery(case_no=case_no, unfiled=unfiled, kind=kind)))
