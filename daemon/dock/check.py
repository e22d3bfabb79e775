"""The dock check of one recorder: identify → health (recorded, alerted) → clock sync → mass storage.

This is what happens between "a recorder is docked" and "its volume is offloaded", as stages
over one task (beets' pipeline shape, on ``daemon.ingest.pipeline``): each stage reads or does
one thing and notes what it could not do. The dock daemon calls ``dock_check`` with the
recorder's driver — its hooks enter the dock's states as the stages complete — and then
``daemon.ingest.offload.ingest(volume, **check.ingest_kwargs())``, then ``attach_session``; it does
not re-implement any of it.

What stops a dock check, and what does not: the recorder must say who it is (identify) and
must switch to mass storage — without those there is nothing to offload against. Everything
else is health information: a model that does not report it ("not reported"), a value that
cannot be true (a recorder that lies: rejected as invalid, alerted), or a garbled reply is
noted and alerted, and the dock goes on, so the footage still leaves a recorder whose
firmware talks nonsense as long as its mass storage is readable. A recorder that goes away
(``RecorderGone``) stops the check at once.

Pooled recorders (issue 13): when the recorder is assigned to an officer now
(``evidock devices assign``) and its binding names someone else, ``assignment_stage`` writes the
assigned officer into it (WriteZFYInfo) before it leaves for mass storage; the offload still names
the binding it came with, and each file is attributed by the assignment at its recording time.
A station already running with the recorder docked does not write it then: at its next dock.

The clock: the drift (recorder − station) is measured before the station sets the clock; the
offload stores it with the session and corrects footage times with it (``daemon.ingest.record.corrected_time``).
A clock more than a year from the station's (``drivers.base.CLOCK_TRUST_LIMIT_S``) was set wrong,
not drifting: the drift is still recorded, the ``clock_invalid`` health alert names the recorder,
and the files of that dock get no corrected time, so auto-filing leaves them for a person.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon import health
from daemon.catalog import devices, officers
from daemon.catalog.db import Catalog
from daemon.clock import utcnow
from daemon.config import Config, ZfyConfig
from daemon.errors import EXIT_ERROR, EXIT_OK
from daemon.evidence import audit
from daemon.evidence.store import ObjectStore
from daemon.i18n import N_, Message
from daemon.ingest.pipeline import OnStage, Stage, run_sequential
from drivers.base import DeviceInfo, Driver, OfficerInfo, VerifiedFile, WipeReport
from drivers.errors import (
    AuthError,
    ClockOutOfRange,
    DriverError,
    InvalidReply,
    ProtocolError,
    Unsupported,
)
from drivers.zfy import ZfyDriver

log = logging.getLogger(__name__)


@dataclass
class DockContext:
    """What every stage of a dock check uses: the recorder's driver, the station's catalog and config."""

    driver: Driver
    catalog: Catalog
    config: Config


@dataclass
class DockTask:
    """What the stages of one dock check found, handed on from stage to stage."""

    device: DeviceInfo | None = None
    reading: health.HealthReading | None = None
    health_id: int | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    mass_storage: bool = False
    rebound: str | None = None  # the assigned officer written into the recorder at this dock

    def note(self, what: str, err: DriverError) -> None:
        status = "not_reported" if isinstance(err, Unsupported) else "invalid" if isinstance(err, InvalidReply) else "failed"
        assert self.reading is not None
        self.reading.notes.append(health.Note(what, status, err))
        if status != "not_reported":
            log.warning("%s", err)


def _soft(task: DockTask, what: str, fn: Callable[[], Any], also: tuple[type[DriverError], ...] = ()) -> Any:
    """Run one health read; a model that lacks it, a lie or a garbled reply is noted, not fatal."""
    try:
        return fn()
    except (Unsupported, InvalidReply, ProtocolError, *also) as e:
        task.note(what, e)
        return None


def identify_stage(c: DockContext, t: DockTask) -> None:
    t.device = c.driver.identify()  # no identity, no dock: errors propagate
    d = t.device
    t.reading = health.HealthReading(serial=d.serial, model=d.model, firmware=d.firmware, badge=d.badge)
    if d.firmware is None:
        t.reading.notes.append(health.Note("firmware", "not_reported", Message(N_("the recorder does not report its firmware"))))
    _remember_device(c.catalog, d)
    if d.badge and officers.unregistered(c.catalog, [d.badge]):
        log.warning("recorder %s is bound to officer %r, who is not in the officer registry", d.serial, d.badge)


def battery_stage(c: DockContext, t: DockTask) -> None:
    assert t.reading is not None
    t.reading.battery = _soft(t, "battery", c.driver.battery)


def storage_stage(c: DockContext, t: DockTask) -> None:
    assert t.reading is not None
    t.reading.storage = _soft(t, "storage", c.driver.storage)


def clock_stage(c: DockContext, t: DockTask) -> None:
    assert t.reading is not None
    try:
        reading = c.driver.clock()
    except ClockOutOfRange as e:
        # A reset clock: noted as invalid (alerted), but its drift is kept, so that the file
        # times of this dock are not trusted for filing (``drivers.base.clock_trusted``).
        t.note("clock", e)
        t.reading.clock_drift_s = round(e.drift_s, 3) if e.drift_s is not None else None
        return
    except (Unsupported, InvalidReply, ProtocolError) as e:
        t.note("clock", e)
        t.reading.clock_drift_s = None
        return
    t.reading.clock_drift_s = round(reading.drift_s, 3)


def sync_stage(c: DockContext, t: DockTask) -> None:
    """Set the recorder's clock (SyncDevTime) at every dock; a refusal is noted, not fatal."""
    assert t.reading is not None
    # A refused password is noted here (the health record still gets written); SetMSDC, which
    # needs the same password, is what stops the dock.
    if _soft(t, "clock setting", c.driver.sync_clock, also=(AuthError,)) is not None:
        t.reading.clock_set = True


