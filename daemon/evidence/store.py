"""The evidence object store: content-addressed, write-once, read-only objects.

Invariant 1: a file from a recorder is stored once, under its SHA-256, read-only, and never
rewritten. Everything outside this module asks the store by hash (put a verified staged file,
open, exists, size, iterate) and never builds an object path itself, so a second backend
(S3 with Object Lock, DESIGN.md "where this is going") can sit behind the same interface.

The local backend keeps ``objects/ab/cd/abcd…`` (two fan-out levels) under the data dir and a
``staging/`` directory beside it on the same filesystem, so that the final step is an atomic
``rename``. Objects are mode 0444; directories are fsync'd after every entry they gain.

Deciding an object is there and relying on it are two steps, and retention may delete in
between: an ingest that finds the bytes already stored (or links them in) commits its catalog
row a moment later, while retention removes an object once no catalog row names it. So both
sides hold the object's *lock* (``object_lock``: an ``flock`` on ``locks/<sha>.lock``, which dies
with its process) across the whole of it — the ingest from its link/"present" decision until
its catalog row has committed, retention from its "no row names it" check until the unlink. The
lock is always taken *before* a catalog transaction, never inside one, so the two locks cannot
deadlock. ``put_staged`` and ``delete`` take it themselves too (it is re-entrant per thread).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from daemon.errors import StoreError, StoreFullError
from daemon.i18n import Message, N_, os_error

log = logging.getLogger(__name__)

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX2 = re.compile(r"^[0-9a-f]{2}$")


class ObjectStore(Protocol):
    """What the rest of evidock may ask of an object store."""

    def put_staged(self, staged: Path, sha256: str, size: int) -> str:
        """Bring a verified, fsync'd staged file in as object ``sha256``: "new", "present" or "repaired"."""

    def object_lock(self, sha256: str) -> contextlib.AbstractContextManager[None]:
        """Hold ``sha256`` against deletion and concurrent puts (across processes) while in the block."""

    def exists(self, sha256: str) -> bool: ...

    def size(self, sha256: str) -> int | None: ...

    def open(self, sha256: str) -> BinaryIO: ...

    def open_fd(self, sha256: str) -> int:
        """A read-only file descriptor of the object for re-hashing it in place (the caller closes
        it); a remote backend opens its local cached copy, as ``open_local`` does."""

    def iter_objects(self, on_stray: Callable[[Path, Message], None] | None = None) -> Iterator[str]: ...

    def describe(self, sha256: str) -> str:
        """Where the object is, for messages."""

    def delete(self, sha256: str) -> bool:
        """Remove an object (retention only; the caller audits it); False if it was not there."""

    def open_local(self, sha256: str) -> contextlib.AbstractContextManager[Path]:
        """A readable local file of the object for the block (ffmpeg, a re-hash); a remote
        backend downloads it to a cache. Never written through."""

    def free_for(self, nbytes: int) -> Space:
        """Whether ``nbytes`` more can be staged and stored now, with the free and total bytes."""

    @property
    def location(self) -> str:
        """The store as people know it (a data dir, a bucket), for messages."""


@dataclass(frozen=True)
class Space:
    """Room for new objects: does the asked amount fit, and the free and total bytes where it goes."""

    fits: bool
    free: int
    total: int


