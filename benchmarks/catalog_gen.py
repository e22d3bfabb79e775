"""A catalog of a busy station, built through the catalog library the ingest uses (sessions,
objects, footage, sightings and their audit entries, each docking in a transaction of its own, as
an offload commits them) — for benchmarks that need many rows (the backup's catalog snapshot;
later the scale work). The objects themselves are not written: only the catalog is measured.

``build(data_dir, rows)``: ``rows`` footage rows from ``recorders`` recorders, ``per_dock`` files a
docking, three dockings a day, recorded times spread back from now.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from daemon.catalog import footage, sessions  # noqa: E402
from daemon.catalog.db import Catalog  # noqa: E402
from daemon.evidence import audit  # noqa: E402
from daemon.evidence.store import LocalObjectStore  # noqa: E402


@dataclass
class _Docked:
    """What ``sessions.end_session`` records of a generated docking."""

    session_id: int
    stored: int
    bytes_stored: int
    status: str = "completed"
    message: str | None = None
    problems: list[Any] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"stored": self.stored, "duplicates": 0, "bytes_stored": self.bytes_stored, "problems": 0}


def build(data_dir: Path, rows: int, recorders: int = 25, per_dock: int = 50, size: int = 200 << 20,
          durable: bool = True, objects: bool = False) -> int:
    """Add ``rows`` footage rows to the catalog in ``data_dir``; returns the number added.

    ``durable=False`` — a benchmark and test fixture only, never a station's way: SQLite does not
    fsync its commits (``PRAGMA synchronous = OFF``) while the rows are written, so that millions
    of rows take minutes rather than hours; the rows themselves are the same.
    ``objects=True``: the objects are written too (their few bytes, read-only, where the store
    keeps them; ``size`` is then theirs), so that ``verify`` finds a whole store."""
    made = 0
    store = LocalObjectStore(data_dir) if objects else None
    with Catalog(data_dir) as catalog:
        if not durable:
            catalog.conn.execute("PRAGMA synchronous = OFF")
            # 1 GiB: the indexes on SHA-256 keys take inserts all over; with less, millions of rows
            # spend their time re-reading index pages the cache just dropped
            catalog.conn.execute("PRAGMA cache_size = -1048576")
        dock = catalog.conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]  # a second call adds more
        # The last docking of this call is now: a call that adds to a catalog moves the whole
        # history back (it went on from the docks already there, into the future).
        docks = dock + -(-rows // per_dock)
        start = datetime.now(UTC) - timedelta(hours=8 * (docks // recorders + 1))
        while made < rows:
            serial = f"GEN{dock % recorders:05d}"
            badge = f"{100000 + dock % recorders}"
            when = start + timedelta(hours=8 * (dock // recorders))
            sid = sessions.start_session(catalog, serial, badge, "generated")
            n = min(per_dock, rows - made)
            with catalog.transaction() as conn:
                now = datetime.now(UTC).isoformat(timespec="seconds")
                for i in range(n):
                    content = f"{dock}:{i}".encode()
                    sha = hashlib.sha256(content).hexdigest()
                    if store is not None:
                        size = len(content)
                        obj = store.path_of(sha)
                        obj.parent.mkdir(parents=True, exist_ok=True)
                        obj.write_bytes(content)
                        obj.chmod(0o444)
                    rec = (when + timedelta(minutes=9 * i)).isoformat(timespec="seconds")
                    path = f"DCIM/100MEDIA/{serial}_{rec[:10].replace('-', '')}_{i:04d}.MP4"
                    footage.add_object(conn, sha, size, now)
                    fid = footage.add_footage(conn, sha256=sha, size=size, device=serial, officer=badge, path=path,
                                              path_raw=path.encode(), recorded_at=rec, recorded_at_corrected=rec,
                                              important=False, session_id=sid, now=now, bound_officer=badge,
                                              attributed_by="binding", kind="video")
                    footage.add_sighting(conn, sha256=sha, session_id=sid, device=serial, officer=badge, path=path,
                                         path_raw=path.encode(), size=size, mtime=rec, transfer_key=None, now=now)
                    audit.append(catalog, "object.ingest", sha, {
                        "session": sid, "device": serial, "officer": badge, "bound_officer": badge,
                        "attributed_by": "binding", "path": path, "size": size, "important": False,
                        "footage": fid, "recorded_at": rec, "kind": "video"})
            sessions.end_session(catalog, _Docked(sid, n, n * size))
            made += n
            dock += 1
    return made


def add_cases(data_dir: Path, cases: int, durable: bool = True, seed: int = 19) -> int:
    """Open cases (``GEN-000001`` …) until the catalog holds ``cases`` of them, through the library
    as `case open` does (``register.open_case``, which files their footage): each with one handler,
    a generated officer with footage, and a window of 2 to 8 hours somewhere in the footage's
    history, opened in time order. Returns how many were opened. ``durable=False``: as ``build``."""
    import random

    from daemon.cases import register

    rng = random.Random(seed)
    with Catalog(data_dir) as catalog:
        if not durable:
            catalog.conn.execute("PRAGMA synchronous = OFF")
            catalog.conn.execute("PRAGMA cache_size = -262144")
        have = catalog.conn.execute("SELECT COUNT(*) FROM cases WHERE case_no LIKE 'GEN-%'").fetchone()[0]
        badges = [r[0] for r in catalog.conn.execute("SELECT DISTINCT officer_badge FROM sessions"
                                                     " WHERE officer_badge IS NOT NULL")]
        first, last = catalog.conn.execute("SELECT MIN(recorded_at), MAX(recorded_at) FROM footage").fetchone()
        if not badges or first is None or have >= cases:
            return 0
        t0, t1 = datetime.fromisoformat(first), datetime.fromisoformat(last)
        span = (t1 - t0).total_seconds()
        starts = sorted(t0 + timedelta(seconds=rng.uniform(0, span)) for _ in range(cases - have))
        for i, start in enumerate(starts, start=have + 1):
            end = start + timedelta(hours=rng.uniform(2, 8))
            register.open_case(catalog, {"case_no": f"GEN-{i:06d}", "party": "甲", "handlers": [rng.choice(badges)],
                                         "opened_at": start.isoformat(), "closed_at": end.isoformat()}, "UTC")
    return cases - have


def add_health(data_dir: Path, durable: bool = True) -> int:
    """One health record for each generated docking that has none yet (``daemon.health.record``, as
    a dock writes it: the alerts it raises too), every tenth with a low battery; returns how many.
    ``durable=False``: without fsync, as ``build``."""
    from daemon import health
    from daemon.config import HealthConfig
    from drivers.base import Battery, Storage

    cfg, made = HealthConfig(), 0
    with Catalog(data_dir) as catalog:
        if not durable:
            catalog.conn.execute("PRAGMA synchronous = OFF")
        docks = catalog.conn.execute(
            "SELECT s.id, s.device_serial, s.officer_badge FROM sessions s WHERE s.device_serial IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM health h WHERE h.session_id = s.id) ORDER BY s.id").fetchall()
        for sid, serial, badge in docks:
            reading = health.HealthReading(serial, model="GEN-1", firmware="1.0", badge=badge,
                                           battery=Battery(percent=10 if sid % 10 == 0 else 80, full_charge_mah=3000),
                                           storage=Storage(total_bytes=64 << 30, free_bytes=32 << 30, fs_state="clean"),
                                           clock_drift_s=1.0, station_clock="synced")
            health.record(catalog, cfg, reading, session_id=sid)
            made += 1
    return made