def assignment_stage(c: DockContext, t: DockTask) -> None:
    """A pooled recorder (issue 13): write the officer it is assigned to now into it (WriteZFYInfo)
    when its binding says someone else. The offload still names the binding it came with (the
    footage's ``bound_officer``); attribution goes by the assignment at each recording's time.
    A model without binding, a refusal or a garbled reply is noted, not fatal."""
    assert t.device is not None
    a = officers.current_assignment(c.catalog, t.device.serial)
    if a is None or a["officer"] == t.device.badge:
        return
    registry = officers.get_officer(c.catalog, a["officer"]) or {}
    info = OfficerInfo(a["officer"], a["officer_name"] or "", unit_no=t.device.unit_no or "",
                       unit_name=registry.get("unit") or t.device.unit_name or "")
    if _soft(t, "officer binding", lambda: bind_officer(c.catalog, c.driver, info, assignment=a["id"]),
             also=(AuthError,)) is not None:
        t.rebound = a["officer"]


def record_stage(c: DockContext, t: DockTask) -> None:
    assert t.reading is not None
    t.health_id, t.alerts = health.record(c.catalog, c.config.health, t.reading)


def mass_storage_stage(c: DockContext, t: DockTask) -> None:
    c.driver.enter_mass_storage()  # a refused password or a dead channel stops the dock: propagate
    t.mass_storage = True


DockStage = Stage[DockContext, DockTask]

# The order is the dock's: the health readings (the drift among them) are taken before the clock
# is set, and recorded with whether the set worked, before the recorder leaves for mass storage.
STAGES: tuple[DockStage, ...] = (
    identify_stage, battery_stage, storage_stage, clock_stage, sync_stage, assignment_stage, record_stage,
    mass_storage_stage,
)


