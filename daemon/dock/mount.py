"""Mounting a recorder's volume read-only (``ro,nosuid,nodev,noexec``), and unmounting it.

The filesystem type comes from ``blkid``. The kernel's vfat/exfat driver is used when the
running kernel has it (``/proc/filesystems``); otherwise the FUSE drivers ``fusefat`` (FAT)
and ``mount.exfat-fuse`` (exFAT), which is what a station without those modules — like this
project's CI machine — gets. The source is a block device node from udev or, for the
simulated recorder, an image file; either way it reaches the tools as a plain argument after
the options, never through a shell. Every tool run has a timeout.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from daemon.errors import MountError
from daemon.i18n import N_
from drivers import mounts

log = logging.getLogger(__name__)

RO_OPTS = "ro,nosuid,nodev,noexec"
RW_OPTS = "rw,nosuid,nodev,noexec"  # only for the wipe of verified files, then unmounted
TOOL_TIMEOUT = 30.0


@dataclass
class Mounted:
    source: Path
    mountpoint: Path
    fstype: str
    via: str  # "kernel" or the FUSE helper's name

    def unmount(self) -> None:
        unmount(self.mountpoint)


def kernel_has(fstype: str) -> bool:
    try:
        text = Path("/proc/filesystems").read_text()
    except OSError:
        return False
    return any(line.split()[-1] == fstype for line in text.splitlines() if line.strip())


def detect_fstype(source: Path) -> str:
    blkid = shutil.which("blkid") or "/usr/sbin/blkid"
    try:
        p = subprocess.run([blkid, "-o", "value", "-s", "TYPE", "--", str(source)], capture_output=True, text=True,
                           timeout=TOOL_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise MountError(N_("{source}: cannot tell its filesystem type (blkid: {error})"), source=str(source), error=str(e)) from None
    fstype = p.stdout.strip()
    if p.returncode != 0 or not fstype:
        raise MountError(N_("{source}: no filesystem found (blkid exit {code}); the recorder's card may be "
                            "unformatted or damaged — check it on a maintenance PC; nothing was read"),
                         source=str(source), code=p.returncode)
    return fstype


# filesystem type -> (kernel type, FUSE helper argv builder)
_FUSE = {
    # fusefat writes only with "rw+" (its "rw" is still read-only)
    "vfat": lambda src, mp, rw: ["fusefat", "-o", f"{'rw+' if rw else 'ro'},nosuid,nodev,noexec,fsname=evidock-fat",
                                 str(src), str(mp)],
    "exfat": lambda src, mp, rw: ["mount.exfat-fuse", "-o", RW_OPTS if rw else RO_OPTS, str(src), str(mp)],
}


def mount_volume(source: Path, mountpoint: Path, writable: bool = False) -> Mounted:
    """Mount ``source`` (block device or image) read-only at ``mountpoint`` (created if needed).

    ``writable`` is for the wipe of verified files only; the offload always reads a read-only mount.
    """
    fstype = detect_fstype(source)
    mountpoint.mkdir(parents=True, exist_ok=True)
    if mounts.is_mounted(mountpoint):
        raise MountError(N_("{mountpoint} is already a mount point; unmount it first"), mountpoint=str(mountpoint))
    if kernel_has(fstype):
        argv = ["mount", "-t", fstype, "-o", RW_OPTS if writable else RO_OPTS, "--", str(source), str(mountpoint)]
        via = "kernel"
    elif fstype in _FUSE:
        argv = _FUSE[fstype](source, mountpoint, writable)
        via = argv[0]
        if shutil.which(via) is None:
            raise MountError(N_("{source}: the kernel has no {fstype} driver and {via} is not installed; run scripts/setup"),
                             source=str(source), fstype=fstype, via=via)
    else:
        raise MountError(N_("{source}: filesystem {fstype!r} is not one a recorder uses (vfat or exfat expected); not mounted"),
                         source=str(source), fstype=fstype)
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        unmount(mountpoint)
        raise MountError(N_("{source}: mounting took longer than {seconds:g} s; the recorder may be failing"),
                         source=str(source), seconds=TOOL_TIMEOUT) from None
    if p.returncode != 0:
        raise MountError(N_("{source}: mount ({via}) failed: {error}"), source=str(source), via=via,
                         error=p.stderr.strip() or p.returncode)
    # FUSE helpers return before the mount is visible on some systems: wait, bounded.
    end = time.monotonic() + 10
    while not mounts.is_mounted(mountpoint):
        if time.monotonic() > end:
            raise MountError(N_("{source}: {via} reported success but {mountpoint} is not mounted"),
                             source=str(source), via=via, mountpoint=str(mountpoint))
        time.sleep(0.05)
    log.info("mounted %s (%s via %s) %s at %s", source, fstype, via, "read-write" if writable else "read-only", mountpoint)
    return Mounted(source, mountpoint, fstype, via)


def unmount(mountpoint: Path) -> None:
    """Unmount (lazily if busy); a mount point that is not mounted is fine."""
    if not mounts.unmount(mountpoint, TOOL_TIMEOUT):
        raise MountError(N_("{mountpoint}: could not be unmounted; check `findmnt {mountpoint}`"), mountpoint=str(mountpoint))
