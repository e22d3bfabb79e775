"""A backup target on a path: a second disk or a NAS mount (``kind = "path"``).

Layout under the target's directory: the keys of ``daemon.backup.target`` as paths
(``objects/ab/cd/<sha256>``, ``catalog/<station>/<stamp>.sqlite`` + ``.json``). A copy is
written to a temporary name beside its final one, fsync'd, renamed, its directory fsync'd, and
then read back cold (``O_DIRECT``, or after dropping its cached pages — the store's own re-read,
``daemon.evidence.transfer.hash_fd``): ``put`` returns only when that read gives the object's
SHA-256. Objects are read-only (0444). A file that exists under its final name was complete
and verified when it got there (only a verified copy is renamed into place).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from datetime import datetime
from pathlib import Path

from daemon.backup.target import Copy, marker_key, object_key
from daemon.clock import iso, now_utc
from daemon.crashpoints import crashpoint
from daemon.errors import BackupError
from daemon.evidence.store import fsync_dir
from daemon.evidence.transfer import hash_fd
from daemon.i18n import N_



class PathTarget:
    kind = "path"

    def __init__(self, name: str, root: Path, *, offsite: bool = False, include_secret: bool = False,
                 station_id: str = ""):
        self.name, self.root, self.station_id = name, Path(root), station_id
        self.offsite, self.include_secret = offsite, include_secret

    # -- helpers --------------------------------------------------------------------------------

    def _fail(self, what: str, e: OSError) -> BackupError:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            return BackupError(N_("backup target {target} ({path}) is full writing {what}; free space there or add a "
                                  "larger disk"), target=self.name, path=str(self.root), what=what)
        return BackupError(N_("backup target {target} ({path}): cannot write {what} ({reason})"), target=self.name,
                           path=str(self.root), what=what, reason=e.strerror or str(e))

    def path_of(self, key: str) -> Path:
        return self.root / key

    def _write(self, key: str, source: Path, mode: int) -> str:
        """Copy ``source`` to ``key`` (temp, fsync, rename, fsync dir); the SHA-256 of a cold re-read."""
        dest = self.path_of(key)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        try:
            self._mkdirs(dest.parent)
            for stale in dest.parent.glob(f".{dest.name}.*.tmp"):
                stale.unlink()  # left by a run that died mid-copy: never renamed, never counted
            with open(source, "rb") as src, open(tmp, "wb") as out:
                _copy(src.fileno(), out.fileno())
                crashpoint("backup-copy-mid")
                os.fsync(out.fileno())
            os.chmod(tmp, mode)
            fd = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC)
            try:
                sha, _size = hash_fd(fd)
            finally:
                os.close(fd)
            os.replace(tmp, dest)
            fsync_dir(dest.parent)
        except OSError as e:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise self._fail(key, e) from None
        return sha

    def _mkdirs(self, d: Path) -> None:
        fresh = []
        p = d
        while not p.exists() and p != self.root:
            fresh.append(p)
            p = p.parent
        for x in reversed(fresh):
            x.mkdir(mode=0o750, exist_ok=True)
            fsync_dir(x.parent)

    # -- the Target protocol ----------------------------------------------------------------------

    def check(self) -> None:
        if not self.root.is_dir():
            raise BackupError(N_("backup target {target}: {path} is not a directory (is the disk mounted?)"),
                              target=self.name, path=str(self.root))
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise BackupError(N_("backup target {target}: cannot write to {path}; check its permissions"),
                              target=self.name, path=str(self.root))

    def has(self, sha256: str) -> bool:
        return self.path_of(object_key(sha256)).is_file()

    def put(self, sha256: str, source: Path, size: int, retain_until: datetime | None,
            legal_hold: bool = False) -> Copy:
        key = object_key(sha256)
        dest = self.path_of(key)
        if dest.is_file() and dest.stat().st_size == size and self._hash(dest) == sha256:
            return Copy(sha256, size, None, iso(now_utc()))  # already there and intact
        if dest.exists():
            try:
                os.chmod(dest, 0o644)
                dest.unlink()  # a damaged copy: replaced by a fresh one
            except OSError as e:
                raise self._fail(key, e) from None
        got = self._write(key, source, 0o444)
        if got != sha256:
            try:
                dest.unlink()
            except OSError:
                pass
            raise BackupError(N_("backup target {target}: the copy of {sha256} read back as {got}; the disk at {path} "
                                 "may be failing"), target=self.name, sha256=sha256, got=got, path=str(self.root))
        return Copy(sha256, size, None, iso(now_utc()))

    def _hash(self, path: Path) -> str | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            return None
        try:
            return hash_fd(fd)[0]
        except OSError:
            return None
        finally:
            os.close(fd)

    def verify(self, copy: Copy) -> bool:
        return self._hash(self.path_of(object_key(copy.sha256))) == copy.sha256

    def fetch(self, copy: Copy, dest: Path) -> None:
        try:
            shutil.copyfile(self.path_of(object_key(copy.sha256)), dest)
        except OSError as e:
            raise BackupError(N_("backup target {target}: cannot read {sha256} ({reason})"), target=self.name,
                              sha256=copy.sha256, reason=e.strerror or str(e)) from None

    def extend_retention(self, copy: Copy, retain_until: datetime) -> None:
        return None

    def set_legal_hold(self, copy: Copy, on: bool) -> bool:
        return False  # a file has no legal hold: evidock's own rules keep it (it never deletes one held)

    def delete(self, copy: Copy) -> bool:
        p = self.path_of(object_key(copy.sha256))
        try:
            p.unlink()
        except FileNotFoundError:
            return True
        except OSError as e:
            raise self._fail(object_key(copy.sha256), e) from None
        fsync_dir(p.parent)
        return True

    def put_snapshot(self, key: str, source: Path, meta: dict[str, object]) -> None:
        want = _sha_file(source)
        got = self._write(key, source, 0o444)
        if got != want:
            raise BackupError(N_("backup target {target}: the catalog snapshot {key} read back damaged"),
                              target=self.name, key=key)
        side = source.with_name(source.name + ".json")
        side.write_text(json.dumps(meta, sort_keys=True, indent=2))
        self._write(key + ".json", side, 0o444)
        side.unlink()

    def read_marker(self) -> str | None:
        try:
            return self.path_of(marker_key(self.station_id, self.name)).read_text().strip() or None
        except FileNotFoundError:
            return None
        except OSError as e:
            raise BackupError(N_("backup target {target} ({path}): cannot read {what} ({reason})"), target=self.name,
                              path=str(self.root), what=marker_key(self.station_id, self.name),
                              reason=e.strerror or str(e)) from None

    def write_marker(self, marker: str) -> None:
        key = marker_key(self.station_id, self.name)
        tmp = self.root / f".marker.{os.getpid()}.tmp"
        try:
            tmp.write_text(marker + "\n")
            self._write(key, tmp, 0o644)
        finally:
            tmp.unlink(missing_ok=True)

    def snapshots(self, station_id: str) -> list[str]:
        d = self.root / "catalog" / station_id
        if not d.is_dir():
            return []
        return sorted(f"catalog/{station_id}/{p.name}" for p in d.iterdir()
                      if p.name.endswith(".sqlite") and (d / (p.name + ".json")).is_file())

    def fetch_snapshot(self, key: str, dest: Path) -> dict[str, object]:
        try:
            shutil.copyfile(self.path_of(key), dest)
            return dict(json.loads(self.path_of(key + ".json").read_text()))
        except (OSError, ValueError) as e:
            raise BackupError(N_("backup target {target}: cannot read the catalog snapshot {key} ({reason})"),
                              target=self.name, key=key, reason=str(e)) from None

    def delete_snapshot(self, key: str) -> bool:
        for k in (key + ".json", key):
            try:
                self.path_of(k).unlink()
            except FileNotFoundError:
                pass
            except OSError as e:
                raise self._fail(k, e) from None
        return True


def _copy(src: int, dst: int) -> None:
    """The whole of ``src`` into ``dst`` in the kernel (sendfile). Not copy_file_range: on the same
    btrfs/XFS it may share the blocks (a reflink), and a backup must be a copy of its own."""
    size = os.fstat(src).st_size
    done = 0
    while done < size:
        n = os.sendfile(dst, src, done, min(size - done, 1 << 30))
        if n == 0:
            break  # the source shrank: the hash check after the copy says so
        done += n


def _sha_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hash_fd(f.fileno(), drop_cache=False)[0]
