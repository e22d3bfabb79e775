"""What is mounted where, and unmounting: the one implementation for the dock's recorder mounts
and the simulator's FUSE filesystems.

Mount points are read from ``/proc/self/mountinfo``, never by touching the mounted filesystem:
a recorder pulled mid-read leaves a FUSE mount whose every ``stat`` fails or hangs, and
``os.path.ismount`` would call that mount "not mounted" and leave it behind. Written by hand
(no library reads mountinfo without also depending on the mounted filesystem answering).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess

MOUNTINFO = "/proc/self/mountinfo"


def _unescape(field: bytes) -> bytes:
    # mountinfo escapes space, tab, newline and backslash as \ooo (octal).
    out = bytearray()
    i = 0
    while i < len(field):
        if field[i : i + 1] == b"\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(int(field[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return bytes(out)


def mount_points() -> set[bytes] | None:
    """Every mount point of this mount namespace, or None where /proc does not tell."""
    try:
        with open(MOUNTINFO, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    points = set()
    for line in data.splitlines():
        fields = line.split(b" ")
        if len(fields) > 4:
            points.add(_unescape(fields[4]))
    return points


def real(mountpoint: str | bytes | os.PathLike) -> bytes:
    return os.path.realpath(os.fsencode(mountpoint))


def is_mounted(mountpoint: str | bytes | os.PathLike) -> bool:
    """True if something is mounted at ``mountpoint`` (falls back to ``os.path.ismount`` without /proc)."""
    points = mount_points()
    if points is None:
        return os.path.ismount(mountpoint)
    return real(mountpoint) in points


def unmount(mountpoint: str | os.PathLike, timeout: float = 30.0) -> bool:
    """Unmount ``mountpoint`` if it is mounted: plainly, then lazily if it is busy (a hung FUSE
    reader, a dead card). True when nothing is mounted there any more; a point that was not
    mounted is fine. Paths go after ``--``, never in an option position."""
    path = os.fspath(mountpoint)
    for argv in (["umount", "--", path], ["fusermount", "-u", "-z", "--", path],
                 ["fusermount3", "-u", "-z", "--", path], ["umount", "-l", "--", path]):
        if not is_mounted(path):
            return True
        if shutil.which(argv[0]) is None:
            continue
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False)
    return not is_mounted(path)
