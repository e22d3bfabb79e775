"""The record of job runs and job alerts in the catalog, and which job was missed.

Each run is a ``job_runs`` row from its start to its end (result, counts, error), each start
and end an audit entry (``job.start`` / ``job.end``). Whether a job was missed while the
station was off is worked out here from that record — the job's last start against its
schedule — because APScheduler 3's in-memory job store forgets what it missed.

A job that failed, or did not start when due, is an open ``job_alerts`` row until a later run
of it succeeds: ``open_job_alerts`` is what ``status`` (and ``health --attention``) show.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from daemon.catalog import outbox
from daemon.catalog.db import Catalog
from daemon.clock import from_iso, iso
from daemon.evidence import audit
from daemon.i18n import N_, Message, dumps
from daemon.proc import alive, boot_id

RESULTS = ("running", "ok", "warning", "failed", "interrupted")
SINCE_KEY = "schedule.since"  # when this station's scheduler first ran (meta): no job is due before


# -- which job is due ---------------------------------------------------------------------------

def next_due(trigger: CronTrigger, after: datetime) -> datetime | None:
    """The first time the schedule names at or after ``after`` (None: never again)."""
    return trigger.get_next_fire_time(None, after)


def missed_due(trigger: CronTrigger, last_start: datetime | None, since: datetime, now: datetime) -> datetime | None:
    """The due time a job missed, if it did: the first time its schedule named after its last
    start (or, never run, after ``since``: when the station began to schedule) that is already
    past at ``now``. However many times it was missed, it is one run to make up."""
    anchor = max(last_start, since) if last_start else since
    due = next_due(trigger, anchor + timedelta(microseconds=1))
    return due if due is not None and due <= now else None


def schedule_since(catalog: Catalog, now: datetime) -> datetime:
    """When this station began to schedule jobs (recorded at its first start)."""
    value = catalog.get_meta(SINCE_KEY)
    if value is None:
        catalog.set_meta(SINCE_KEY, iso(now))
        return now
    return from_iso(value)


# -- the record of runs ---------------------------------------------------------------------------

def _close_dead_runs(catalog: Catalog, now: str) -> None:
    """Runs still 'running' whose process is gone (crash, kill, power cut) become 'interrupted'."""
    conn = catalog.conn
    for rid, job, pid, boot in conn.execute("SELECT id, job, pid, boot_id FROM job_runs WHERE result = 'running'").fetchall():
        if pid and alive(pid, boot=boot or None):
            continue  # still running (this process's own runs count as alive)
        msg = Message(N_("the process running job {job} died (crash, kill or power cut)"), job=job)
        conn.execute("UPDATE job_runs SET result='interrupted', ended_at=?, error=?, error_msg=? WHERE id=?",
                     (now, str(msg), dumps(msg), rid))
        audit.append(catalog, "job.end", f"job:{job}", {"run": rid, "result": "interrupted"})


def record_start(catalog: Catalog, job: str, trigger: str, due: datetime | None, now: datetime) -> int:
    """A run of ``job`` starts: its row, and the audit entry ``job.start``."""
    at = iso(now)
    with catalog.transaction() as conn:
        _close_dead_runs(catalog, at)
        cur = conn.execute("INSERT INTO job_runs (job, trigger, due_at, started_at, result, pid, boot_id)"
                           " VALUES (?,?,?,?,?,?,?)",
                           (job, trigger, iso(due) if due else None, at, "running", os.getpid(), boot_id()))
        rid = int(cur.lastrowid)
        audit.append(catalog, "job.start", f"job:{job}", {"run": rid, "trigger": trigger,
                                                          "due": iso(due) if due else None})
    return rid


def record_end(catalog: Catalog, run_id: int, job: str, result: str, counts: dict[str, Any],
               error: Message | None, now: datetime) -> None:
    """A run ends: its row, the audit entry ``job.end``, and the job's alerts (a failure raises
    one, a success clears them)."""
    at = iso(now)
    with catalog.transaction() as conn:
        conn.execute("UPDATE job_runs SET ended_at=?, result=?, counts=?, error=?, error_msg=? WHERE id=?",
                     (at, result, json.dumps(counts, sort_keys=True), str(error) if error else None,
                      dumps(error), run_id))
        audit.append(catalog, "job.end", f"job:{job}", {"run": run_id, "result": result, "counts": counts,
                                                        "error": str(error) if error else None})
        if result == "failed":
            _raise(catalog, job, "failed", error or Message(N_("job {job} failed"), job=job), at, run_id)
        elif result in ("ok", "warning"):
            outbox.job_alerts_cleared(conn, at, "job = ?", (job,))
            conn.execute("UPDATE job_alerts SET cleared_at=?, cleared_run_id=? WHERE job=? AND cleared_at IS NULL",
                         (at, run_id, job))


def raise_missed(catalog: Catalog, job: str, due: datetime, now: datetime) -> None:
    """Job ``job`` did not start when it was due at ``due``: an alert (once; kept up to date)."""
    # ``due`` comes from the job's trigger, in the station's time zone: shown as people read it
    msg = Message(N_("job {job} did not run when it was due at {due}"), job=job, due=due.strftime("%Y-%m-%d %H:%M"))
    with catalog.transaction():
        _raise(catalog, job, "missed", msg, iso(now), None)


def _raise(catalog: Catalog, job: str, kind: str, msg: Message, at: str, run_id: int | None) -> None:
    conn = catalog.conn
    row = conn.execute("SELECT id FROM job_alerts WHERE job=? AND kind=? AND cleared_at IS NULL", (job, kind)).fetchone()
    text, stored = str(msg), dumps(msg)
    if row:
        conn.execute("UPDATE job_alerts SET message=?, message_msg=?, last_seen_at=?, run_id=COALESCE(?, run_id) "
                     "WHERE id=?", (text, stored, at, run_id, row[0]))
    else:
        cur = conn.execute("INSERT INTO job_alerts (job, kind, message, message_msg, run_id, raised_at, last_seen_at)"
                           " VALUES (?,?,?,?,?,?,?)", (job, kind, text, stored, run_id, at, at))
        outbox.enqueue(conn, outbox.job_kind(job, kind), "raised", msg, at, subject=job,
                       alert_ref=f"job_alerts:{cur.lastrowid}")


# -- reading ------------------------------------------------------------------------------------

def _run_row(r: dict[str, Any]) -> dict[str, Any]:
    r = dict(r)
    r["counts"] = json.loads(r["counts"]) if r.get("counts") else {}
    msg = r.pop("error_msg", None)
    r["error_message"] = Message.from_json(json.loads(msg)) if msg else None
    return r


def last_run(catalog: Catalog, job: str) -> dict[str, Any] | None:
    """The newest run of ``job`` (its row, ``counts`` parsed), or None."""
    rows = list(catalog.db.query("SELECT * FROM job_runs WHERE job = ? ORDER BY id DESC LIMIT 1", [job]))
    return _run_row(rows[0]) if rows else None


def last_start(catalog: Catalog, job: str) -> datetime | None:
    row = catalog.conn.execute("SELECT MAX(started_at) FROM job_runs WHERE job = ?", (job,)).fetchone()
    return from_iso(row[0]) if row and row[0] else None


def runs(catalog: Catalog, job: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The newest runs, of one job or all, newest first."""
    where, params = (" WHERE job = ?", [job]) if job else ("", [])
    return [_run_row(r) for r in catalog.db.query(f"SELECT * FROM job_runs{where} ORDER BY id DESC LIMIT ?",
                                                  params + [limit])]


