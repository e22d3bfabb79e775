"""Process helpers: this boot's id and whether a recorded process is still the one that is running,
so a session or a media job left "running" by a process that died (crash, kill, power cut) is
recognised as such — and neither a reused pid nor a process of a later boot passes for it.
"""

from __future__ import annotations

import os
from pathlib import Path

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    """This boot's id (the kernel's random boot_id), or "" where /proc does not tell."""
    try:
        return BOOT_ID_PATH.read_text().strip()
    except OSError:
        return ""


def proc_start(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the name before ')' may contain spaces


def alive(pid: int, *, boot: str | None = None, start: str | None = None) -> bool:
    """Is process ``pid`` running — on boot ``boot`` and started at ``start``, where given?

    Our own pid counts as running (the daemon runs several sessions at once). A pid owned by
    another user is running too (``kill`` answers EPERM, not ESRCH).
    """
    if pid <= 0 or (boot is not None and boot != boot_id()):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return start is None or proc_start(pid) == start


def process_token(pid: int | None = None) -> str:
    """Who holds a claim: ``pid:start:boot``, so a reused pid or a later boot never passes for it."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{proc_start(pid)}:{boot_id()}"


def token_alive(token: str) -> bool:
    """Is the process a ``process_token`` names still the one running?"""
    pid, _, rest = token.partition(":")
    start, _, boot = rest.partition(":")
    return pid.isdigit() and bool(start) and alive(int(pid), boot=boot, start=start)
