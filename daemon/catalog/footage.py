"""The footage, objects and sightings tables: recording a stored file (its object, its footage
row or a sighting of bytes already stored) and looking sightings up by transfer key. Every
statement runs in the caller's transaction. The listing (``evidock footage list``) is
``daemon.cases.listing``, above the catalog: it joins the media and filing tables.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence


def sighted(conn: sqlite3.Connection, transfer_key: str | None, sha256: str) -> bool:
    """Was this transfer already recorded as a sighting of ``sha256`` (by a run that died after it)?"""
    return conn.execute("SELECT 1 FROM sightings WHERE transfer_key = ? AND sha256 = ?",
                        (transfer_key, sha256)).fetchone() is not None


def footage_id(conn: sqlite3.Connection, sha256: str) -> int | None:
    row = conn.execute("SELECT id FROM footage WHERE sha256 = ?", (sha256,)).fetchone()
    return int(row[0]) if row else None


def add_object(conn: sqlite3.Connection, sha256: str, size: int, now: str) -> None:
    conn.execute("INSERT OR IGNORE INTO objects (sha256, size, stored_at) VALUES (?,?,?)", (sha256, size, now))


def add_footage(conn: sqlite3.Connection, *, sha256: str, size: int, device: str | None, officer: str | None,
                path: str, path_raw: bytes, recorded_at: str, recorded_at_corrected: str | None, important: bool,
                session_id: int, now: str, bound_officer: str | None = None, attributed_by: str | None = None,
                kind: str | None = None, span: tuple[str, str] | None = None) -> int:
    """A new footage row (unfiled); its id. ``officer``: to whom it is attributed; ``bound_officer``:
    whom the recorder (or the ingest) named; ``attributed_by``: assignment | binding; ``kind``:
    ``daemon.catalog.kinds``; ``span``: a track's own first and last time (ISO UTC), when it has them."""
    cur = conn.execute(
        "INSERT INTO footage (sha256, size, device_serial, officer_badge, source_path, source_path_raw,"
        " recorded_at, recorded_at_corrected, important, case_no, session_id, ingested_at, bound_officer, attributed_by,"
        " kind, span_start, span_end) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (sha256, size, device, officer, path, path_raw, recorded_at, recorded_at_corrected, int(important), None,
         session_id, now, bound_officer, attributed_by, kind, *(span or (None, None))))
    return int(cur.lastrowid)


def set_kind(conn: sqlite3.Connection, footage_id: int, kind: str) -> tuple[bool, str | None]:
    """Set a footage row's kind (the media probe refines it): whether it changed, and from what."""
    row = conn.execute("SELECT kind FROM footage WHERE id = ?", (footage_id,)).fetchone()
    if row is None or row[0] == kind:
        return False, None
    conn.execute("UPDATE footage SET kind = ? WHERE id = ?", (kind, footage_id))
    return True, row[0]


def add_sighting(conn: sqlite3.Connection, *, sha256: str, session_id: int, device: str | None, officer: str | None,
                 path: str, path_raw: bytes, size: int, mtime: str, transfer_key: str | None, now: str) -> None:
    conn.execute(
        "INSERT INTO sightings (sha256, session_id, device_serial, officer_badge, source_path, source_path_raw,"
        " size, mtime, transfer_key, seen_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (sha256, session_id, device, officer, path, path_raw, size, mtime, transfer_key, now))


def sightings_by_key(conn: sqlite3.Connection, keys: Sequence[str]) -> Iterable[tuple[str, str, str | None, bytes, int]]:
    """(transfer key, sha256, device, raw source path, size) of every sighting under these keys, oldest first."""
    for i in range(0, len(keys), 500):
        batch = list(keys[i:i + 500])
        yield from conn.execute(
            "SELECT transfer_key, sha256, device_serial, source_path_raw, size FROM sightings"
            f" WHERE transfer_key IN ({','.join('?' * len(batch))}) ORDER BY id", batch)
