"""``evidock run``: the station's main loop — hotplug, dock manager, watch folder, media queue, alert sender, systemd.

The API for staff (``daemon.api``) is served on ``[api] socket`` in a thread of its own; a socket
it cannot create is said in the log and in `evidock status`, and the docks run on without it.

Signals: SIGTERM/SIGINT take no new work and bring running offloads to a resumable stop within
``dock.stop_timeout_s`` (below the unit's TimeoutStopSec), then the process exits 0; the API
stops first and its socket is removed. SIGHUP reloads the config file (bays, limits, thresholds,
passwords, the API's roles) and audits the change with the file's SHA-256. systemd hears READY=1 once the udev monitor listens, STATUS= with a bay summary,
WATCHDOG=1 every half watchdog period, RELOADING=1 and STOPPING=1.
"""

from __future__ import annotations

import hashlib
import json
import logging
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon import health, i18n, stationclock
from daemon.config import Config, load_config
from daemon.context import build_context
from daemon.dock.hotplug import Hotplug
from daemon.dock.manager import DockManager
from daemon.dock.notify import notify, watchdog_interval
from daemon.dock.watchfolder import WatchFolder
from daemon.errors import EXIT_NOT_RUNNING, EXIT_OK, ApiUnavailable, ConfigError, StationNotRunning
from daemon.evidence import audit
from daemon.i18n import N_
from daemon.media import queue as mediaqueue
from daemon.notify.sender import Sender
from daemon.proc import alive as process_alive
from daemon.schedule.scheduler import StationScheduler
from daemon.store import uploads as storeuploads
from drivers import registry

if TYPE_CHECKING:
    from daemon.api.server import ApiServer

log = logging.getLogger(__name__)

NOT_DOCKED_CHECK_S = 600.0  # how often the daemon looks for recorders not docked (an alert of hours)


@dataclass
class StationStatus:
    """``evidock status``: the bays as the station last wrote them (``status.json``), plus
    ``running``: whether the process that wrote them is alive. Exit 0 running, 3 not running
    (systemctl's convention, DESIGN.md)."""

    doc: dict[str, Any]

    @property
    def running(self) -> bool:
        return bool(self.doc["running"])

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.running else EXIT_NOT_RUNNING


def read_status(data_dir: Path) -> StationStatus:
    """The station's last status; no status file at all is ``StationNotRunning`` (exit 3)."""
    path = data_dir / "status.json"
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise StationNotRunning(N_("no status in {data_dir}: the station (`evidock run`) has not run with this data dir "
                                   "— start it (`systemctl start evidock`) or name its data dir with --data-dir"),
                                data_dir=str(data_dir)) from None
    pid = doc.get("pid")
    doc["running"] = isinstance(pid, int) and process_alive(pid)
    if not doc["running"]:
        # what a station that is gone last wrote is not what the bays hold now: no stale READY
        doc["bays"] = [{**b, "state": "UNKNOWN", "last_state": b.get("state")} for b in doc.get("bays", [])]
    doc["station_clock"] = stationclock.read().to_json()
    return StationStatus(doc)


def is_known(vid: str, pid: str, product: str | None) -> bool:
    """Is this USB device a recorder model in the built-in driver table? (The station asks its
    own table, ``StationContext.registry``, which adds the config's ``[[recorders]]``.)"""
    return registry.BUILTIN.is_known(vid, pid, product)


