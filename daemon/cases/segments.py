"""Segments: the chunks a recorder splits one recording into (often 5–15 minutes each), filed together.

Chunks of one recorder and one officer, in order of corrected recording time (then id), are one
segment while each next chunk starts less than ``filing.segment_gap_s`` after the end of the one
before it. A chunk's end is its corrected start plus its probed duration (``media_info``). Before
the probe has run (at ingest, filing runs first), the end is not known: then two chunks join only
when their file names are in sequence (the last number in the name goes up by one, as recorders
count their files) and the next starts less than ``filing.chunk_max_s`` + ``segment_gap_s`` after
this one. Once probed, the next re-filing (any case change, ``evidock case refile``) uses the
durations. Footage that is not ``fileable``, or whose recording time is not trusted, is in no
segment (a segment of its own, never joined).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any

from daemon.cases.filing_rules import FilingRules, fileable
from daemon.clock import from_iso

Row = dict[str, Any]

# Every footage column (whatever later migrations add, e.g. a kind) and the probed duration.
ROWS = ("SELECT f.*, m.duration_s AS duration_s FROM footage f LEFT JOIN media_info m ON m.footage_id = f.id")
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def rows(conn: Any, where: str, args: Iterable[Any] = ()) -> list[Row]:
    """Footage rows (``ROWS``) matching ``where`` (on ``f``), as dicts."""
    cur = conn.execute(f"{ROWS} WHERE {where}", tuple(args))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def _seq(row: Row) -> int | None:
    name = PurePosixPath(str(row.get("source_path") or "").replace("\\", "/")).name
    m = _LAST_NUMBER.search(name.rsplit(".", 1)[0] if "." in name else name)
    return int(m.group(1)) if m else None


def segmentable(row: Row) -> bool:
    return row.get("recorded_at_corrected") is not None and fileable(row)


def joined(a: Row, b: Row, rules: FilingRules) -> bool:
    """Whether chunk ``b`` (the next of the same recorder and officer) continues ``a``'s recording."""
    if (a.get("device_serial"), a.get("officer_badge")) != (b.get("device_serial"), b.get("officer_badge")):
        return False
    ta, tb = from_iso(a["recorded_at_corrected"]), from_iso(b["recorded_at_corrected"])
    gap = timedelta(seconds=rules.segment_gap_s)
    if a.get("duration_s"):
        return tb - (ta + timedelta(seconds=float(a["duration_s"]))) < gap
    sa, sb = _seq(a), _seq(b)
    return bool(rules.chunk_max_s) and sa is not None and sb == sa + 1 and tb - ta < timedelta(seconds=rules.chunk_max_s) + gap


def next_chunk(conn: Any, row: Row, forward: bool) -> Row | None:
    """The next (or previous) segmentable chunk of the same recorder and officer."""
    op, order = (">", "ASC") if forward else ("<", "DESC")
    cur = row
    while True:
        got = rows(conn, "f.device_serial IS ? AND f.officer_badge IS ? AND f.recorded_at_corrected IS NOT NULL"
                   f" AND (f.recorded_at_corrected {op} ? OR (f.recorded_at_corrected = ? AND f.id {op} ?))"
                   f" ORDER BY f.recorded_at_corrected {order}, f.id {order} LIMIT 1",
                   (row["device_serial"], row["officer_badge"], cur["recorded_at_corrected"], cur["recorded_at_corrected"],
                    cur["id"]))
        if not got:
            return None
        if fileable(got[0]):
            return got[0]
        cur = got[0]


def segment_of(conn: Any, row: Row, rules: FilingRules) -> list[Row]:
    """The whole segment of one footage row, in order (just the row when it is in none)."""
    if not segmentable(row):
        return [row]
    seg, cur = [row], row
    while (p := next_chunk(conn, cur, False)) is not None and joined(p, cur, rules):
        seg.insert(0, p)
        cur = p
    cur = row
    while (n := next_chunk(conn, cur, True)) is not None and joined(cur, n, rules):
        seg.append(n)
        cur = n
    return seg


def segments_of_ids(conn: Any, ids: Iterable[int], rules: FilingRules) -> list[list[Row]]:
    """The segments holding the given footage ids (each once), in order of their first chunk."""
    out: list[list[Row]] = []
    seen: set[int] = set()
    for row in rows(conn, "f.id IN (SELECT value FROM json_each(?)) ORDER BY f.id", (_json(ids),)):
        if row["id"] in seen:
            continue
        seg = segment_of(conn, row, rules)
        seen |= {r["id"] for r in seg}
        out.append(seg)
    return out


def group(all_rows: list[Row], rules: FilingRules) -> list[list[Row]]:
    """Split footage rows into segments (all chunks of each recorder and officer concerned must be given)."""
    key = (lambda r: (str(r.get("device_serial")), str(r.get("officer_badge")), r["recorded_at_corrected"], r["id"]))
    out: list[list[Row]] = [[r] for r in all_rows if not segmentable(r)]
    seg: list[Row] = []
    for r in sorted((r for r in all_rows if segmentable(r)), key=key):
        if seg and joined(seg[-1], r, rules):
            seg.append(r)
        else:
            if seg:
                out.append(seg)
            seg = [r]
    if seg:
        out.append(seg)
    return out


def completed(conn: Any, segs: list[list[Row]], rules: FilingRules) -> list[list[Row]]:
    """Segments ``group`` made of a slice of the catalog (one time range), each made whole: one
    that a chunk outside the slice continues, before or after, is replaced by its whole segment."""
    out: list[list[Row]] = []
    seen: set[int] = set()
    for seg in segs:
        if seg[0]["id"] in seen:
            continue
        first, last = seg[0], seg[-1]
        if segmentable(first) and (
                ((p := next_chunk(conn, first, False)) is not None and joined(p, first, rules))
                or ((n := next_chunk(conn, last, True)) is not None and joined(last, n, rules))):
            seg = segment_of(conn, first, rules)
        seen |= {r["id"] for r in seg}
        out.append(seg)
    return out


def _json(ids: Iterable[int]) -> str:
    return json.dumps(sorted(set(ids)))
