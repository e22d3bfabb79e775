"""The station's audit chain in the evidence store bucket, segment by segment, as it grows.

Each pass of the upload queue writes the audit rows added since the last segment as
``audit/<station-id>/<first-row-id, 12 digits>.jsonl``: one JSON object per row (every column of
the ``audit`` table, the chain's own fields included), then a last line
``{"chain_hash": …, "last_row": …}`` — the chain hash after the segment's last row. The segments
in key order, concatenated, are the station's whole chain; a station whose disk is lost still has
its record of what happened to the evidence in the bucket.

A range is claimed in a catalog transaction (a ``store_audit_segments`` row) before its put, so
two runners (the daemon's thread, ``evidock store upload``) never write overlapping ranges. A put
that failed (or a runner that died) leaves ``written_at`` NULL; the next pass puts the same rows
again (rows never change: the same bytes). Writing a segment is not itself audited: it would add
a row for the next segment, for ever.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from daemon.catalog.db import Catalog
from daemon.clock import iso, now_utc

if TYPE_CHECKING:
    from daemon.store.bucket import StoreBucket

log = logging.getLogger(__name__)

COLUMNS = ("id", "at", "actor", "event", "subject", "details", "prev_hash", "hash")
MAX_ROWS = 10_000  # one segment at most; a long backlog goes up in several


def segment_key(station_id: str, first_row: int) -> str:
    """The key of the segment starting at audit row ``first_row``."""
    return f"audit/{station_id}/{first_row:012d}.jsonl"


def segment_body(catalog: Catalog, first_row: int, last_row: int) -> tuple[bytes, str]:
    """The segment of rows ``first_row``..``last_row`` and the chain hash after its last row."""
    rows = catalog.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM audit WHERE id BETWEEN ? AND ? ORDER BY id",
                                (first_row, last_row)).fetchall()
    lines = [json.dumps(dict(zip(COLUMNS, r)), ensure_ascii=False, sort_keys=True) for r in rows]
    head = rows[-1][COLUMNS.index("hash")]
    lines.append(json.dumps({"chain_hash": head, "last_row": last_row}, sort_keys=True))
    return ("\n".join(lines) + "\n").encode("utf-8"), head


def _claim(catalog: Catalog) -> tuple[int, int] | None:
    with catalog.transaction() as conn:
        done = conn.execute("SELECT COALESCE(MAX(last_row), 0) FROM store_audit_segments").fetchone()[0]
        first, last = conn.execute("SELECT MIN(id), MAX(id) FROM (SELECT id FROM audit WHERE id > ? ORDER BY id LIMIT ?)",
                                   (done, MAX_ROWS)).fetchone()
        if first is None:
            return None
        head = conn.execute("SELECT hash FROM audit WHERE id = ?", (last,)).fetchone()[0]
        conn.execute("INSERT INTO store_audit_segments (first_row, last_row, chain_hash) VALUES (?,?,?)",
                     (first, last, head))
        return first, last


def push_audit(catalog: Catalog, b: StoreBucket) -> int:
    """Write every audit segment not yet in the bucket; how many were written. A failed put is
    left for the next pass (its ``BackupError`` goes to the caller)."""
    written = 0
    for _ in range(1000):  # a bound, not a limit met in practice: MAX_ROWS rows each
        unwritten = catalog.conn.execute(
            "SELECT first_row, last_row FROM store_audit_segments WHERE written_at IS NULL ORDER BY first_row LIMIT 1"
        ).fetchone()
        rng = tuple(unwritten) if unwritten else _claim(catalog)
        if rng is None:
            break
        first, last = rng
        body, _head = segment_body(catalog, first, last)
        b.put_small(segment_key(b.station_id, first), body)
        with catalog.transaction() as conn:
            conn.execute("UPDATE store_audit_segments SET written_at = ? WHERE first_row = ?", (iso(now_utc()), first))
        written += 1
        log.info("store: audit rows %d..%d written to bucket %s", first, last, b.bucket)
    return written
