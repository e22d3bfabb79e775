"""Device health: one record per dock, kept as history, and the alerts its thresholds raise.

Regulation art. 15: units maintain their recorders and check battery capacity and storage
space. Each dock writes a ``health`` row (battery, storage, clock drift, filesystem state,
firmware, with the time and, once the offload starts, its session) — rows are only ever added,
never overwritten, so trends can be drawn. The alert rules are one table (``RULES``); each rule
looks at the new record (and the recorder's own history) and says raise, clear or unknown.
An alert stays open, one per recorder and kind, until a later dock clears it; "unknown" (the
value was not reported this time) leaves it as it is.

Capacity fade: a battery's full-charge capacity (what the fuel gauge says a full charge holds
now) is compared with the median of the recorder's own earlier readings (the last
``capacity_fade_window``, once there are ``capacity_fade_min_history``); below it by more than
``capacity_fade_percent`` raises the alert. The median, not the best reading, so that one
optimistic reading does not raise alerts for ever after.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from daemon import stationclock
from daemon.catalog import outbox
from daemon.catalog.db import Catalog
from daemon.clock import utcnow
from daemon.config import HealthConfig
from daemon.display import local_time, shown
from daemon.i18n import N_, Message, dumps, is_message, stored
from drivers.base import CLOCK_TRUST_LIMIT_S, Battery, Storage, clock_trusted


@dataclass
class Note:
    """Something a dock could not read: not reported by the model, invalid, or failed."""

    what: str
    status: str  # not_reported | invalid | failed
    message: str  # English (logs, JSON); given a message or error, its ``msgid`` is kept in ``msg``
    msg: str | None = None  # the message as JSON (``daemon.i18n.dumps``), to show it translated

    def __post_init__(self) -> None:
        if is_message(self.message):
            self.msg = dumps(self.message)
            self.message = str(self.message)

    def to_json(self) -> dict[str, str]:
        return {"what": self.what, "status": self.status, "message": self.message}

    def stored_json(self) -> dict[str, str | None]:
        """As kept in ``health.notes``: with the message's id and params beside the English."""
        return {**self.to_json(), "msg": self.msg}

    def text(self) -> str:
        """The message in the reader's language."""
        return stored(self.message, self.msg)

    def as_message(self) -> Message | str:
        return Message.from_json(json.loads(self.msg)) if self.msg else self.message


@dataclass
class HealthReading:
    """What one dock measured; ``None`` where it was not reported or could not be read."""

    serial: str
    model: str | None = None
    firmware: str | None = None
    badge: str | None = None
    battery: Battery | None = None
    storage: Storage | None = None
    clock_drift_s: float | None = None
    clock_set: bool = False
    notes: list[Note] = field(default_factory=list)
    # the station's own clock when the drift was measured (daemon.stationclock): synced | unsynced | unknown;
    # None: read at record time
    station_clock: str | None = None


# -- the alert rules -------------------------------------------------------------------------

UNKNOWN = None  # the rule cannot tell this time: leave its alert as it is
CLEAR = ()  # the rule holds: clear its open alert


@dataclass(frozen=True)
class Raise:
    value: float
    threshold: float
    message: Message  # str() English (the ``message`` column), kept whole in ``message_msg``


Verdict = Raise | tuple[()] | None
History = list[dict[str, Any]]


def _way(drift_s: float) -> Message:
    return Message(N_("ahead of")) if drift_s > 0 else Message(N_("behind"))


def _battery_low(r: HealthReading, h: History, c: HealthConfig) -> Verdict:
    if r.battery is None:
        return UNKNOWN
    if r.battery.percent < c.battery_low_percent:
        return Raise(r.battery.percent, c.battery_low_percent,
                     Message(N_("battery at {percent} % when docked (alert below {limit} %)"),
                             percent=r.battery.percent, limit=c.battery_low_percent))
    return CLEAR


