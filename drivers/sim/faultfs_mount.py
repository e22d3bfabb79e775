"""Mounting the fault-injecting filesystem for a test or the simulator: is FUSE usable here,
mount it as a child process (``drivers/sim/faultfs.py`` is also a script), wait for it, unmount.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

from drivers.errors import N_
from drivers.mounts import is_mounted, unmount  # noqa: F401  (unmount: re-exported)
from drivers.sim.faultfs import _MFUSEPY_ERROR, EXIT_NO_FUSE, FUSE, FaultfsUnavailable, validate_rules

SCRIPT = Path(__file__).resolve().with_name("faultfs.py")  # run as a script: a FUSE process of its own


# ------------------------------------------------------------------ test helper


@functools.lru_cache(maxsize=None)
def fuse_available() -> tuple[bool, str]:
    """(True, description) if a FUSE mount can be attempted here, else (False, reason)."""
    if not sys.platform.startswith("linux"):
        return False, f"faultfs needs Linux FUSE, this is {sys.platform}"
    if not os.path.exists("/dev/fuse"):
        return False, "/dev/fuse does not exist (no FUSE in this kernel/container)"
    try:
        fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return False, f"cannot open /dev/fuse: {exc}"
    os.close(fd)
    if FUSE is None:
        return False, f"mfusepy/libfuse unusable: {_MFUSEPY_ERROR}"
    if os.geteuid() != 0 and not (shutil.which("fusermount") or shutil.which("fusermount3")):
        return False, "not root and no fusermount to mount with"
    if not (shutil.which("fusermount") or shutil.which("fusermount3") or shutil.which("umount")):
        return False, "neither fusermount nor umount found to unmount with"
    import mfusepy

    return True, f"mfusepy with libfuse {mfusepy.fuse_version_major}.{mfusepy.fuse_version_minor}"




def _stop_process(proc: subprocess.Popen, grace: float = 1.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)  # after the unmount the daemon normally exits by itself
        return
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 30.0)):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)
            return


def _read_log(fh, limit: Optional[int] = 4000) -> str:
    with contextlib.suppress(Exception):
        fh.flush()
        fh.seek(0)
        text = fh.read().decode("utf-8", "replace").strip()
        return text if limit is None else text[-limit:]
    return ""


@contextlib.contextmanager
def mounted_faultfs(
    source_dir: str | os.PathLike,
    mountpoint: str | os.PathLike,
    rules: Optional[dict] = None,
    *,
    timeout: float = 10.0,
) -> Iterator[Path]:
    """Mount a FaultFS view of ``source_dir`` at ``mountpoint`` for the duration of a with-block.

    Yields the mountpoint as a Path.  On exit (also when the block raised) the
    filesystem is lazily unmounted and the daemon is reaped (SIGTERM, then
    SIGKILL), so no stale mount is left behind.  Raises FaultfsUnavailable when
    FUSE is unusable here or the mount does not come up, ValueError for
    malformed rules and RuntimeError if the daemon crashes for another reason.
    """
    rules = validate_rules(rules or {})
    ok, why = fuse_available()
    if not ok:
        raise FaultfsUnavailable(N_("FUSE unavailable: {why}"), why=why)
    mnt = Path(mountpoint)
    mnt.mkdir(parents=True, exist_ok=True)
    if is_mounted(mnt):
        raise RuntimeError(f"{mnt} is already a mountpoint")

    errlog = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), os.fspath(source_dir), os.fspath(mnt), json.dumps(rules)],
        stdin=subprocess.DEVNULL,
        stdout=errlog,
        stderr=errlog,
        close_fds=True,
    )
    body_failed = False
    daemon_log = ""
    try:
        deadline = time.monotonic() + timeout
        while True:
            if is_mounted(mnt):
                # Mounted; one round trip to the daemon proves it is serving.  Any
                # answer will do (with unplug_after_bytes=0 the answer is EIO).
                with contextlib.suppress(OSError):
                    os.stat(mnt)
                break
            code = proc.poll()
            if code is not None:
                msg = _read_log(errlog)
                if code == EXIT_NO_FUSE:
                    raise FaultfsUnavailable(N_("FUSE mount failed: {log}"), log=msg)
                raise RuntimeError(f"faultfs exited with code {code} before mounting:\n{msg}")
            if time.monotonic() > deadline:
                raise FaultfsUnavailable(N_("FUSE mount did not appear within {seconds:.0f}s: {log}"),
                                         seconds=timeout, log=_read_log(errlog))
            time.sleep(0.02)
        yield mnt
    except BaseException:
        body_failed = True
        raise
    finally:
        try:
            unmount(mnt)
            _stop_process(proc)
            if is_mounted(mnt):  # the daemon died without cleaning up: try once more
                unmount(mnt)
        finally:
            daemon_log = _read_log(errlog, limit=None)
            errlog.close()
    # A Python exception inside a FaultFS handler reaches the reader only as a
    # vague EINVAL; make such bugs in faultfs itself fail the test loudly.
    if not body_failed and "Traceback" in daemon_log:
        raise RuntimeError(f"faultfs daemon logged an internal error:\n{daemon_log[-4000:]}")
