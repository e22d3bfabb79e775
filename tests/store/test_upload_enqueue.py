"""The upload queue's look for objects without an upload row (``enqueue_missing``): an anti-join
over every object, which the daemon's upload pass would otherwise run every few seconds on a
catalog of millions. It runs again only when an object was added since this process last looked,
and never misses one, also when a deleted top rowid is taken again. Real SQLite, real ingests."""

from __future__ import annotations

import hashlib
from pathlib import Path

from support.filing_helpers import ingest_clips, t

from daemon.catalog.db import Catalog
from daemon.catalog.footage import add_object
from daemon.store.uploads import enqueue_missing


def scans(catalog: Catalog) -> list[str]:
    """Start recording the anti-joins this connection runs."""
    seen: list[str] = []
    catalog.conn.set_trace_callback(lambda sql: seen.append(sql) if "INSERT INTO store_uploads" in sql else None)
    return seen


def waiting(catalog: Catalog) -> set[str]:
    return {r[0] for r in catalog.conn.execute("SELECT sha256 FROM store_uploads WHERE state = 'waiting'")}


def test_the_look_runs_only_when_an_object_was_added_and_misses_none(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = ingest_clips(data, tmp_path / "a", {"a1.mp4": t("2026-11-01 08:00:00"), "a2.mp4": t("2026-11-01 09:00:00")})
    with Catalog(data) as c:
        seen = scans(c)
        assert enqueue_missing(c) == 2 and len(seen) == 1
        assert waiting(c) == {x.sha256 for x in first.tasks}
        assert enqueue_missing(c) == 0 and len(seen) == 1  # nothing new: no scan
    # an offload by another connection (the dock, `evidock ingest`) is seen at the next pass
    second = ingest_clips(data, tmp_path / "b", {"b1.mp4": t("2026-11-02 08:00:00")}, device="ZFY-2")
    with Catalog(data) as c:
        seen = scans(c)
        assert enqueue_missing(c) == 1 and len(seen) == 1
        assert second.tasks[0].sha256 in waiting(c)
        assert enqueue_missing(c) == 0 and len(seen) == 1
        # the top row deleted (retention, before its upload) and its rowid taken again by other bytes
        x, y = (hashlib.sha256(b).hexdigest() for b in (b"x", b"y"))
        with c.transaction() as conn:
            add_object(conn, x, 1, "2026-11-03T00:00:00.000000+00:00")
        assert enqueue_missing(c) == 1 and x in waiting(c)
        top = c.conn.execute("SELECT MAX(rowid) FROM objects").fetchone()[0]
        with c.transaction() as conn:
            conn.execute("DELETE FROM objects WHERE sha256 = ?", (x,))
        assert enqueue_missing(c) == 0 and x not in waiting(c)  # its waiting row goes with it
        with c.transaction() as conn:
            add_object(conn, y, 1, "2026-11-03T00:00:01.000000+00:00")
        assert c.conn.execute("SELECT rowid FROM objects WHERE sha256 = ?", (y,)).fetchone()[0] == top
        assert enqueue_missing(c) == 1 and y in waiting(c)
        # and the same bytes again at the same rowid: a new stored_at tells them apart
        with c.transaction() as conn:
            conn.execute("DELETE FROM store_uploads WHERE sha256 = ?", (y,))
            conn.execute("DELETE FROM objects WHERE sha256 = ?", (y,))
        enqueue_missing(c)
        with c.transaction() as conn:
            add_object(conn, y, 1, "2026-11-03T00:00:02.000000+00:00")
        assert enqueue_missing(c) == 1 and y in waiting(c)
    # a new process (here: the module's memory cleared) looks once at its first pass
    from daemon.store import uploads

    uploads._newest_seen.clear()
    with Catalog(data) as c:
        seen = scans(c)
        assert enqueue_missing(c) == 0 and len(seen) == 1