def _storage_full(r: HealthReading, h: History, c: HealthConfig) -> Verdict:
    if r.storage is None:
        return UNKNOWN
    used = 100 * r.storage.used_fraction
    if used > c.storage_full_percent:
        return Raise(round(used, 1), c.storage_full_percent,
                     Message(N_("card {used:.1f} % used (alert above {limit:g} %): offload and wipe it"),
                             used=used, limit=c.storage_full_percent))
    return CLEAR


def _clock_drift(r: HealthReading, h: History, c: HealthConfig) -> Verdict:
    if r.clock_drift_s is None:
        return UNKNOWN
    if abs(r.clock_drift_s) > c.clock_drift_s:
        return Raise(round(r.clock_drift_s, 3), c.clock_drift_s,
                     Message(N_("clock {seconds:.1f} s {way} the station's (alert beyond ±{limit:g} s); {set}{station}"),
                             seconds=abs(r.clock_drift_s), way=_way(r.clock_drift_s), limit=c.clock_drift_s,
                             set=Message(N_("it was set at this dock")) if r.clock_set
                             else Message(N_("it could NOT be set at this dock")),
                             station=Message(N_(" (measured against an unsynchronised station clock)"))
                             if r.station_clock == "unsynced" else ""))
    return CLEAR


def _clock_invalid(r: HealthReading, h: History, c: HealthConfig) -> Verdict:
    """A clock a year or more off was set wrong: its file times are not used for filing."""
    if r.clock_drift_s is None:
        return UNKNOWN
    if not clock_trusted(r.clock_drift_s):
        return Raise(round(r.clock_drift_s, 3), CLOCK_TRUST_LIMIT_S,
                     Message(N_("recorder {serial}: clock {years:.1f} years {way} the station's (more than {days} days: "
                                "set wrong, not drifting), so the recording times of the files offloaded at this dock "
                                "are not trusted and they are not filed automatically: file them by hand "
                                "(`evidock footage list --unfiled`, `evidock footage file`){unset}"),
                             serial=shown(r.serial), years=abs(r.clock_drift_s) / 86400 / 365.25,
                             way=_way(r.clock_drift_s), days=CLOCK_TRUST_LIMIT_S // 86400,
                             unset="" if r.clock_set else Message(
                                 N_("; its clock could NOT be set at this dock — set it before it records again"))))
    return CLEAR


def _fs_errors(r: HealthReading, h: History, c: HealthConfig) -> Verdict:
    if r.storage is None or r.storage.fs_state is None:
        return UNKNOWN
    if r.storage.fs_state == "errors" and c.fs_errors:
        return Raise(1, 0, Message(N_("the card's filesystem has errors ({detail}); offload it, then have the card "
                                      "checked or replaced"),
                                   detail=r.storage.fs_detail or Message(N_("reported by the recorder"))))
    return CLEAR


def _capacity_fade(r: HealthReading, h: History, c: HealthConfig) -> Verdict:
    if r.battery is None or r.battery.full_charge_mah is None:
        return UNKNOWN
    earlier = [row["full_charge_mah"] for row in h if row["full_charge_mah"] is not None][: c.capacity_fade_window]
    if len(earlier) < c.capacity_fade_min_history:
        return UNKNOWN
    baseline = statistics.median(earlier)
    floor = baseline * (1 - c.capacity_fade_percent / 100)
    if r.battery.full_charge_mah < floor:
        return Raise(r.battery.full_charge_mah, round(floor, 1),
                     Message(N_("battery capacity faded: a full charge holds {mah} mAh, its own median over {n} earlier "
                                "docks is {median:g} mAh (alert below {floor:.0f} mAh): replace the battery"),
                             mah=r.battery.full_charge_mah, n=len(earlier), median=baseline, floor=floor))
    return CLEAR


