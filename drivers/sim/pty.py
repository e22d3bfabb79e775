"""The simulated recorder's control channel on a pty: the master side answers GA/T 947 requests;
closing it looks like an unplug to the driver on the slave side.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
import tty
from pathlib import Path
from typing import TYPE_CHECKING

from drivers.errors import WireError
from drivers.zfywire import (
    FrameParser,
)

if TYPE_CHECKING:
    from drivers.sim.simulator import SimRecorder

log = logging.getLogger(__name__)



# -- the control channel: a pty whose master the recorder answers on ---------------------------

ENDLESS_CHUNK = b"\x00" * 256


class PtyChannel:
    """Serves a ``SimRecorder`` on the master side of a new pty until ``close``/``unplug``."""

    def __init__(self, recorder: SimRecorder, link: Path | None = None):
        self.recorder = recorder
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line discipline: bytes are bytes
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)
        self.link = Path(link) if link else None
        if self.link:
            tmp = self.link.with_name(f".{self.link.name}.{os.getpid()}.tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            os.symlink(self.path, tmp)
            os.replace(tmp, self.link)
        self.unplugged = threading.Event()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, name="evidock-sim-pty", daemon=True)
        self._thread.start()

    def unplug(self) -> None:
        """Pull the cable: the pty closes (the driver's next read or write fails)."""
        if not self.unplugged.is_set():
            self.unplugged.set()
            self._wake()

    def close(self) -> None:
        self._stop.set()
        self._wake()
        self._thread.join(10)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _hang_up(self) -> None:
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.master = self._slave = -1
        if self.link:
            with contextlib.suppress(OSError):
                if os.readlink(self.link) == self.path:
                    self.link.unlink()
        log.info("simulator: control channel %s closed%s", self.path, " (unplugged)" if self.unplugged.is_set() else "")

    def _serve(self) -> None:
        parser = FrameParser()
        out = bytearray()
        pending: list[tuple[float, bytes]] = []
        streaming = False
        try:
            while not self._stop.is_set() and not self.unplugged.is_set():
                now = time.monotonic()
                due = [p for p in pending if p[0] <= now]
                for p in due:
                    pending.remove(p)
                    out += p[1]
                wait = min((p[0] - now for p in pending), default=None)
                wlist = [self.master] if (out or streaming) else []
                r, w, _ = select.select([self.master, self._wake_r], wlist, [], wait)
                if self._wake_r in r:
                    os.read(self._wake_r, 64)
                if self.master in r:
                    try:
                        data = os.read(self.master, 4096)
                    except BlockingIOError:
                        data = b""
                    parser.feed(data)
                    while True:
                        try:
                            frame = parser.next()
                        except WireError as e:
                            log.warning("simulator: dropped a bad request frame: %s", e)
                            continue
                        if frame is None:
                            break
                        del parser.noise[:]
                        streaming = False
                        reply = self.recorder.handle(frame)
                        if reply.unplug:
                            self.unplugged.set()
                            break
                        if reply.endless:
                            streaming = True
                        elif reply.data:
                            if reply.delay:
                                pending.append((time.monotonic() + reply.delay, reply.data))
                            else:
                                out += reply.data
                if self.master in w:
                    try:
                        if out:
                            n = os.write(self.master, out)
                            del out[:n]
                        elif streaming:
                            os.write(self.master, ENDLESS_CHUNK)
                    except BlockingIOError:
                        pass
        except OSError as e:
            log.warning("simulator: control channel failed: %s", e)
        finally:
            self._hang_up()
