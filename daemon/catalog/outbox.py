"""The alert kinds a person can be told about, and the outbox their raising and clearing writes.

Every alert of the station has a row of its own — a recorder's in ``health_alerts``
(daemon/health.py), a job's or a backup target's in ``job_alerts`` (daemon/schedule/runs.py), a
refused USB device in ``alerts_usb`` (daemon/dock/unknown.py). Where such a row is *inserted*
(raised) or *cleared*, the same transaction appends one ``notify_outbox`` row here — never
where an open alert is only brought up to date — so a recorder docked ten times with a low
battery is one message when it is raised and one when it clears, and a crash between the alert
and its message loses neither. The sender (daemon/notify) works the outbox in its own thread.

``KINDS`` is the one table of kinds (a channel's ``alerts`` names kinds or their groups);
``job_kind`` names a job alert's kind. A refused USB device has no clear: it is told once per
device and ``USB_QUIET_HOURS`` (someone plugging the same stick again and again is one message).
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta

from daemon.clock import from_iso, iso
from daemon.i18n import N_, Message, dumps

# kind -> (group, label). Health kinds are daemon.health.RULES' names (a test checks they agree).
KINDS: dict[str, tuple[str, str]] = {
    "battery_low": ("health", N_("battery low")),
    "storage_full": ("health", N_("card nearly full")),
    "clock_drift": ("health", N_("clock drift")),
    "clock_invalid": ("health", N_("clock not trusted")),
    "fs_errors": ("health", N_("card filesystem errors")),
    "capacity_fade": ("health", N_("battery capacity fading")),
    "bad_reply": ("health", N_("wrong replies")),
    "not_docked": ("health", N_("recorder not docked")),  # daemon.health.check_not_docked: of time, not a reading
    "job_failed": ("jobs", N_("job failed")),
    "job_missed": ("jobs", N_("job did not run")),
    "backup_run_failed": ("backup", N_("backup failed")),
    "backup_verify_failed": ("backup", N_("backup verify failed")),
    "backup_verify_damaged": ("backup", N_("damaged backup copy")),
    "backup_lag": ("backup", N_("backup lagging")),
    "usb_refused": ("usb", N_("unknown USB device refused")),
}
GROUPS = ("all", "health", "jobs", "backup", "usb")
TEST_KIND = "test"
USB_QUIET_HOURS = 24
BACKUP_JOB_PREFIX = "backup:"  # daemon.backup.run.ALERT_JOB: backup alerts are job alerts of backup:<target>


def job_kind(job: str, kind: str) -> str:
    """The kind of a ``job_alerts`` row: ``backup_<kind>`` for a backup target's, ``job_<kind>`` else."""
    if job.startswith(BACKUP_JOB_PREFIX):
        return "backup_" + kind.replace("-", "_")
    return "job_" + kind.replace("-", "_")


def wanted(kind: str, alerts: list[str] | tuple[str, ...]) -> bool:
    """Does a channel whose ``alerts`` are these kinds and groups want an alert of ``kind``?"""
    if kind == TEST_KIND:
        return True
    group = KINDS.get(kind, ("", ""))[0]
    return "all" in alerts or kind in alerts or group in alerts


def enqueue(conn: sqlite3.Connection, kind: str, state: str, message: Message | str, at: str, *,
            serial: str | None = None, subject: str | None = None, alert_ref: str | None = None) -> int:
    """One outbox row; call inside the transaction that raised or cleared the alert."""
    cur = conn.execute(
        "INSERT INTO notify_outbox (at, kind, state, serial, subject, message, message_msg, alert_ref)"
        " VALUES (?,?,?,?,?,?,?,?)", (at, kind, state, serial, subject, str(message), dumps(message), alert_ref))
    return int(cur.lastrowid)


def job_alerts_cleared(conn: sqlite3.Connection, at: str, where: str, params: tuple[object, ...]) -> None:
    """Clear the open ``job_alerts`` rows ``where`` names, each with its outbox row."""
    rows = conn.execute(f"SELECT id, job, kind, message, message_msg FROM job_alerts WHERE cleared_at IS NULL AND {where}",
                        params).fetchall()
    for aid, job, kind, english, stored in rows:
        enqueue(conn, job_kind(job, kind), "cleared", _stored(english, stored), at,
                subject=job, alert_ref=f"job_alerts:{aid}")


def usb_refused(conn: sqlite3.Connection, row_id: int, usb_id: str, usb_serial: str | None,
                message: Message, at: str) -> None:
    """A refused USB device's outbox row, unless the same device was refused in the last
    ``USB_QUIET_HOURS`` (its earlier row already told someone)."""
    since = iso(from_iso(at) - timedelta(hours=USB_QUIET_HOURS))
    earlier = conn.execute("SELECT 1 FROM alerts_usb WHERE id != ? AND usb_id = ? AND usb_serial IS ? AND at >= ?",
                           (row_id, usb_id, usb_serial, since)).fetchone()
    if earlier is None:
        enqueue(conn, "usb_refused", "raised", message, at, subject=usb_id, alert_ref=f"alerts_usb:{row_id}")


def _stored(english: str, stored: str | None) -> Message | str:
    import json

    if stored:
        try:
            return Message.from_json(json.loads(stored))
        except (ValueError, KeyError, TypeError):
            pass
    return english
