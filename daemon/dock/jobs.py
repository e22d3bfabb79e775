"""One docked recorder's job: its states, the record of each change, its summary, and its walk
(what the dock manager's stages hand on to each other)."""

from __future__ import annotations

import enum
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.dock.hotplug import Docked
from daemon.i18n import Message, dumps

if TYPE_CHECKING:
    from daemon.catalog.db import Catalog
    from daemon.dock.check import DockCheck
    from daemon.dock.mount import Mounted
    from daemon.ingest.offload import IngestResult
    from drivers.base import Driver
    from drivers.registry import DeviceModel


class State(str, enum.Enum):
    DETECTED = "DETECTED"
    IDENTIFIED = "IDENTIFIED"
    HEALTH_CHECKED = "HEALTH_CHECKED"
    CLOCK_SYNCED = "CLOCK_SYNCED"
    MOUNTED = "MOUNTED"
    OFFLOADING = "OFFLOADING"
    VERIFIED = "VERIFIED"
    FILED = "FILED"
    WIPED = "WIPED"
    READY = "READY"
    ERROR = "ERROR"
    INTERRUPTED = "INTERRUPTED"


FINAL = {State.READY, State.ERROR, State.INTERRUPTED}


@dataclass
class DockJob:
    rec: Docked
    seq: int
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    state: State = State.DETECTED
    detail: str = ""  # English: the log, dock_events.detail, status.json
    detail_msg: Message | None = None  # the same for people, translated where shown
    serial: str | None = None
    officer: str | None = None
    session_id: int | None = None
    files_stored: int = 0
    files_duplicate: int = 0
    files_failed: int = 0
    bytes_stored: int = 0
    bytes_total: int = 0
    bytes_done: int = 0
    alerts: list[str] = field(default_factory=list)  # English (status --json)
    alerts_msg: list[str | None] = field(default_factory=list)  # the same as stored messages, shown translated
    battery_percent: int | None = None
    started: float = field(default_factory=time.time)
    cancel: threading.Event = field(default_factory=threading.Event)
    nodes: threading.Condition = field(default_factory=threading.Condition)
    thread: threading.Thread | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINAL

    def summary(self) -> dict[str, Any]:
        return {
            "dock_id": self.id, "bay": self.rec.bay, "port": self.rec.port, "usb_id": self.rec.vidpid,
            "serial": self.serial or self.rec.usb_serial, "officer": self.officer, "state": self.state.value,
            "detail": self.detail, "session": self.session_id, "files_stored": self.files_stored,
            "files_duplicate": self.files_duplicate, "files_failed": self.files_failed,
            "bytes_stored": self.bytes_stored, "progress": [self.bytes_done, self.bytes_total],
            "battery_percent": self.battery_percent, "alerts": self.alerts,
            # read by `evidock status` / `demo` to show the detail translated; not in `status --json`
            "detail_msg": dumps(self.detail_msg), "alerts_msg": self.alerts_msg,
        }


@dataclass
class Walk:
    """One docked recorder on its walk: what the stages hand on to each other, and what to undo."""

    job: DockJob
    cat: Catalog  # the job thread's own connection
    model: DeviceModel | None = None
    driver: Driver | None = None
    mounted: Mounted | None = None  # a read-only mount still to undo
    volume: Path | None = None
    check: DockCheck | None = None
    result: IngestResult | None = None
    slot: bool = False  # holds one of the gate's offload slots
    details: dict[State, Message] = field(default_factory=dict)  # what a stage found, for the state it reached


class _JobLog(logging.LoggerAdapter):
    """Every line about a recorder names its bay and serial (journald-friendly, one line each)."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        job: DockJob = self.extra["job"]  # type: ignore[index]
        return f"bay {job.rec.bay} serial {job.serial or job.rec.usb_serial or '?'}: {msg}", kwargs