class Station:
    def __init__(self, data_dir: Path, config: Config, config_path: Path | None):
        self.data_dir, self.config, self.config_path = data_dir, config, config_path
        self.context = build_context(config, data_dir)
        self.manager = DockManager(self.context)
        # the station's own device table (built-in + [[recorders]]), as reloaded on SIGHUP
        self.hotplug = Hotplug(lambda *usb: self.context.registry.is_known(*usb), self.manager.on_hotplug,
                               bays=dict(config.dock.bays))
        self.watch: WatchFolder | None = None
        self.stop = threading.Event()
        self.reload_requested = threading.Event()

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        signal.signal(signal.SIGHUP, lambda *_: self.reload_requested.set())

    def run(self) -> int:
        self._audit("station.start", {"config": str(self.config_path) if self.config_path else None,
                                      "config_sha256": _sha(self.config_path)})
        clock = stationclock.read()
        if not clock.synced:  # every drift and deadline counts from it (status and config check say so too)
            log.warning("%s", clock.message())
        self.hotplug.start()  # listening (and existing recorders enumerated) from here on
        if self.config.watch.folder:
            self.watch = WatchFolder(self.context, should_pause=lambda: not self.manager.idle())
            self.watch.start()
        media = threading.Thread(target=self._media_loop, name="evidock-media", daemon=True)
        media.start()
        uploads = None
        if self.config.store.backend == "s3":  # the upload queue to the evidence store bucket (issue 17)
            uploads = threading.Thread(target=self._upload_loop, name="evidock-store", daemon=True)
            uploads.start()
        # The nightly jobs (daemon/schedule); they wait while any offload runs.
        jobs = StationScheduler(self.context, offloads_running=lambda: not self.manager.idle())
        jobs.start()
        # Alert messages ([notify]) in a thread of their own: a slow mail server never holds up a dock.
        sender = Sender(self.context.catalog, lambda: self.config, self.stop)
        sender.start()
        api = self._start_api()
        self.manager.write_status(force=True)
        notify("READY=1", f"STATUS={self.manager.summary_line()}")
        log.info("station ready: data dir %s", self.data_dir)
        tick = watchdog_interval() or 5.0
        next_absent_check = 0.0
        while not self.stop.wait(min(tick, 5.0)):
            if time.monotonic() >= next_absent_check:
                next_absent_check = time.monotonic() + NOT_DOCKED_CHECK_S
                self._check_not_docked()
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self._reload()
            self.manager.write_status()
            notify("WATCHDOG=1", f"STATUS={self.manager.summary_line()}")
        notify("STOPPING=1", "STATUS=stopping: bringing offloads to a resumable stop")
        log.info("stopping: no new work; running offloads stop at a resumable point")
        if api is not None:
            api.stop()
        jobs.stop()
        self.hotplug.stop()
        if self.watch is not None:
            self.watch.stop()
        clean = self.manager.shutdown()
        media.join(30)
        if uploads is not None:
            uploads.join(30)
        sender.join(self.config.notify.timeout_s + 5)
        if not clean:
            log.warning("some offloads did not stop within %.0f s; their partials resume on the next dock",
                        self.config.dock.stop_timeout_s)
        self._audit("station.stop", {"clean": clean})
        return 0

    def _start_api(self) -> ApiServer | None:
        """The API on ``api.socket`` (None: not configured, or it cannot be served — then the log and
        `evidock status` say why, and the docks run on)."""
        path = self.config.api.socket
        if not path:
            self.manager.extra_status["api"] = {"socket": None, "serving": False, "error": None}
            return None
        from daemon.api.server import ApiServer  # aiohttp: only the daemon loads it, not every CLI command

        server = ApiServer(self.context.catalog, lambda: self.config)
        try:
            server.start()
        except Exception as e:  # noqa: BLE001 — ApiUnavailable says why; anything else is a bug: either way the docks run on
            if isinstance(e, ApiUnavailable):
                log.error("%s; the station runs its docks without an API", e)
            else:
                log.exception("the API could not be started; the station runs its docks without it")
            self.manager.extra_status["api"] = {"socket": path, "serving": False, "error": str(e) or repr(e),
                                                "error_msg": i18n.dumps(e)}
            return None
        self.manager.extra_status["api"] = server.status()
        return server

    def _media_loop(self) -> None:
        """Probes and proxies in the background; paused (ffmpeg stopped) while any offload runs."""
        while not self.stop.is_set():
            try:
                mediaqueue.run_queue(self.context, should_pause=lambda: not self.manager.idle(),
                                     stop=self.stop, wait_for_retries=False)
            except Exception:  # ffmpeg missing, catalog busy…: media waits, offloads go on
                log.exception("media queue run failed; trying again in a minute")
                self.stop.wait(60)
                continue
            self.stop.wait(10)

    def _upload_loop(self) -> None:
        """Uploads to the evidence store bucket in the background. A bucket that cannot be used
        (down, wrong credentials, no Object Lock) is said in the log and as a ``store`` alert in
        `evidock status` — at start and on every pass — while offloads go on into local staging."""
        while not self.stop.is_set():
            try:
                with self.context.catalog() as cat:
                    rep = storeuploads.run_queue(self.context, cat, due_only=True, stop=self.stop)
                if rep.error is not None:
                    log.error("%s", rep.error)
            except Exception:  # catalog busy, a bug: uploads wait, offloads go on
                log.exception("store upload run failed; trying again in a minute")
                self.stop.wait(60)
                continue
            self.stop.wait(30 if rep.error is not None else 5)

    def _check_not_docked(self) -> None:
        """Recorders not docked for health.not_docked_hours get an alert (told by [notify]); a
        failure here is logged and tried again at the next check, the station goes on."""
        try:
            with self.context.catalog() as catalog:
                health.check_not_docked(catalog, self.config.health, self.config.ui.timezone)
        except Exception as e:  # noqa: BLE001 — see the docstring
            log.error("could not check for recorders not docked: %s", e)

    def _reload(self) -> None:
        notify("RELOADING=1")
        try:
            config, path = load_config(self.config_path)
        except ConfigError as e:
            log.error("config not reloaded, the old one stays in force: %s", e)
            notify("READY=1")
            return
        if config.api != self.config.api:  # the socket is bound once; roles and units ([access]) apply at once
            log.warning("[api] changed in the config: it takes effect when the station restarts")
        self.config = config
        self.manager.reload(config)
        self.hotplug.bays = dict(config.dock.bays)
        self._audit("config.reload", {"config": str(path) if path else None, "config_sha256": _sha(path)})
        log.info("config reloaded from %s", path or "built-in defaults")
        notify("READY=1", f"STATUS={self.manager.summary_line()}")

    def _audit(self, event: str, details: dict) -> None:
        with self.context.catalog() as cat, cat.transaction():
            audit.append(cat, event, "station", details)


def _sha(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None
