"""The watch folder: manual imports from card readers and recorders without a driver.

Staff drop files under ``<folder>/<badge>/…`` (one sub-folder per officer badge). A file is
imported once it has *settled* — no watchdog event and no change of size or mtime for
``watch.settle_s`` seconds (a close-after-write event starts that wait too, it does not end it:
a copy tool may close and reopen). Settled files of one badge are offloaded together through
the ordinary ingest (same checks, same problems), then moved to the done folder under the same
relative path; a file that was not stored stays where it is, reported, and is tried again only
once it changes. Files dropped while the station was down are found by a scan at start.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from daemon.config import Config
from daemon.errors import EvidockError
from daemon.ingest.offload import IngestResult, ingest
from daemon.ingest.volume import quoted

if TYPE_CHECKING:
    from daemon.context import StationContext

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    last_change: float
    sig: tuple[int, int] | None = None  # (size, mtime_ns) at the last look; None: not looked yet


@dataclass
class WatchFolder:
    station: StationContext
    on_result: Callable[[str, IngestResult], None] | None = None
    should_pause: Callable[[], bool] = lambda: False
    _pending: dict[Path, _Pending] = field(default_factory=dict)
    _failed: dict[Path, tuple[int, int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _observer: Observer | None = None
    _thread: threading.Thread | None = None

    @property
    def config(self) -> Config:
        return self.station.config

    @property
    def folder(self) -> Path:
        assert self.config.watch.folder, "watch.folder is not set"
        return Path(self.config.watch.folder).absolute()

    @property
    def done(self) -> Path:
        d = self.config.watch.done_folder
        return Path(d).absolute() if d else self.folder.parent / "evidock-done"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.done.mkdir(parents=True, exist_ok=True)
        handler = _Handler(self)
        self._observer = Observer()
        self._observer.schedule(handler, str(self.folder), recursive=True)
        self._observer.start()
        self._rescan()  # files dropped while we were not watching
        self._thread = threading.Thread(target=self._loop, name="evidock-watch", daemon=True)
        self._thread.start()
        log.info("watching %s for manual imports (done: %s)", self.folder, self.done)

    def stop(self) -> None:
        self._stop.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=10)
        if self._thread is not None:
            self._thread.join(timeout=60)

    def touch(self, path: Path) -> None:
        with self._lock:
            self._pending[path] = _Pending(time.monotonic())

    def _rescan(self) -> None:
        for dirpath, _dirs, files in os.walk(self.folder):
            for name in files:
                self.touch(Path(dirpath) / name)

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            if self.should_pause():
                continue
            try:
                self.process_settled()
            except Exception:  # the store may be full or the catalog locked: keep watching
                log.exception("watch folder: import failed; the files stay and are tried again when they change")

    def process_settled(self, now: float | None = None) -> list[IngestResult]:
        """Import every settled file; returns one result per badge folder offloaded."""
        now = time.monotonic() if now is None else now
        settle = self.config.watch.settle_s
        ready: dict[str, set[bytes]] = {}
        with self._lock:
            for path, p in list(self._pending.items()):
                sig = _sig(path)
                if sig is None:
                    del self._pending[path]  # gone (moved by us, or removed by staff)
                    continue
                if sig != p.sig:  # first look, or changed since the last one: wait from now
                    p.sig, p.last_change = sig, now
                    continue
                if now - p.last_change < settle:
                    continue
                if self._failed.get(path) == sig:
                    del self._pending[path]
                    continue
                rel = path.relative_to(self.folder)
                if len(rel.parts) < 2:
                    log.warning("watch folder: %s is not inside an officer's badge folder; move it to %s/<badge>/",
                                quoted(os.fsencode(rel)), self.folder)
                    self._failed[path] = sig
                    del self._pending[path]
                    continue
                ready.setdefault(rel.parts[0], set()).add(os.fsencode(Path(*rel.parts[1:])))
                del self._pending[path]
        return [self._import(badge, rels) for badge, rels in sorted(ready.items())]

    def _import(self, badge: str, rels: set[bytes]) -> IngestResult:
        root = self.folder / badge
        try:
            result = ingest(self.station, root, officer=badge, only=rels)
        except EvidockError as e:
            log.error("watch folder: import from %s failed: %s", root, e)
            raise
        done: set[bytes] = set()
        for t in result.tasks:
            if t.status in ("stored", "duplicate"):
                self._move_done(badge, t.entry.rel, root / os.fsdecode(t.entry.rel))
                done.add(t.entry.rel)
        for p in result.problems:
            log.warning("watch folder: %s/%s not imported: %s", badge, p.display, p.reason)
        for rel in rels - done:
            # Tried again only once it changes (or the station restarts).
            src = root / os.fsdecode(rel)
            sig = _sig(src)
            if sig is not None:
                self._failed[src] = sig
        if self.on_result:
            self.on_result(badge, result)
        return result

    def _move_done(self, badge: str, rel: bytes, src: Path) -> None:
        dest = self.done / badge / os.fsdecode(rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        n = 1
        final = dest
        while final.exists():
            final = dest.with_name(f"{dest.stem}.{n}{dest.suffix}")
            n += 1
        shutil.move(src, final)


class _Handler(FileSystemEventHandler):
    def __init__(self, wf: WatchFolder):
        self.wf = wf

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        for p in (getattr(event, "dest_path", None), event.src_path):
            if p:
                path = Path(os.fsdecode(p))
                if path.is_relative_to(self.wf.folder):
                    self.wf.touch(path)


def _sig(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)