@dataclass
class DockCheck:
    """What the offload needs from a dock check, and what the check found."""

    device: DeviceInfo
    health_id: int
    clock_drift_s: float | None
    clock_set: bool
    alerts: list[dict[str, Any]]
    notes: list[health.Note]
    important_pattern: str | None
    battery_percent: int | None = None  # for the dock's READY detail; None: not reported
    rebound: str | None = None  # officer written into the recorder (its assignment) at this dock

    def ingest_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``daemon.ingest.offload.ingest``."""
        return {"device": self.device.serial, "officer": self.device.badge, "clock_drift_s": self.clock_drift_s}

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device.to_json(), "health_id": self.health_id, "clock_drift_s": self.clock_drift_s,
            "clock_set": self.clock_set, "alerts": [{"kind": a["kind"], "message": a["message"]} for a in self.alerts],
            "notes": [n.to_json() for n in self.notes], "important_pattern": self.important_pattern,
        }


def dock_check(catalog: Catalog, config: Config, driver: Driver, *,
               before: OnStage[DockContext, DockTask] | None = None,
               on_stage: OnStage[DockContext, DockTask] | None = None) -> DockCheck:
    """Identify, health-check (recorded, alerted), clock-sync and switch one recorder to mass storage.

    ``before`` and ``on_stage`` are called before and after each stage (the dock manager: stop at
    an undock; enter the states a stage completes). Errors propagate: a check that cannot go on
    stops the dock.
    """
    task = DockTask()
    run_sequential(DockContext(driver, catalog, config), (task,), STAGES, before=before, on_stage=on_stage)
    assert task.device is not None and task.reading is not None and task.health_id is not None
    battery = task.reading.battery.percent if task.reading.battery is not None else None
    return DockCheck(task.device, task.health_id, task.reading.clock_drift_s, task.reading.clock_set,
                     task.alerts, task.reading.notes, driver.important_pattern, battery, task.rebound)


def attach_session(catalog: Catalog, check: DockCheck, session_id: int) -> None:
    """After the offload: link the dock's health record to its session (and, when the dock wrote an
    assignment into the recorder, keep that binding: the session named the one it came with)."""
    health.attach_session(catalog, check.health_id, session_id)
    if check.rebound:
        with catalog.transaction():
            devices.upsert_device(catalog, check.device.serial, officer=check.rebound, seen=False)


def _remember_device(catalog: Catalog, d: DeviceInfo) -> None:
    """What the recorder says about itself, into the catalog (its officer first)."""
    now = utcnow()
    with catalog.transaction():
        if d.badge:
            devices.upsert_officer(catalog, d.badge, d.officer_name, d.unit_name, now=now)
        devices.upsert_device(catalog, d.serial, model=d.model, officer=d.badge, now=now)


def bind_officer(catalog: Catalog, driver: Driver, officer: OfficerInfo, assignment: int | None = None) -> DeviceInfo:
    """Write the officer into the recorder (WriteZFYInfo), read it back, record and audit the binding
    (``assignment``: the pooled-recorder assignment it carries out, marked as written)."""
    before = driver.identify()
    driver.bind_officer(officer)
    after = driver.identify()
    if after.badge != officer.badge:
        # (request and problem by keyword: InvalidReply takes the request name before its message)
        raise InvalidReply(driver.recorder, request="WriteZFYInfo",
                           problem=Message(N_("the recorder accepted badge {badge} but now reports {now!r}; "
                                              "the binding did not take"), badge=officer.badge, now=after.badge))
    _remember_device(catalog, after)
    with catalog.transaction():
        devices.upsert_device(catalog, after.serial, officer=officer.badge, seen=False)
        details = {"officer": officer.badge, "name": officer.name, "unit_no": officer.unit_no,
                   "previous_officer": before.badge}
        if assignment is not None:
            officers.mark_bound(catalog, assignment)
            details["assignment"] = assignment
        audit.append(catalog, "device.bind", f"device:{after.serial}", details)
    return after


def wipe_stored(catalog: Catalog, store: ObjectStore, driver: Driver, volume: Path, serial: str,
                should_stop: Callable[[], bool] | None = None, in_bucket: bool = False) -> WipeReport:
    """Delete from the recorder only what the store holds, verified, for this recorder (invariant 2).

    The candidates are this recorder's sightings whose object is in the store; the driver then
    deletes each only if the bytes on the volume still hash to it. Every deletion is audited,
    one file at a time right after its unlink (an unlink cannot join a SQLite transaction: a
    crash in between loses the audit row of that one file, never the file's stored copy).

    Each file is wiped under its object's lock, after checking again that the catalog and the
    store still hold the object: retention (``cases.retention._finish``) removes an object only
    under the same lock, so the stored copy cannot go while the recorder's copy is being deleted.

    ``in_bucket`` (``store.backend = "s3"``): local staging is not enough — a file is wiped only
    once its object is *stored* in the bucket (``daemon.store.uploads``: put, checked by
    ``head_object``, version id recorded). The others stay on the recorder for the next dock.
    """
    rows = catalog.conn.execute(
        "SELECT s.source_path_raw, s.sha256, s.size FROM sightings s JOIN objects o ON o.sha256 = s.sha256 "
        "WHERE s.device_serial = ? GROUP BY s.source_path_raw, s.sha256", (serial,)).fetchall()
    files = [VerifiedFile(bytes(raw), sha, size) for raw, sha, size in rows if store.size(sha) == size]
    report = WipeReport()
    if in_bucket:
        uploaded = {r[0] for r in catalog.conn.execute(  # of this recorder's files, not every stored object
            "SELECT sha256 FROM store_uploads WHERE state = 'stored' AND sha256 IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted({f.sha256 for f in files})),))}
        report.kept += [(f.rel, N_("not yet stored in the evidence store bucket: kept until the next dock"))
                        for f in files if f.sha256 not in uploaded]
        files = [f for f in files if f.sha256 in uploaded]
    for f in files:
        if should_stop is not None and should_stop():  # undock or shutdown: stop between files
            break
        with store.object_lock(f.sha256):
            held = catalog.conn.execute("SELECT 1 FROM objects WHERE sha256 = ?", (f.sha256,)).fetchone()
            if held is None or store.size(f.sha256) != f.size:
                report.kept.append((f.rel, "its stored copy was removed (retention) since the offload: kept"))
                continue
            one = driver.wipe(volume, [f])
            report.kept += one.kept
            if one.deleted:
                report.deleted += one.deleted
                with catalog.transaction():
                    audit.append(catalog, "recorder.wipe", f.sha256,
                                 {"device": serial, "path": f.rel.decode("utf-8", "backslashreplace"), "size": f.size})
    return report


@dataclass
class ProbeReport:
    """``evidock probe``: what one recorder says about itself, read-only (nothing is set)."""

    port: str
    device: DeviceInfo
    items: dict[str, Any] = field(default_factory=dict)  # battery / storage / clock -> JSON or None
    notes: list[health.Note] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(n.status != "not_reported" for n in self.notes)

    @property
    def exit_code(self) -> int:
        """0: every value read or not reported by this model; 2: some reply failed or was invalid."""
        return EXIT_OK if self.ok else EXIT_ERROR

    def to_json(self) -> dict[str, Any]:
        return {"port": self.port, "ok": self.ok, "device": self.device.to_json(), **self.items,
                "notes": [n.to_json() for n in self.notes]}


def probe(driver: Driver, port: str) -> ProbeReport:
    """Identify (a failure propagates), then read battery, storage and clock, collecting problems."""
    rep = ProbeReport(port, driver.identify())
    for what, fn in (("battery", driver.battery), ("storage", driver.storage), ("clock", driver.clock)):
        try:
            rep.items[what] = fn().to_json()
        except (Unsupported, InvalidReply, ProtocolError) as e:
            rep.items[what] = None
            status = "not_reported" if isinstance(e, Unsupported) else "invalid" if isinstance(e, InvalidReply) else "failed"
            rep.notes.append(health.Note(what, status, e))
    return rep


def probe_port(port: str, config: ZfyConfig, timeout: float | None = None) -> ProbeReport:
    """``evidock probe``: open the GA/T 947 control port ``port`` and ``probe`` the recorder on it.

    ``timeout`` (seconds per request) defaults to ``zfy.timeout_s``; retries and back-off come from ``config``.
    """
    with ZfyDriver(port, timeout=timeout or config.timeout_s, retries=config.retries, backoff_s=config.backoff_s) as drv:
        return probe(drv, port)
