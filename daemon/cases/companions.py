"""Companion filing (issue 14): a GPS track or a device log is filed with the media it overlaps.

A track or a log (``daemon.catalog.kinds.COMPANION``) is not footage to file on its own, but it
belongs beside the recordings it accompanies: it is filed (``how = "companion"``) to every case
that a video, audio or photo of the *same recorder* is filed to, when the two overlap in time.

- The companion's span: its own first and last time when the ingest could read them (NMEA RMC
  sentences, GPX times: ``footage.span_start/span_end``, satellite time); else from the date in
  its name (``20261127.LOG``: that day in any time zone) to its corrected recording time (the
  file's last write); else the corrected recording time alone. No trusted time: no span, and the
  companion waits for a person.
- A medium's span: [start, start + duration] with the start the media probe found
  (``media_info.recorded_start_corrected``) and, as the recording time filing goes by is the file's
  last write, [recorded − duration, recorded] too; the union of both.

Deterministic: the links are re-derived from the media's links every time (those that no longer
hold are removed, audited), in id order. A companion with a manual link is left alone (a person
decided), and a case it was unfiled from by hand (``filing_blocks``) is never given back.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from daemon.cases.filing import FilingChanges, _audit_filing, _sync_case_no
from daemon.catalog.db import Catalog
from daemon.catalog.kinds import COMPANION, kinds_sql, name_day_start
from daemon.clock import from_iso, utcnow

Span = tuple[datetime, datetime]


def _t(v: str | None) -> datetime | None:
    if not v:
        return None
    try:
        return from_iso(v)
    except ValueError:
        return None


def companion_span(span_start: str | None, span_end: str | None, corrected: str | None, name: str) -> Span | None:
    """The time a track or log covers (see the module docstring), or None."""
    own = (_t(span_start), _t(span_end))
    if own[0] is not None and own[1] is not None:
        return own[0], own[1]
    end = _t(corrected)
    if end is None:
        return None
    day = name_day_start(name)
    return (day if day is not None and day <= end else end), end


def media_span(corrected: str | None, start: str | None, duration_s: float | None) -> Span | None:
    """The time a recording covers (see the module docstring), or None."""
    dur = timedelta(seconds=duration_s or 0)
    ends = [t for t in (_t(corrected),) if t is not None]
    starts = [t for t in (_t(start),) if t is not None]
    points = [t - dur for t in ends] + ends + starts + [t + dur for t in starts]
    return (min(points), max(points)) if points else None


# How far around the changed footage companions and media are looked at: a companion spans at
# most two days (``kinds.MAX_SPAN``) or a named day in any zone; a recording far less.
_SLOP = timedelta(days=3)
_T = "COALESCE(f.recorded_at_corrected, i.recorded_start_corrected)"


def _ids(values: Any) -> str:
    return json.dumps(sorted(set(values)))


def _links(conn: Any, ids: Sequence[int]) -> dict[int, list[tuple[str, str]]]:
    out: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for fid, case_no, how in conn.execute(
        "SELECT footage_id, case_no, how FROM footage_cases WHERE footage_id IN (SELECT value FROM json_each(?))"
        " ORDER BY case_no", (_ids(ids),)
    ):
        out[fid].append((case_no, how))
    return out


def _window(conn: Any, device: str, ids: str) -> tuple[str, str] | None:
    """The times of the chosen footage of one recorder, widened by ``_SLOP`` (ISO UTC), or None."""
    lo, hi = conn.execute(
        "SELECT MIN(COALESCE(f.span_start, f.recorded_at_corrected, i.recorded_start_corrected)),"
        " MAX(COALESCE(f.span_end, f.recorded_at_corrected, i.recorded_start_corrected))"
        " FROM footage f LEFT JOIN media_info i ON i.footage_id = f.id"
        " WHERE f.device_serial = ? AND f.id IN (SELECT value FROM json_each(?))", (device, ids)).fetchone()
    t0, t1 = _t(lo), _t(hi)
    if t0 is None or t1 is None:
        return None
    return (t0 - _SLOP).isoformat(timespec="seconds"), (t1 + _SLOP).isoformat(timespec="seconds")


def file_companions(catalog: Catalog, *, footage_ids: Sequence[int], actor: str, trigger: str,
                    changes: FilingChanges | None = None) -> FilingChanges:
    """Re-derive the companion links around ``footage_ids`` (inside the caller's transaction):
    of the chosen tracks and logs, and of those of the same recorder near the chosen media in time."""
    conn = catalog.conn
    changes = changes if changes is not None else FilingChanges()
    chosen = _ids(footage_ids)
    devices = [r[0] for r in conn.execute(
        "SELECT DISTINCT device_serial FROM footage WHERE id IN (SELECT value FROM json_each(?))"
        " AND device_serial IS NOT NULL ORDER BY device_serial", (chosen,))]
    now = utcnow()
    touched: set[int] = set()
    for device in devices:
        window = _window(conn, device, chosen)
        comps = conn.execute(
            "SELECT f.id, f.sha256, f.source_path, f.recorded_at_corrected, f.span_start, f.span_end FROM footage f"
            f" LEFT JOIN media_info i ON i.footage_id = f.id WHERE f.device_serial = ? AND {kinds_sql(COMPANION)}"
            f" AND (f.id IN (SELECT value FROM json_each(?)) OR COALESCE(f.span_end, {_T}) BETWEEN ? AND ?) ORDER BY f.id",
            (device, chosen, *(window or ("", "")))).fetchall()
        spans = {c[0]: companion_span(c[4], c[5], c[3], c[2]) for c in comps}
        ends = [t for sp in spans.values() if sp is not None for t in sp]
        if not ends:
            rows = []
        else:  # the recordings that may overlap one of these companions (a recording lasts less than a day)
            near = ((min(ends) - timedelta(days=1)).isoformat(timespec="seconds"),
                    (max(ends) + timedelta(days=1)).isoformat(timespec="seconds"))
            rows = conn.execute(
                "SELECT f.id, f.recorded_at_corrected, i.recorded_start_corrected, i.duration_s FROM footage f"
                f" LEFT JOIN media_info i ON i.footage_id = f.id WHERE f.device_serial = ? AND {kinds_sql()}"
                f" AND {_T} BETWEEN ? AND ? ORDER BY f.id", (device, *near)).fetchall()
        links = _links(conn, [r[0] for r in comps] + [r[0] for r in rows])
        media: list[tuple[Span, set[str]]] = []
        for fid, corrected, start, duration in rows:
            cases = {c for c, how in links.get(fid, []) if how != "companion"}
            span = media_span(corrected, start, duration)
            if cases and span is not None:
                media.append((span, cases))
        blocked: dict[int, set[str]] = defaultdict(set)
        for fid, case_no in conn.execute(
            "SELECT footage_id, case_no FROM filing_blocks WHERE footage_id IN (SELECT value FROM json_each(?))",
            (_ids(r[0] for r in comps),)
        ):
            blocked[fid].add(case_no)
        for fid, sha, *_ in comps:
            mine = links.get(fid, [])
            if any(how == "manual" for _, how in mine):
                continue
            have = {c for c, how in mine if how == "companion"}
            span = spans[fid]
            want: set[str] = set()
            if span is not None:
                for (lo, hi), cases in media:
                    if lo <= span[1] and span[0] <= hi:
                        want |= cases
            want -= blocked[fid]
            when = f"{span[0].isoformat()} … {span[1].isoformat()}" if span else "unknown"
            for case_no in sorted(have - want):
                reason = f"companion: no recording of recorder {device} filed to case {case_no} overlaps it ({when})"
                conn.execute("DELETE FROM footage_cases WHERE footage_id = ? AND case_no = ?", (fid, case_no))
                _audit_filing(catalog, "footage.unfile", fid, sha, case_no, "companion", reason, actor, trigger)
                changes.unfiled.append({"footage": fid, "case": case_no, "how": "companion", "reason": reason})
                touched.add(fid)
            for case_no in sorted(want - have):
                reason = f"companion: it overlaps ({when}) a recording of recorder {device} filed to case {case_no}"
                conn.execute(
                    "INSERT OR REPLACE INTO footage_cases (footage_id, case_no, filed_at, filed_by, how, reason)"
                    " VALUES (?,?,?,?,?,?)", (fid, case_no, now, actor, "companion", reason))
                _audit_filing(catalog, "footage.file", fid, sha, case_no, "companion", reason, actor, trigger, now)
                changes.filed.append({"footage": fid, "case": case_no, "how": "companion", "reason": reason})
                touched.add(fid)
    _sync_case_no(conn, touched)
    return changes
