"""Is the station's own clock synchronised? Every recorder drift is measured against it, and
every deadline (art. 11's two days, retention) counts from it.

Read as ``timedatectl`` and chrony read it: the kernel's NTP state from ``adjtimex(2)`` with
``modes = 0`` (a read, no privilege needed). The clock is synchronised when the call's state is
not ``TIME_ERROR`` and ``STA_UNSYNC`` is not set in ``status`` — the test systemd's
``timedatectl`` (``NTPSynchronized``) makes; ``maxerror`` (µs) says how far off it may be.

Why by hand: the standard library has no binding for ``adjtimex`` (``time.clock_gettime`` reads
clocks, not the kernel's NTP state), and no maintained PyPI package offers one; ``struct timex``
is declared here per ``<sys/timex.h>`` (glibc, x86-64 / aarch64 LP64 layout) and called through
ctypes. Anything that cannot be read (another OS, a seccomp filter) is ``unknown``, never an error.

``decide(state, timex)`` is the decision, separate from the call, so that a test can hand it a
real ``struct timex`` filled as the kernel fills it for a synchronised clock (which a test
machine without NTP and privilege cannot provoke).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
from dataclasses import dataclass
from typing import Any

from daemon.i18n import N_, Message

TIME_ERROR = 5  # adjtimex's return: the clock is not synchronised
STA_UNSYNC = 0x0040  # status bit: clock unsynchronised


class Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class Timex(ctypes.Structure):
    """``struct timex`` of <sys/timex.h> (glibc): 11 longs/ints, time, 9 more, then 11 reserved ints."""

    _fields_ = [
        ("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
        ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
        ("time", Timeval), ("tick", ctypes.c_long), ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int), ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


@dataclass(frozen=True)
class StationClock:
    """The station clock's state: ``synced`` | ``unsynced`` | ``unknown``, with the kernel's figures."""

    state: str
    kernel_state: int | None = None  # adjtimex's return (0 TIME_OK … 5 TIME_ERROR)
    status: int | None = None  # the STA_* bits
    maxerror_us: int | None = None
    reason: str | None = None  # why unknown (English)

    @property
    def synced(self) -> bool:
        return self.state == "synced"

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "kernel_state": self.kernel_state, "status": self.status,
                "maxerror_us": self.maxerror_us, "reason": self.reason}

    def message(self) -> Message:
        """For people (status, config check)."""
        if self.state == "synced":
            return Message(N_("station clock synchronised (maximum error {ms} ms)"), ms=(self.maxerror_us or 0) // 1000)
        if self.state == "unsynced":
            return Message(N_("station clock NOT synchronised (kernel NTP state {state}, maximum error {s} s): recorder "
                              "clock drifts and filing deadlines are measured against it; enable NTP "
                              "(`timedatectl set-ntp true`, chrony)"),
                           state=self.kernel_state, s=(self.maxerror_us or 0) // 1_000_000)
        return Message(N_("station clock: synchronisation state unknown ({reason})"), reason=self.reason or "?")


def decide(kernel_state: int, tx: Timex) -> StationClock:
    """The decision, from what ``adjtimex`` returned and the ``struct timex`` it filled."""
    unsynced = kernel_state == TIME_ERROR or bool(tx.status & STA_UNSYNC)
    return StationClock("unsynced" if unsynced else "synced", kernel_state, int(tx.status), int(tx.maxerror))


def read() -> StationClock:
    """Ask the kernel (``adjtimex`` with modes = 0: read only)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        adjtimex = libc.adjtimex
    except (OSError, AttributeError) as e:
        return StationClock("unknown", reason=f"no adjtimex here: {e}")
    adjtimex.argtypes = [ctypes.POINTER(Timex)]
    adjtimex.restype = ctypes.c_int
    tx = Timex(modes=0)
    rc = adjtimex(ctypes.byref(tx))
    if rc < 0:
        err = ctypes.get_errno()
        return StationClock("unknown", reason=f"adjtimex failed: {errno.errorcode.get(err, err)}")
    return decide(rc, tx)
