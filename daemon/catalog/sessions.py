"""Offload sessions in the catalog: starting one (with its recorder and officer), closing the ones
whose process died, and recording how one ended. The only SQL of the ``sessions`` table.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from daemon import i18n
from daemon.catalog import devices
from daemon.catalog.db import Catalog
from daemon.clock import utcnow
from daemon.evidence import audit
from daemon.proc import alive, boot_id
from drivers.base import clock_trusted


class SessionOutcome(Protocol):
    """How an offload ended, as the session row records it (``daemon.ingest.offload.IngestResult``)."""

    session_id: int
    status: str
    message: str | None
    problems: list[Any]

    def counts(self) -> dict[str, int]: ...



def start_session(catalog: Catalog, device: str | None, officer: str | None, source: str,
                  clock_drift_s: float | None = None) -> int:
    now = utcnow()
    actor = audit.current_actor()
    with catalog.transaction() as conn:
        if officer:
            devices.upsert_officer(catalog, officer, now=now)
        if device:
            devices.upsert_device(catalog, device, officer=officer, now=now)
        _close_dead_sessions(catalog, now)
        cur = conn.execute(
            "INSERT INTO sessions (device_serial, officer_badge, source, actor, clock_drift_s, started_at, status, pid, boot_id)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            (device, officer, source, actor, clock_drift_s, now, "running", os.getpid(), boot_id()),
        )
        sid = int(cur.lastrowid)
        audit.append(catalog, "session.start", f"session:{sid}",
                     {"device": device, "officer": officer, "source": source, "clock_drift_s": clock_drift_s,
                      "clock_trusted": clock_trusted(clock_drift_s)}, actor)
    return sid


def _close_dead_sessions(catalog: Catalog, now: str) -> None:
    """Sessions still 'running' whose process is gone (crash, kill, power cut) become 'interrupted'."""
    for sid, pid, sboot in catalog.conn.execute("SELECT id, pid, boot_id FROM sessions WHERE status = 'running'").fetchall():
        if pid and alive(pid, boot=sboot or None):
            continue
        msg = "the offloading process died (crash, kill or power cut); partials resume on the next offload"
        catalog.conn.execute("UPDATE sessions SET status='interrupted', ended_at=?, message=? WHERE id=?", (now, msg, sid))
        audit.append(catalog, "session.end", f"session:{sid}", {"status": "interrupted", "message": msg})


def end_session(catalog: Catalog, result: SessionOutcome) -> None:
    c = result.counts()
    now = utcnow()
    with catalog.transaction() as conn:
        conn.execute(
            "UPDATE sessions SET ended_at=?, status=?, files_stored=?, files_duplicate=?, bytes_stored=?, problems=?, message=? WHERE id=?",
            (now, result.status, c["stored"], c["duplicates"], c["bytes_stored"], c["problems"], result.message, result.session_id),
        )
        conn.executemany(
            "INSERT INTO problems (session_id, path, path_raw, reason, reason_msg, severity, at) VALUES (?,?,?,?,?,?,?)",
            [(result.session_id, p.display, p.rel, str(p.reason), i18n.dumps(p.reason), p.severity, now)
             for p in result.problems],
        )
        audit.append(catalog, "session.end", f"session:{result.session_id}",
                     {"status": result.status, "message": result.message, **c})