def _bad_reply(r: HealthReading, h: History, c: HealthConfig) -> Verdict:
    bad = [n for n in r.notes if n.status in ("invalid", "failed")]
    if bad:
        listed: Message | str = ""
        for n in reversed(bad):
            one = Message(N_("{what}: {message}"), what=n.what, message=n.as_message())
            listed = Message(N_("{first}; {rest}"), first=one, rest=listed) if listed else one
        return Raise(len(bad), 0, Message(N_("the recorder answered wrongly: {notes}"), notes=listed))
    return CLEAR


RULES: tuple[tuple[str, Callable[[HealthReading, History, HealthConfig], Verdict]], ...] = (
    ("battery_low", _battery_low),
    ("storage_full", _storage_full),
    ("clock_drift", _clock_drift),
    ("clock_invalid", _clock_invalid),
    ("fs_errors", _fs_errors),
    ("capacity_fade", _capacity_fade),
    ("bad_reply", _bad_reply),
)


# -- writing ---------------------------------------------------------------------------------


def record(catalog: Catalog, config: HealthConfig, r: HealthReading, session_id: int | None = None) -> tuple[int, list[dict[str, Any]]]:
    """Add one health record and update the alerts; returns its id and the recorder's open alerts."""
    now = utcnow()
    b, s = r.battery, r.storage
    if r.station_clock is None and r.clock_drift_s is not None:
        r.station_clock = stationclock.read().state
    with catalog.transaction() as conn:
        # Only what the rules look at (the capacity fade's window of earlier readings), newest
        # first through the (device_serial, id) index: not years of history at every dock.
        history = [{"full_charge_mah": row[0]} for row in conn.execute(
            "SELECT full_charge_mah FROM health WHERE device_serial = ? AND full_charge_mah IS NOT NULL"
            " ORDER BY id DESC LIMIT ?", (r.serial, config.capacity_fade_window))]
        cur = conn.execute(
            "INSERT INTO health (device_serial, session_id, at, model, firmware, officer_badge, battery_percent,"
            " battery_voltage_mv, battery_charging, battery_cycles, full_charge_mah, design_mah, storage_total,"
            " storage_free, fs_state, fs_detail, clock_drift_s, clock_set, notes, station_clock)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (r.serial, session_id, now, r.model, r.firmware, r.badge,
             b.percent if b else None, b.voltage_mv if b else None,
             None if b is None or b.charging is None else int(b.charging), b.cycles if b else None,
             b.full_charge_mah if b else None, b.design_mah if b else None,
             s.total_bytes if s else None, s.free_bytes if s else None, s.fs_state if s else None,
             s.fs_detail if s else None, r.clock_drift_s, int(r.clock_set),
             json.dumps([n.stored_json() for n in r.notes], ensure_ascii=False), r.station_clock),
        )
        hid = int(cur.lastrowid)
        for kind, rule in RULES:
            verdict = rule(r, history, config)
            if verdict is UNKNOWN:
                continue
            open_row = conn.execute("SELECT id, message, message_msg FROM health_alerts WHERE device_serial = ? AND kind = ?"
                                    " AND cleared_at IS NULL", (r.serial, kind)).fetchone()
            if isinstance(verdict, Raise):
                if open_row:
                    conn.execute("UPDATE health_alerts SET message=?, message_msg=?, value=?, threshold=?, last_health_id=?,"
                                 " last_seen_at=? WHERE id=?",
                                 (str(verdict.message), dumps(verdict.message), verdict.value, verdict.threshold, hid, now, open_row[0]))
                else:
                    cur = conn.execute(
                        "INSERT INTO health_alerts (device_serial, kind, message, message_msg, value, threshold, health_id,"
                        " last_health_id, raised_at, last_seen_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (r.serial, kind, str(verdict.message), dumps(verdict.message), verdict.value, verdict.threshold, hid, hid, now, now))
                    # raised: told once (daemon/catalog/outbox.py); an open alert brought up to date is not
                    outbox.enqueue(conn, kind, "raised", verdict.message, now, serial=r.serial,
                                   alert_ref=f"health_alerts:{cur.lastrowid}")
            elif open_row:
                conn.execute("UPDATE health_alerts SET cleared_at=?, cleared_health_id=? WHERE id=?", (now, hid, open_row[0]))
                outbox.enqueue(conn, kind, "cleared", alert_message({"message": open_row[1], "message_msg": open_row[2]}),
                               now, serial=r.serial, alert_ref=f"health_alerts:{open_row[0]}")
        # docked again: a not-docked alert (``check_not_docked``) is over
        for aid, english, stored in conn.execute(
                "SELECT id, message, message_msg FROM health_alerts WHERE device_serial = ? AND kind = ?"
                " AND cleared_at IS NULL", (r.serial, NOT_DOCKED)).fetchall():
            conn.execute("UPDATE health_alerts SET cleared_at=?, cleared_health_id=? WHERE id=?", (now, hid, aid))
            outbox.enqueue(conn, NOT_DOCKED, "cleared", alert_message({"message": english, "message_msg": stored}),
                           now, serial=r.serial, alert_ref=f"health_alerts:{aid}")
    return hid, open_alerts(catalog, r.serial)


NOT_DOCKED = "not_docked"  # an alert of time, not of a reading: raised by check_not_docked, cleared by a dock


def check_not_docked(catalog: Catalog, config: HealthConfig, tz: str, now: str | None = None) -> dict[str, int]:
    """Raise a ``not_docked`` alert for each recorder docked here (or registered) and not docked
    for ``not_docked_hours`` — the commonest way footage never reaches the store — told once
    (``daemon.catalog.outbox``); the recorder's next dock clears it (``record``). The scheduler's
    ``not-docked`` job runs this every hour."""
    from datetime import datetime, timedelta

    at = now or utcnow()
    cutoff = (datetime.fromisoformat(at) - timedelta(hours=config.not_docked_hours)).isoformat(timespec="microseconds")
    raised = 0
    # One query for the recorders that may need the alert (none open yet), not the whole listing
    # with each one's last health and alerts: the daemon runs this every 10 minutes.
    candidates = catalog.conn.execute(
        "SELECT d.serial, d.officer_badge, o.name, d.registered_at,"
        " (SELECT MAX(at) FROM dock_events e WHERE e.serial = d.serial),"
        " EXISTS (SELECT 1 FROM sessions s WHERE s.device_serial = d.serial)"
        " FROM devices d LEFT JOIN officers o ON o.badge = d.officer_badge"
        " WHERE NOT EXISTS (SELECT 1 FROM health_alerts a WHERE a.device_serial = d.serial AND a.kind = ?"
        " AND a.cleared_at IS NULL) ORDER BY d.serial", (NOT_DOCKED,)).fetchall()
    recorders = int(catalog.conn.execute("SELECT COUNT(*) FROM devices").fetchone()[0])
    with catalog.transaction() as conn:
        for serial, badge, name, registered_at, last_docked, offloaded in candidates:
            # a recorder only ever offloaded by hand has no dock to be late for (seen as "manual")
            since = last_docked or (registered_at if not offloaded else None)
            if since is None or since >= cutoff:
                continue
            msg = Message(N_("recorder {serial} ({officer}) has not been docked since {since}, more than "
                             "health.not_docked_hours = {hours}: find it and dock it, or its footage never reaches "
                             "the store"), serial=serial, officer=name or badge or "-",
                          since=local_time(since, tz), hours=config.not_docked_hours)
            cur = conn.execute(
                "INSERT INTO health_alerts (device_serial, kind, message, message_msg, threshold, raised_at, last_seen_at)"
                " VALUES (?,?,?,?,?,?,?)", (serial, NOT_DOCKED, str(msg), dumps(msg), config.not_docked_hours, at, at))
            outbox.enqueue(conn, NOT_DOCKED, "raised", msg, at, serial=serial,
                           alert_ref=f"health_alerts:{cur.lastrowid}")
            raised += 1
    return {"recorders": recorders, "raised": raised}


def attach_session(catalog: Catalog, health_id: int, session_id: int) -> None:
    """Link a dock's health record to the offload session that followed it."""
    with catalog.transaction() as conn:
        conn.execute("UPDATE health SET session_id = ? WHERE id = ?", (session_id, health_id))


# -- reading ---------------------------------------------------------------------------------


def _row(r: dict[str, Any]) -> dict[str, Any]:
    r = dict(r)
    if "notes" in r:
        r["notes"] = json.loads(r["notes"] or "[]")
    if r.get("battery_charging") is not None:
        r["battery_charging"] = bool(r["battery_charging"])
    if "clock_set" in r:
        r["clock_set"] = bool(r["clock_set"])
    if r.get("storage_total"):
        r["storage_used_percent"] = round(100 * (1 - (r["storage_free"] or 0) / r["storage_total"]), 1)
    return r


def history(catalog: Catalog, serial: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Health records, newest first, of one recorder or of all; at most ``limit`` per recorder."""
    where, params = (" WHERE device_serial = ?", [serial]) if serial else ("", [])
    sql = ("SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY device_serial ORDER BY id DESC) AS nth "
           f"FROM health{where})" + (" WHERE nth <= ?" if limit else "") + " ORDER BY id DESC")
    rows = [_row(r) for r in catalog.db.query(sql, params + ([limit] if limit else []))]
    for r in rows:
        del r["nth"]
    return rows


def open_alerts(catalog: Catalog, serial: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM health_alerts WHERE cleared_at IS NULL" + (" AND device_serial = ?" if serial else "") + " ORDER BY id"
    return list(catalog.db.query(sql, [serial] if serial else []))


def alert_text(alert: dict[str, Any]) -> str:
    """An open alert's message in the reader's language (English for rows from before issue 12)."""
    return stored(alert["message"], alert.get("message_msg"))


def alert_message(alert: dict[str, Any]) -> Message | str:
    """An open alert's message, to carry on and show later (``daemon.i18n.text``); the English
    string for rows from before issue 12."""
    if alert.get("message_msg"):
        try:
            return Message.from_json(json.loads(alert["message_msg"]))
        except (ValueError, KeyError, TypeError):
            pass
    return alert["message"]


def note_text(note: dict[str, Any]) -> str:
    """A stored note's message in the reader's language."""
    return stored(note.get("message"), note.get("msg"))


def json_view(obj: Any) -> Any:
    """``obj`` as ``--json`` prints it: without the stored messages' ids and params (``message_msg``,
    a note's ``msg``), which are only for showing them translated; the English stays."""
    if isinstance(obj, dict):
        return {k: json_view(v) for k, v in obj.items() if not (k == "msg" or k.endswith("_msg"))}
    if isinstance(obj, list):
        return [json_view(v) for v in obj]
    return obj


def devices(catalog: Catalog) -> list[dict[str, Any]]:
    """Each known recorder: its officer, when it was last docked, its last health, open alerts."""
    from daemon.health_listing import iter_devices  # built on this module's readers

    return list(iter_devices(catalog))


# The attention list's order: the most urgent reason first (footage not reaching the store,
# then what loses footage, then what degrades it); a recorder is placed by its most urgent reason.
REASON_ORDER = ("last_dock", "not_docked_long", "fs_errors", "storage_full", "clock_invalid", "capacity_fade",
                "battery_low", "clock_drift", "bad_reply", "not_docked", "overdue")


def reason_key(reason: dict[str, Any]) -> str:
    """The reason's place in ``REASON_ORDER``: an alert by its kind, else the reason's own kind."""
    if reason["kind"] == "not_docked" and reason.get("long"):
        return "not_docked_long"
    return reason.get("alert") or reason["kind"]


def last_dock_ends(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """Each recorder's latest dock that came to an end (READY, ERROR or INTERRUPTED): state, time, detail."""
    return {r["serial"]: r for r in catalog.db.query(
        "SELECT serial, state, at, detail, detail_msg, session_id FROM dock_events WHERE id IN (SELECT MAX(id) FROM"
        " dock_events WHERE serial IS NOT NULL AND state IN ('READY', 'ERROR', 'INTERRUPTED') GROUP BY serial)")}


def dock_failures(catalog: Catalog, since: str | None = None) -> list[dict[str, Any]]:
    """Docks that ended in ERROR or INTERRUPTED (at or after ``since``), newest first, with the
    session's own end where there was one."""
    return list(catalog.db.query(
        "SELECT e.serial, e.state, e.at, e.detail, e.detail_msg, e.session_id, e.bay, s.status AS session_status,"
        " s.message AS session_message FROM dock_events e LEFT JOIN sessions s ON s.id = e.session_id"
        " WHERE e.state IN ('ERROR', 'INTERRUPTED') AND e.at >= ? ORDER BY e.id DESC", [since or ""]))


def attention(catalog: Catalog, config: HealthConfig, job_alerts: list[dict[str, Any]],
              now: str | None = None, overdue_by_device: dict[str, int] | None = None,
              recorders: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``evidock health --attention``: the recorders that need a person — open alerts, docked here
    (or registered) and not docked for ``not_docked_hours`` (``long`` past ``not_docked_long_hours``),
    whose last dock ended in ERROR or INTERRUPTED, or (``overdue_by_device``, from
    ``daemon.cases.reports.overdue``) with footage overdue for filing — most urgent first
    (``REASON_ORDER``), and the open job alerts the caller passes
    (``daemon.schedule.runs.open_job_alerts``). Exit 1 when there is anything. ``recorders``: the
    listing of ``devices`` when the caller has read it already (the report), else read here."""
    from datetime import datetime, timedelta

    at = datetime.fromisoformat(now or utcnow())
    cutoff = (at - timedelta(hours=config.not_docked_hours)).isoformat(timespec="microseconds")
    long_cutoff = (at - timedelta(hours=config.not_docked_long_hours)).isoformat(timespec="microseconds")
    ends = last_dock_ends(catalog)
    out = []
    for d in devices(catalog) if recorders is None else recorders:
        since = d["last_docked"] or (d["registered_at"] if d["seen_as"] == "registered" else None)
        reasons = [{"kind": "alert", "alert": a["kind"], "message": a["message"], "message_msg": a["message_msg"],
                    "since": a["raised_at"]} for a in d["open_alerts"] if a["kind"] != NOT_DOCKED]
        if since is not None and since < cutoff:
            reasons.append({"kind": "not_docked", "since": since, "hours": config.not_docked_hours,
                            "long": since < long_cutoff,
                            "days": round((at - datetime.fromisoformat(since)).total_seconds() / 86400, 1)})
        end = ends.get(d["serial"])
        if end and end["state"] != "READY":
            reasons.append({"kind": "last_dock", "state": end["state"], "since": end["at"], "message": end["detail"],
                            "message_msg": end["detail_msg"], "session_id": end["session_id"]})
        if overdue_by_device and overdue_by_device.get(d["serial"]):
            reasons.append({"kind": "overdue", "count": overdue_by_device[d["serial"]]})
        if reasons:
            reasons.sort(key=lambda r: REASON_ORDER.index(reason_key(r)))
            out.append({"serial": d["serial"], "model": d["model"], "officer_badge": d["officer_badge"],
                        "officer_name": d["officer_name"], "seen_as": d["seen_as"], "last_docked": d["last_docked"],
                        "reasons": reasons})
    out.sort(key=lambda r: (REASON_ORDER.index(reason_key(r["reasons"][0])), r["serial"]))
    return {"recorders": out, "job_alerts": job_alerts, "exit_code": 1 if out or job_alerts else 0}