def open_job_alerts(catalog: Catalog, job: str | None = None) -> list[dict[str, Any]]:
    """Open job alerts (a job that failed or did not run when due), oldest first.

    Each: ``job``, ``kind`` (failed | missed), ``message`` (English, as in JSON), ``text`` (a
    ``Message`` for people), ``raised_at``, ``last_seen_at``, ``run_id``. What ``evidock status``
    and ``health --attention`` show beside the recorders' alerts.
    """
    where, params = (" AND job = ?", [job]) if job else ("", [])
    out = []
    for r in catalog.db.query(f"SELECT * FROM job_alerts WHERE cleared_at IS NULL{where} ORDER BY id", params):
        stored = r.pop("message_msg", None)
        r["text"] = Message.from_json(json.loads(stored)) if stored else r["message"]
        for k in ("cleared_at", "cleared_run_id"):
            r.pop(k, None)
        out.append(r)
    return out


def offloads_running(catalog: Catalog) -> bool:
    """Is an offload running right now, in any process? A session still 'running' whose process
    is alive on this boot (``evidock ingest`` in another process, the daemon's own docks)."""
    for pid, boot in catalog.conn.execute("SELECT pid, boot_id FROM sessions WHERE status = 'running'").fetchall():
        if pid and alive(pid, boot=boot or None):
            return True
    return False


def raise_alert(catalog: Catalog, job: str, kind: str, msg: Message, now: datetime) -> None:
    """An alert of another part of the station under ``job`` (``backup:<target>``: lag, damaged,
    failed), kept up to date while open; shown with the job alerts. Call inside or outside a
    transaction."""
    if catalog.conn.in_transaction:
        _raise(catalog, job, kind, msg, iso(now), None)
        return
    with catalog.transaction():
        _raise(catalog, job, kind, msg, iso(now), None)


def clear_alerts(catalog: Catalog, job: str, kind: str, now: datetime) -> None:
    """The condition behind ``job``'s ``kind`` alert is over."""
    outbox.job_alerts_cleared(catalog.conn, iso(now), "job = ? AND kind = ?", (job, kind))
    catalog.conn.execute("UPDATE job_alerts SET cleared_at=? WHERE job=? AND kind=? AND cleared_at IS NULL",
                         (iso(now), job, kind))
