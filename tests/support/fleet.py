"""A simulated fleet's history, built through the library a dock uses: ``health.record`` for each
dock's health, ``catalog.sessions`` for its offload session and the dock manager's own
``_transition`` for its final dock event (what ``last docked`` and the failed docks are read from).

The one thing replaced is the wall clock those calls read (``utcnow`` in the modules that stamp
rows): sixty days of docks cannot pass in a test, and the rows must carry the days they stand for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from daemon import health
from daemon.catalog import devices, officers, sessions
from daemon.config import HealthConfig
from daemon.context import StationContext
from daemon.dock import manager as dock_manager
from daemon.dock.hotplug import Docked
from daemon.dock.jobs import DockJob, State
from daemon.i18n import N_, Message
from drivers.base import Battery, Storage

# The modules whose rows carry a time of the dock (``from daemon.clock import utcnow`` in each).
_STAMPED = (health, sessions, devices, dock_manager)


@contextlib.contextmanager
def clock_at(now: Callable[[], datetime]) -> Iterator[None]:
    """Make the stamping modules read ``now()`` as the current time."""
    saved = [m.utcnow for m in _STAMPED]
    for m in _STAMPED:
        m.utcnow = lambda: now().isoformat(timespec="microseconds")  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for m, f in zip(_STAMPED, saved, strict=True):
            m.utcnow = f  # type: ignore[attr-defined]


@dataclass
class Ended:
    """How an offload ended (``catalog.sessions.SessionOutcome``)."""

    session_id: int
    status: str
    message: str | None = None
    problems: list[Any] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"stored": 3, "duplicates": 0, "bytes_stored": 3 << 20, "problems": 0}


@dataclass
class Dock:
    """One dock of one recorder: what it measured and how it ended."""

    battery: Battery | None
    storage: Storage | None
    drift: float | None
    fs_detail: str | None = None
    end: State = State.READY
    firmware: str = "2.1.0"


def dock_once(ctx: StationContext, mgr: dock_manager.DockManager, cfg: HealthConfig, serial: str, badge: str,
              model: str, d: Dock, bay: str = "1") -> int:
    """Record one dock the way the dock manager does: session, health (linked), final state."""
    with ctx.catalog() as cat:
        sid = sessions.start_session(cat, serial, badge, "dock", d.drift)
        health.record(cat, cfg, health.HealthReading(
            serial=serial, model=model, firmware=d.firmware, badge=badge, battery=d.battery, storage=d.storage,
            clock_drift_s=d.drift, clock_set=True, station_clock="synced"), session_id=sid)
        status = {State.READY: "completed", State.ERROR: "failed", State.INTERRUPTED: "interrupted"}[d.end]
        sessions.end_session(cat, Ended(sid, status, None if d.end is State.READY else "unplugged during the offload"))
        job = DockJob(Docked(f"/sys/usb/{bay}", "2bdf", "0001", model, serial, f"pci-usb-{bay}", bay), 1,
                      serial=serial, officer=badge, session_id=sid)
        detail = None if d.end is State.READY else Message(N_("recorder unplugged during the offload"))
        mgr._transition(cat, job, d.end, detail)
    return sid


def register_officer(ctx: StationContext, badge: str, name: str) -> None:
    with ctx.catalog() as cat:
        officers.add_officer(cat, badge, name)


BASE = datetime(2026, 9, 1, 2, 0, tzinfo=timezone.utc)  # 10:00 in Asia/Shanghai
DAYS = 60
NOW = BASE + timedelta(days=DAYS - 1, hours=4)  # a few hours after the last day's docks


def dock_time(day: int, n: int) -> datetime:
    return BASE + timedelta(days=day, minutes=n)


HOSTILE = "<script>alert(1)</script>"  # a serial as a hostile recorder might report it
SERIALS = [f"ZFY-{i:04d}" for i in range(19)] + [HOSTILE]
FADING, ABSENT, DRIFTING, FILLING, FS_ERRORS, INTERRUPTED = SERIALS[:6]
GIB = 1 << 30


def scenario(serial: str, day: int, days: int) -> Dock | None:
    """What ``serial`` measured at its dock on ``day`` of ``days`` (None: not docked that day)."""
    last = days - 1
    battery = Battery(80 - day % 7, full_charge_mah=2900 - day % 3 * 10, design_mah=3000)
    storage = Storage(32 * GIB, (24 - day % 5) * GIB, "clean")
    d = Dock(battery, storage, round(0.2 + 0.01 * (day % 4), 3))
    if serial == FADING and day >= last - 5:  # the battery lost a quarter of what it held
        d.battery = Battery(75, full_charge_mah=2150, design_mah=3000)
    if serial == ABSENT and day > last - 4:
        return None
    if serial == DRIFTING:
        d.drift = round(0.1 * day, 2)
    if serial == FILLING:
        d.storage = Storage(32 * GIB, int(32 * GIB * (0.9 - 0.88 * day / last)), "clean")
    if serial == FS_ERRORS and day >= last - 2:
        d.storage = Storage(32 * GIB, 20 * GIB, "errors", "FAT: 3 lost clusters")
    if serial == INTERRUPTED and day == last:
        d.end = State.INTERRUPTED
    return d


def build(ctx: StationContext, serials: list[str], days: int,
          plan: Callable[[str, int, int], Dock | None] = scenario) -> list[tuple[str, int, Dock]]:
    """``days`` days of daily docks of each recorder in ``serials``; returns (serial, day, dock) as recorded."""
    mgr = dock_manager.DockManager(ctx)
    cfg = ctx.config.health
    clock = {"t": BASE}
    done = []
    for i, serial in enumerate(serials):
        register_officer(ctx, f"{100000 + i}", f"警员{i:02d}" if serial != HOSTILE else "<b>王</b>")
    with clock_at(lambda: clock["t"]):
        for day in range(days):
            for i, serial in enumerate(serials):
                d = plan(serial, day, days)
                if d is None:
                    continue
                clock["t"] = dock_time(day, i)
                dock_once(ctx, mgr, cfg, serial, f"{100000 + i}", "DSJ-A8", d, bay=str(i % 8 + 1))
                done.append((serial, day, d))
    return done
