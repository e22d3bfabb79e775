"""One lock per job, across processes: an ``flock`` on ``<data-dir>/locks/job-<name>.lock``.

The daemon's scheduler and ``evidock jobs run NAME`` both take it before a run, so a job never
runs twice at once. It dies with its holder (the kernel drops an ``flock`` with the process),
so a killed run never blocks the next one. Unlike the object locks (``daemon/evidence/store.py``)
the file is never unlinked: there is one per job, not one per object, so none pile up, and a
file that is never replaced cannot be locked under an old inode. The holder writes its pid into
it, only to name it in the message a second start gets.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from daemon.errors import JobBusy, StoreError
from daemon.i18n import N_, os_error


def lock_path(data_dir: Path, job: str) -> Path:
    return Path(data_dir) / "locks" / f"job-{job}.lock"


@contextlib.contextmanager
def job_lock(data_dir: Path, job: str) -> Iterator[None]:
    """Hold job ``job``'s lock for the block, or raise ``JobBusy`` at once naming the holder."""
    path = lock_path(data_dir, job)
    try:
        path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o640)
    except OSError as e:
        raise StoreError(N_("cannot open the lock of job {job} at {path} ({reason}); check the data dir's "
                            "permissions"), job=job, path=str(path), reason=os_error(e)) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            raise JobBusy(N_("job {job} is running right now (pid {pid}); this start did not run it — "
                             "see `evidock jobs`"), job=job, pid=holder if holder.isdigit() else "?") from None
        with contextlib.suppress(OSError):  # only informational: the lock is held either way
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the flock
