"""The dock manager: each docked recorder's state machine, many at once, losing nothing.

A ``DockJob`` per docked recorder runs in its own thread through

    DETECTED → IDENTIFIED → HEALTH_CHECKED → CLOCK_SYNCED → MOUNTED → OFFLOADING → VERIFIED
             → FILED → WIPED → READY          (or ERROR with a reason, or INTERRUPTED)

(a recorder reached only through its volume is MOUNTED before it is IDENTIFIED). The walk is
data: ``DockManager.WALKS`` lists, for each way a model is reached (``DeviceModel.reach``), its
stages and the states entered once each has run; it runs on the one pipeline runner
(``daemon.ingest.pipeline``), whose on-stage hook makes the transitions.

Every transition is written to the catalog (``dock_events``) and the audit log in one
transaction, with its detail (``daemon.dock.details``). The work of each step is done by the
library: ``daemon.dock.check`` (identify, health, clock, ``wipe_stored``), ``daemon.dock.mount``
(read-only mount), ``daemon.ingest.offload.ingest`` (verified offload).

An undock at any state sets the job's cancel flag: a driver call fails with ``RecorderGone``,
the offload stops at a resumable point (partials kept, session ``interrupted``), and the next
dock of that recorder resumes. At most ``dock.max_parallel_offloads`` jobs offload at once, the
others queue in docking order (``OffloadGate``); ``idle()``: no offload runs (media may transcode).
Hotplug events arrive through ``on_hotplug`` (the demo's too); refusals: ``daemon.dock.unknown``.
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from daemon.catalog import devices
from daemon.catalog.db import Catalog
from daemon.clock import utcnow
from daemon.config import Config
from daemon.dock import check as dockcheck
from daemon.dock.details import stage_detail
from daemon.dock.gate import OffloadGate
from daemon.dock.hotplug import Docked
from daemon.dock.jobs import DockJob, State, Walk, _JobLog
from daemon.dock.mount import Mounted, mount_volume, unmount
from daemon.dock.unknown import record_refused
from daemon.errors import EvidockError, Refused, SourceGone, Undocked
from daemon.evidence import audit
from daemon.i18n import N_, Message, dumps, message_of
from daemon.ingest.offload import ingest
from daemon.ingest.pipeline import Stage, run_sequential
from drivers import registry
from drivers.errors import DriverError, RecorderGone

if TYPE_CHECKING:
    from daemon.context import StationContext

log = logging.getLogger(__name__)


WalkStep = tuple[Stage["DockManager", Walk], tuple[State, ...]]  # (stage, states entered once it has run)


class DockManager:
    """All bays of one station. Thread-safe; ``on_hotplug`` is its only input."""

    def __init__(self, station: StationContext, *, status_file: Path | None = None,
                 on_change: Callable[[DockJob], None] | None = None):
        self.station = station
        self.data_dir = station.data_dir
        self.config = config = station.config
        self.store = station.store
        with station.catalog():
            pass  # create / migrate once, before any job thread opens its own connection
        self.gate = OffloadGate(config.dock.max_parallel_offloads)
        self.jobs: dict[str, DockJob] = {}  # usb_path -> current job
        self.history: list[DockJob] = []
        self.status_file = status_file or self.data_dir / "status.json"
        self.on_change = on_change
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._accepting = True
        self._last_status = 0.0
        self.extra_status: dict[str, Any] = {}  # the station's parts beside the bays (its API): into status.json
        self._pending: dict[str, Docked] = {}  # re-docked while the previous job was winding down

    # -- input ---------------------------------------------------------------------------

    def on_hotplug(self, kind: str, rec: Docked) -> None:
        handler = {"docked": self._docked, "changed": self._changed, "undocked": self._undocked,
                   "refused": self._refused}.get(kind)
        if handler is not None:
            handler(rec)

    def _docked(self, rec: Docked) -> None:
        with self._lock:
            if not self._accepting:
                log.warning("bay %s: recorder docked while the station is stopping; it is picked up at the next start", rec.bay)
                return
            old = self.jobs.get(rec.usb_path)
            if old is not None and not old.finished:
                if old.cancel.is_set():
                    # re-seated while the old job still winds down: start it when that one ends
                    self._pending[rec.usb_path] = rec
                return
            job = DockJob(rec, next(self._seq))
            # Started before it is listed: wait_all/shutdown may join any listed job's thread.
            job.thread = threading.Thread(target=self._run, args=(job,), name=f"evidock-bay-{rec.bay}", daemon=True)
            job.thread.start()
            self.jobs[rec.usb_path] = job
            self.history.append(job)

    def _changed(self, rec: Docked) -> None:
        with self._lock:
            job = self.jobs.get(rec.usb_path)
        if job is None:
            if rec.known:
                self._docked(rec)
            return
        with job.nodes:
            job.rec = rec
            job.nodes.notify_all()

    def _undocked(self, rec: Docked) -> None:
        with self._lock:
            self._pending.pop(rec.usb_path, None)
            job = self.jobs.get(rec.usb_path)
        if job is not None and not job.finished:
            _JobLog(log, {"job": job}).warning("undocked in state %s", job.state.value)
            job.cancel.set()
            with job.nodes:
                job.nodes.notify_all()

    def _refused(self, rec: Docked) -> None:
        with self.station.catalog() as cat:
            record_refused(cat, rec)

    # -- the state machine -----------------------------------------------------------------

    def _run(self, job: DockJob) -> None:
        try:
            with self.station.catalog() as cat:
                self._walk(job, cat)
        except EvidockError as e:  # the catalog itself could not be opened: nothing recorded
            job.state, job.detail, job.detail_msg = State.ERROR, str(e), message_of(e)
            _JobLog(log, {"job": job}).error("ERROR: %s", e)
            self.write_status(force=True)
        finally:
            with self._lock:
                again = self._pending.pop(job.rec.usb_path, None)
            if again is not None:
                self._docked(again)

    def _walk(self, job: DockJob, cat: Catalog) -> None:
        jl = _JobLog(log, {"job": job})
        w = Walk(job, cat)
        try:
            self._transition(cat, job, State.DETECTED, Message(N_("{usb_id} on port {port}"), usb_id=job.rec.vidpid,
                                                                port=job.rec.port))
            w.model = self.station.registry.lookup(int(job.rec.vid, 16), int(job.rec.pid, 16), job.rec.product)
            if w.model is None:
                raise Refused(N_("{usb_id} is not in the recorder table"), usb_id=job.rec.vidpid)
            walk = self.WALKS[w.model.reach]
            entered = dict(walk)
            run_sequential(self, (w,), [stage for stage, _ in walk],
                           on_stage=lambda stage, _m, t: self._enter(t, entered[stage]))
        except (Undocked, RecorderGone) as e:
            why = (Message(N_("undocked in state {state}"), state=job.state.value)
                   if job.cancel.is_set() or isinstance(e, Undocked) else message_of(e))
            self._transition(cat, job, State.INTERRUPTED, Message(N_("{why}; the next dock resumes"), why=why))
        except (EvidockError, DriverError) as e:
            self._transition(cat, job, State.ERROR, message_of(e))
        except Exception as e:  # one bad recorder must not take the station down (invariant 6)
            jl.exception("unexpected error")
            self._transition(cat, job, State.ERROR, Message(N_("unexpected error: {error}"), error=repr(e)))
        finally:
            self._release_slot(w)
            if w.driver is not None:
                w.driver.close()
            if w.mounted is not None:
                try:
                    unmount(w.mounted.mountpoint)
                except EvidockError as e:
                    jl.error("%s", e)
            self.write_status(force=True)

    def _enter(self, w: Walk, states: tuple[State, ...]) -> None:
        """The walk's on-stage hook: enter the states its last stage reached, with what it found."""
        for state in states:
            self._transition(w.cat, w.job, state, w.details.get(state))

    def _check_cancel(self, job: DockJob) -> None:
        if job.cancel.is_set():
            raise Undocked()

    def _wait_node(self, job: DockJob, get: Callable[[Docked], str | None], what: Message) -> str:
        end = time.monotonic() + self.config.dock.node_wait_s
        with job.nodes:
            while (value := get(job.rec)) is None:
                self._check_cancel(job)
                left = end - time.monotonic()
                if left <= 0:
                    raise EvidockError(N_("no {what} appeared within {seconds:g} s of docking; "
                                          "re-seat the recorder in its bay"), what=what, seconds=self.config.dock.node_wait_s)
                job.nodes.wait(min(left, 0.5))
        self._check_cancel(job)
        return value

    # -- the stages of the walk: each over (manager, walk), in the order of WALKS ------------------

    def _open_control(self, w: Walk) -> None:
        """A recorder with a control channel: its driver over the tty (the settings of [zfy])."""
        assert w.model is not None
        tty = self._wait_node(w.job, lambda r: r.tty, Message(N_("control tty")))
        zc = self.config.zfy
        w.driver = registry.driver_for(w.model, tty, password=zc.secret(), role=zc.role, timeout=zc.timeout_s,
                                       retries=zc.retries, backoff_s=zc.backoff_s)

    def _open_volume(self, w: Walk) -> None:
        """A recorder reached only through its volume: its driver reads the mounted card."""
        assert w.model is not None and w.volume is not None
        w.driver = registry.driver_for(w.model, w.volume, usb_serial=w.job.rec.usb_serial)

    def _check(self, w: Walk) -> None:
        """The dock check of daemon.dock.check; its hooks stop at an undock and enter CHECK_STATES."""
        job, cat = w.job, w.cat

        def before(stage: dockcheck.DockStage, _c: dockcheck.DockContext, _t: dockcheck.DockTask) -> None:
            self._check_cancel(job)

        def after(stage: dockcheck.DockStage, _c: dockcheck.DockContext, task: dockcheck.DockTask) -> None:
            if stage is dockcheck.identify_stage:
                assert task.device is not None
                job.serial, job.officer = task.device.serial, task.device.badge
                self._registration(cat, job)
            for state in self.CHECK_STATES.get(stage, ()):
                self._transition(cat, job, state, stage_detail(task, state))

        assert w.driver is not None
        w.check = dockcheck.dock_check(cat, self.config, w.driver, before=before, on_stage=after)
        job.alerts, job.alerts_msg = [a["message"] for a in w.check.alerts], [a.get("message_msg") for a in w.check.alerts]
        if w.check.battery_percent is not None:
            job.battery_percent = w.check.battery_percent

    def _registration(self, cat: Catalog, job: DockJob) -> None:
        if devices.registered_at(cat, job.serial):
            return
        if self.config.dock.unknown_serial == "refuse":
            raise Refused(N_("recorder {serial} is not registered to this station (dock.unknown_serial = 'refuse'); "
                             "register it with `evidock devices register {serial}` and dock it again"), serial=job.serial)
        devices.register_device(cat, job.serial, "on first dock", bay=job.rec.bay)

    def _mount(self, w: Walk) -> None:
        job = w.job
        source = self._wait_node(job, lambda r: r.block or r.volume, Message(N_("volume (block device)")))
        src = Path(source)
        if src.is_dir():  # a simulated recorder's card folder: nothing to mount
            w.volume, w.details[State.MOUNTED] = src, Message(N_("folder {path}"), path=str(src))
            return
        root = Path(self.config.dock.mount_root) if self.config.dock.mount_root else self.data_dir / "mnt"
        mp = root / _safe(job.rec.bay)
        unmount(mp)  # a leftover from a crash
        m = mount_volume(src, mp)
        w.mounted, w.volume = m, mp
        w.details[State.MOUNTED] = Message(N_("{source} ({fstype} via {via}) read-only at {mountpoint}"),
                                           source=str(src), fstype=m.fstype, via=m.via, mountpoint=str(mp))

    def _await_slot(self, w: Walk) -> None:
        """Wait for one of the gate's offload slots, in docking order; an undock gives up the place."""
        if not self.gate.acquire(w.job.seq, w.job.cancel):
            raise Undocked()
        w.slot = True  # given back by _offload, or by the walk's end if it never got there
        w.details[State.OFFLOADING] = Message(N_("from {volume}"), volume=str(w.volume))

    def _release_slot(self, w: Walk) -> None:
        if w.slot:
            w.slot = False
            self.gate.release()

    def _offload(self, w: Walk) -> None:
        job, cat, check, volume = w.job, w.cat, w.check, w.volume
        assert check is not None and volume is not None
        jl = _JobLog(log, {"job": job})

        def scanned(n: int, total: int) -> None:
            job.bytes_total = total

        def progress(n: int) -> None:
            job.bytes_done += n
            self.write_status()

        try:
            result = ingest(self.station, volume, progress=progress, on_scanned=scanned,
                            cancel=job.cancel, important_pattern=check.important_pattern, **check.ingest_kwargs())
        finally:
            self._release_slot(w)
        job.session_id = result.session_id
        c = result.counts()
        job.files_stored, job.files_duplicate, job.files_failed, job.bytes_stored = (
            c["stored"], c["duplicates"], c["failed"], c["bytes_stored"])
        dockcheck.attach_session(cat, check, result.session_id)
        for p in result.problems:
            jl.warning("%s: %s", p.display, p.reason)
        if job.cancel.is_set() or isinstance(result.error, SourceGone):
            raise Undocked()
        if result.status != "completed" or c["failed"]:
            if result.message:
                raise EvidockError(N_("offload session {session} {status}: {failed} file(s) not stored ({message}); "
                                      "nothing was wiped — see `evidock footage list` and the session's problems"),
                                   session=result.session_id, status=result.status, failed=c["failed"],
                                   message=result.message_msg or result.message)
            raise EvidockError(N_("offload session {session} {status}: {failed} file(s) not stored; "
                                  "nothing was wiped — see `evidock footage list` and the session's problems"),
                               session=result.session_id, status=result.status, failed=c["failed"])
        w.result = result
        w.details[State.VERIFIED] = Message(N_("session {session}: {stored} stored, {duplicates} already "
                                               "stored, {problems} problem(s)"), session=result.session_id,
                                            stored=c["stored"], duplicates=c["duplicates"], problems=len(result.problems))

    def _file(self, w: Walk) -> None:
        job, result = w.job, w.result
        assert result is not None
        # Filing itself happened in each file's ingest transaction (daemon.cases.filing.file_new_footage, a hook of the station context).
        filed, cases_ = w.cat.conn.execute(
            "SELECT COUNT(DISTINCT f.id), GROUP_CONCAT(DISTINCT fc.case_no) FROM footage f "
            "JOIN footage_cases fc ON fc.footage_id = f.id WHERE f.session_id = ?", (result.session_id,)).fetchone()
        detail = (Message(N_("{filed} of {new} new file(s) filed to {cases}"), filed=filed, new=job.files_stored, cases=cases_)
                  if cases_ else Message(N_("{filed} of {new} new file(s) filed"), filed=filed, new=job.files_stored))
        if filed < job.files_stored:
            detail = Message(N_("{detail}; the rest wait in the unfiled queue (`evidock footage overdue`)"), detail=detail)
        w.details[State.FILED] = detail

    def _unmount(self, w: Walk) -> None:
        """The read-only mount ends before the wipe mounts the card writable."""
        if w.mounted is not None:
            unmount(w.mounted.mountpoint)
            w.mounted = None

    def _wipe(self, w: Walk) -> None:
        job, cat = w.job, w.cat
        if self.config.dock.wipe == "never":
            w.details[State.WIPED] = Message(N_("nothing deleted (dock.wipe = 'never')"))
            return
        self._check_cancel(job)
        source = job.rec.block or job.rec.volume
        assert source is not None and job.serial is not None and w.driver is not None
        src = Path(source)
        m: Mounted | None = None
        volume = src
        if not src.is_dir():
            root = Path(self.config.dock.mount_root) if self.config.dock.mount_root else self.data_dir / "mnt"
            m = mount_volume(src, root / _safe(job.rec.bay), writable=True)
            volume = m.mountpoint
        try:
            rep = dockcheck.wipe_stored(cat, self.store, w.driver, volume, job.serial, should_stop=job.cancel.is_set,
                                        in_bucket=self.config.store.backend == "s3")
        except OSError as e:
            raise EvidockError(N_("the wipe could not reach the card at {volume} ({error}); whatever was not yet "
                                  "deleted stays on the recorder, safe in the store too"),
                               volume=str(volume), error=e.strerror) from None
        finally:
            if m is not None:
                unmount(m.mountpoint)
        self._check_cancel(job)  # undocked mid-wipe: what was deleted is audited, the rest stays
        if rep.kept:
            w.details[State.WIPED] = Message(N_("{deleted} verified file(s) deleted from the recorder, {kept} kept ({why}…)"),
                                             deleted=len(rep.deleted), kept=len(rep.kept), why=rep.kept[0][1])
        else:
            w.details[State.WIPED] = Message(N_("{deleted} verified file(s) deleted from the recorder"), deleted=len(rep.deleted))

    def _ready(self, w: Walk) -> None:
        want = self.config.dock.ready_battery_percent
        b = w.job.battery_percent
        if b is None:
            detail = Message(N_("charging; battery level not reported"))
        elif b >= want:
            detail = Message(N_("ready for duty (battery {battery}%)"), battery=b)
        else:
            detail = Message(N_("charging ({battery}% < {want}% for duty)"), battery=b, want=want)
        w.details[State.READY] = detail

    # -- the walk as data ------------------------------------------------------------------------

    # The states a stage of daemon.dock.check.STAGES completes. The drift is measured before the clock
    # is set and recorded with the health reading: HEALTH_CHECKED and CLOCK_SYNCED both follow that.
    CHECK_STATES: ClassVar[dict[dockcheck.DockStage, tuple[State, ...]]] = {
        dockcheck.identify_stage: (State.IDENTIFIED,),
        dockcheck.record_stage: (State.HEALTH_CHECKED, State.CLOCK_SYNCED),
    }

    # Every walk ends so: offload (OFFLOADING once a slot is free), file, unmount, wipe, readiness.
    _TAIL: ClassVar[tuple[WalkStep, ...]] = (
        (_await_slot, (State.OFFLOADING,)), (_offload, (State.VERIFIED,)), (_file, (State.FILED,)),
        (_unmount, ()), (_wipe, (State.WIPED,)), (_ready, (State.READY,)),
    )

    # The walk of each reach (drivers.registry.Reach): DETECTED is entered before it, the check's
    # states during _check. A control-channel recorder is checked, switched to mass storage, then
    # mounted; a volume-only one is mounted first: its driver reads what it says from the card.
    WALKS: ClassVar[dict[str, tuple[WalkStep, ...]]] = {
        "control": ((_open_control, ()), (_check, ()), (_mount, (State.MOUNTED,)), *_TAIL),
        "volume": ((_mount, (State.MOUNTED,)), (_open_volume, ()), (_check, ()), *_TAIL),
    }

    # -- records -------------------------------------------------------------------------------

    def _transition(self, cat: Catalog, job: DockJob, state: State, message: Message | None = None) -> None:
        # detail: the English (dock_events.detail, the audit entry, the log, status.json's "detail");
        # the message beside it (dock_events.detail_msg, status.json's "detail_msg") is shown translated.
        detail = str(message) if message is not None else ""
        job.state, job.detail, job.detail_msg = state, detail, message
        with cat.transaction() as conn:
            conn.execute(
                "INSERT INTO dock_events (dock_id, bay, port, usb_id, serial, state, detail, detail_msg, session_id, at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                (job.id, job.rec.bay, job.rec.port, job.rec.vidpid, job.serial, state.value, detail, dumps(message),
                 job.session_id, utcnow()))
            audit.append(cat, "dock.state", f"dock:{job.id}",
                         {"bay": job.rec.bay, "serial": job.serial, "state": state.value, "detail": detail})
        lvl = logging.WARNING if state in (State.ERROR, State.INTERRUPTED) else logging.INFO
        _JobLog(log, {"job": job}).log(lvl, "%s%s", state.value, f": {detail}" if detail else "")
        if self.on_change:
            self.on_change(job)
        self.write_status(force=True)

    def status(self) -> dict[str, Any]:
        with self._lock:
            jobs = list(self.jobs.values())
        running = sum(1 for j in jobs if j.state is State.OFFLOADING)
        return {"pid": os.getpid(), "updated": utcnow(), "offloading": running, "queued": len(self.gate.waiting),
                "max_parallel_offloads": self.gate.limit, "bays": [j.summary() for j in sorted(jobs, key=lambda j: j.rec.bay)],
                **self.extra_status}

    def summary_line(self) -> str:
        s = self.status()
        states = collections.Counter(b["state"] for b in s["bays"])
        parts = ", ".join(f"{n} {k.lower()}" for k, n in sorted(states.items()))
        return f"{len(s['bays'])} docked" + (f": {parts}" if parts else "")

    def write_status(self, force: bool = False) -> None:
        """Write ``status.json`` for `evidock status` (throttled to once a second unless forced)."""
        now = time.monotonic()
        if not force and now - self._last_status < 1.0:
            return
        self._last_status = now
        tmp = self.status_file.with_name(f".{self.status_file.name}.{threading.get_ident()}.tmp")
        try:
            tmp.write_text(json.dumps(self.status(), ensure_ascii=False, indent=1))
            os.replace(tmp, self.status_file)
        except OSError as e:
            log.warning("status file %s not written: %s", self.status_file, e)

    def idle(self) -> bool:
        """No offload running or queued: the media queue may transcode."""
        return self.gate.running == 0 and not self.gate.waiting

    # -- lifecycle -----------------------------------------------------------------------------

    def reload(self, config: Config) -> None:
        self.config = config
        self.station.registry = config.registry()  # [[recorders]] as the reloaded config has them
        self.gate.set_limit(config.dock.max_parallel_offloads)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Take no new work; bring running jobs to a resumable stop. True if all ended in time."""
        timeout = self.config.dock.stop_timeout_s if timeout is None else timeout
        with self._lock:
            self._accepting = False
            jobs = [j for j in self.jobs.values() if not j.finished]
        for j in jobs:
            j.cancel.set()
            with j.nodes:
                j.nodes.notify_all()
        end = time.monotonic() + timeout
        for j in jobs:
            if j.thread is not None:
                j.thread.join(max(0.0, end - time.monotonic()))
        self.write_status(force=True)
        return all(j.thread is None or not j.thread.is_alive() for j in jobs)

    def wait_all(self, timeout: float) -> bool:
        """Wait until every job so far has reached a final state (demo, tests)."""
        end = time.monotonic() + timeout
        for j in list(self.history):
            if j.thread is not None:
                j.thread.join(max(0.0, end - time.monotonic()))
        return all(j.finished for j in self.history)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:64] or "bay"


if set(DockManager.WALKS) != set(registry.REACHES):  # the device table may name no reach the dock cannot walk
    raise ValueError(f"dock walks for {sorted(DockManager.WALKS)} but the device table knows {sorted(registry.REACHES)}")