def check_sha256(sha256: str) -> str:
    if not _HEX64.match(sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    return sha256


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Object locks this thread holds, by lock path -> depth: the lock is re-entrant per thread (the
# commit stage holds it across put_staged and record_file, which take it again). A second open
# of the same lock file in the same thread would be a new open file description, and flock
# would make the thread wait for itself.
_held = threading.local()


def still_names(path: Path, fd: int) -> bool:
    """Does ``path`` still name the file open as ``fd``? A lock file is unlinked by its holder
    before release, so whoever locks the old inode afterwards must open the new one and retry
    (the object locks here and the partials' locks in ``staging``)."""
    try:
        return os.path.samestat(os.stat(path), os.fstat(fd))
    except FileNotFoundError:
        return False


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class LocalObjectStore:
    """Objects as read-only files under ``<data-dir>/objects``."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / "objects"
        self.staging_dir = self.data_dir / "staging"
        try:
            for d in (self.data_dir, self.root, self.staging_dir):
                d.mkdir(mode=0o750, parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(N_("data dir {path}: cannot create it ({reason}); check the path and its permissions"),
                             path=str(self.data_dir), reason=os_error(e)) from None
        # Real path: the per-thread re-entrancy below is keyed by it, and two spellings of one
        # data dir must not look like two locks (the thread would wait for itself). Created on
        # first use, so that read-only commands on an older data dir need no write access.
        self.locks_dir = Path(os.path.realpath(self.data_dir)) / "locks"
        self._durable: set[Path] = set()
        st_root, st_stage = os.stat(self.root), os.stat(self.staging_dir)
        if st_root.st_dev != st_stage.st_dev:
            raise StoreError(N_("{staging} and {root} are on different filesystems; the final rename would not be atomic"),
                             staging=str(self.staging_dir), root=str(self.root))

    @property
    def location(self) -> str:
        return str(self.data_dir)

    def free_for(self, nbytes: int) -> Space:
        # Staging and objects/ share one filesystem (checked at open): a staged file becomes
        # its object by a link, so the room that counts is the staging area's.
        st = os.statvfs(self.staging_dir)
        free = st.f_bavail * st.f_frsize
        return Space(free >= nbytes, free, st.f_blocks * st.f_frsize)

    @contextlib.contextmanager
    def open_local(self, sha256: str) -> Iterator[Path]:
        path = self.path_of(sha256)
        if not path.is_file():
            raise StoreError(N_("store {root}: object {sha256} is not there; run `evidock verify`"), root=str(self.root),
                             sha256=sha256)
        yield path

    def path_of(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def describe(self, sha256: str) -> str:
        return str(self.path_of(sha256))

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def size(self, sha256: str) -> int | None:
        try:
            return self.path_of(sha256).stat().st_size
        except FileNotFoundError:
            return None

    def open(self, sha256: str) -> BinaryIO:
        return open(self.path_of(sha256), "rb")

    def open_fd(self, sha256: str) -> int:
        return os.open(self.path_of(sha256), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)

    def iter_objects(self, on_stray: Callable[[Path, Message], None] | None = None) -> Iterator[str]:
        """Every object file present, in hash order; anything else under ``objects/`` goes to ``on_stray``.

        Only ``objects/ab/cd/abcd…`` regular files are objects. A stray entry (a file where a
        fan-out directory belongs, a name that is not its own hash prefix, a symlink, a FIFO)
        is never an object and never followed: it is handed to ``on_stray(path, why)`` and the
        walk goes on, so one junk file cannot stop a nightly scrub. Without ``on_stray`` strays
        are logged as warnings.
        """
        def stray(path: Path, why: Message) -> None:
            if on_stray is None:
                log.warning("stray entry in the object store: %s (%s)", path, why)
            else:
                on_stray(path, why)

        def entries(d: Path) -> list[os.DirEntry[str]]:
            try:
                with os.scandir(d) as it:
                    return sorted(it, key=lambda e: e.name)
            except OSError as e:
                stray(d, Message(N_("cannot be listed ({reason})"), reason=os_error(e)))
                return []

        for a in entries(self.root):
            if not (_HEX2.match(a.name) and a.is_dir(follow_symlinks=False)):
                stray(Path(a.path), Message(N_("not a fan-out directory (objects/ab/cd/<sha256>)")))
                continue
            for b in entries(Path(a.path)):
                if not (_HEX2.match(b.name) and b.is_dir(follow_symlinks=False)):
                    stray(Path(b.path), Message(N_("not a fan-out directory (objects/ab/cd/<sha256>)")))
                    continue
                for obj in entries(Path(b.path)):
                    if not (_HEX64.match(obj.name) and obj.name.startswith(a.name + b.name)):
                        stray(Path(obj.path), Message(N_("not named after its own SHA-256 in this directory")))
                    elif not obj.is_file(follow_symlinks=False):
                        stray(Path(obj.path), Message(N_("not a regular file")))
                    else:
                        yield obj.name

    @contextlib.contextmanager
    def object_lock(self, sha256: str) -> Iterator[None]:
        """Hold object ``sha256``'s lock for the block: no other holder (thread or process) meanwhile.

        Take it before a catalog transaction, never inside one (see the module docstring). The
        lock file is unlinked by its holder before release; whoever opened the old file and then
        gets its lock sees the path is no longer that file and tries again, so no lock files pile up.
        """
        path = self.locks_dir / f"{check_sha256(sha256)}.lock"
        held: dict[Path, int] = _held.__dict__.setdefault("paths", {})
        if held.get(path):
            held[path] += 1
            try:
                yield
            finally:
                held[path] -= 1
            return
        fd = self._acquire(path)
        held[path] = 1
        try:
            yield
        finally:
            del held[path]
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            os.close(fd)

    def _acquire(self, path: Path) -> int:
        while True:
            try:
                try:
                    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o640)
                except FileNotFoundError:
                    self.locks_dir.mkdir(mode=0o750, exist_ok=True)
                    continue
            except OSError as e:
                raise StoreError(N_("store {root}: cannot open the object lock {path} ({reason}); check the permissions "
                                    "of {locks}"), root=str(self.root), path=str(path), reason=os_error(e),
                                 locks=str(self.locks_dir)) from None
            try:
                # Blocking: every holder does bounded work (a hash, one catalog commit) and a
                # dead holder's lock is released by the kernel.
                fcntl.flock(fd, fcntl.LOCK_EX)
                current = still_names(path, fd)
            except BaseException:
                os.close(fd)
                raise
            if current:
                return fd
            os.close(fd)  # locked a file its last holder had already unlinked: take the new one

    def put_staged(self, staged: Path, sha256: str, size: int) -> str:
        """Bring a verified staged copy in as object ``sha256``.

        Returns "new", "present" (the store already held these bytes — checked by hash, not
        trusted by name) or "repaired" (the stored object was damaged and is replaced by the
        verified copy, so the recorder's file is not wiped against a rotten object).

        The staged file is left where it is (after a link it is the object's inode): the caller
        drops it only once the catalog row that relies on the object has committed, holding
        ``object_lock`` from before this call until then — if the object vanished in between,
        the staged copy is what brings it back.
        """
        with self.object_lock(sha256):
            return self._put_locked(staged, sha256, size)

    def _put_locked(self, staged: Path, sha256: str, size: int) -> str:
        dest = self.path_of(sha256)
        outcome = "new"
        try:
            fresh = self._make_dirs(dest.parent)
            # link+unlink rather than rename: a racing writer of the same hash is never replaced
            # silently (link fails with EEXIST); the verified bytes are the bytes in objects/.
            try:
                os.link(staged, dest)
            except FileExistsError:
                # The same inode: our own verified copy, linked by a run of this partial that
                # died before its catalog commit; no need to hash it again.
                same = os.path.samestat(os.stat(staged), os.stat(dest))
                outcome = "present" if same or self._intact(dest, sha256, size) else "repaired"
                if outcome == "repaired":
                    log.error("object %s was damaged; replaced by a freshly verified copy", sha256)
                    os.chmod(staged, 0o444)
                    os.replace(staged, dest)
            os.chmod(dest, 0o444)
            # On every path: the object's directory entry must be durable before the catalog
            # names it (and before a recorder may be wiped against it), whoever linked it; and
            # so must the entries of fan-out directories created for it, deepest first. All
            # the entries are made first and then fsync'd, so that one journal commit carries
            # them all and the fsyncs after the first find little left to do.
            fsync_dir(dest.parent)
            for d in fresh:
                fsync_dir(d.parent)
                self._durable.add(d)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StoreFullError(str(self.root), 4096, free_bytes(self.root), Message(N_("the directory entry of {sha256}"), sha256=sha256)) from None
            raise StoreError(N_("store {root}: cannot move {name} into place as {sha256} ({reason})"), root=str(self.root),
                             name=staged.name, sha256=sha256, reason=os_error(e)) from None
        return outcome

    def _intact(self, path: Path, sha256: str, size: int) -> bool:
        from daemon.evidence.transfer import hash_fd

        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            return hash_fd(fd) == (sha256, size)
        finally:
            os.close(fd)

    def delete(self, sha256: str) -> bool:
        """Remove object ``sha256``; False if it is not there. Only retention calls this, holding
        ``object_lock`` across its check that no catalog row names the object and this call.

        The object is 0444, but unlinking needs write permission on its *directory*, not on the
        file, so the file's mode is left alone (making evidence writable would only open a
        window). If the fan-out directory was hardened read-only, it gets owner-write for this
        one unlink and its mode back right after.
        """
        with self.object_lock(sha256):
            return self._delete_locked(sha256)

    def _delete_locked(self, sha256: str) -> bool:
        path = self.path_of(sha256)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        if not stat.S_ISREG(st.st_mode):
            raise StoreError(N_("store {root}: {path} is not a regular file; not deleted — inspect it by hand"),
                             root=str(self.root), path=str(path))
        parent = path.parent
        try:
            try:
                os.unlink(path)
            except PermissionError:
                mode = stat.S_IMODE(os.stat(parent).st_mode)
                if mode & stat.S_IWUSR:
                    raise
                os.chmod(parent, mode | stat.S_IWUSR)
                try:
                    os.unlink(path)
                finally:
                    os.chmod(parent, mode)
            fsync_dir(parent)
        except OSError as e:
            raise StoreError(N_("store {root}: cannot delete object {sha256} ({reason}); it is kept"), root=str(self.root),
                             sha256=sha256, reason=os_error(e)) from None
        return True

    def _make_dirs(self, d: Path) -> list[Path]:
        """Create the fan-out directories; return, deepest first, those whose entry in their
        parent this process has not yet made durable — also when another thread or an earlier
        crashed run created them. The caller fsyncs their parents (``_put_locked``)."""
        if d in self._durable or d == self.root:
            return []
        above = self._make_dirs(d.parent)
        with contextlib.suppress(FileExistsError):
            d.mkdir(mode=0o750)
        return [d, *above]
