"""The store of ``store.backend = "s3"``: local staging that is also a bounded cache of the bucket.

With the S3 backend the bucket is the system of record and ``objects/`` in the data dir holds the
objects the station has on disk: those waiting for their upload (``daemon.store.uploads``), and
copies of stored ones it needs (recent footage, an original a proxy is being made from).
``store.cache_bytes`` bounds it. ``evict`` (after an upload pass that stored something, and before
a download that needs room) removes the least recently used local copies until the bound holds —
only of objects that are *stored* (put, checked by ``head_object``, version id recorded) and whose
station ref is written (so no other station's ``store gc`` can take the bucket's copy while this
station counts on it), never one still waiting, never one in use. Evicting a copy deletes no
evidence: the bucket keeps it under Object Lock, ``exists`` and ``size`` still answer for it, and
``evidock verify`` checks it there (``check_in_bucket``: the version's checksum by ``head_object``).

``open_local(sha)`` of an evicted object downloads the recorded version (``get_object`` with its
version id) into a temporary file in staging, fsyncs it, re-hashes it from the disk and only then
links it into ``objects/`` read-only and hands out its path; other bytes are refused, naming the
object and the version, and nothing is handed out. The download happens under the object's lock
(``object_lock``), so concurrent ``open_local`` of one object — threads or processes — download
it once.

In use: ``open_local`` holds a *pin* for its block, a shared ``flock`` on ``locks/<sha>.pin``
(dies with its process); eviction takes it exclusively without waiting and skips the object when
that fails. Pins are taken and pin files unlinked only under the object's lock, so a pin cannot
be taken on a file eviction is removing. ``open_fd`` needs no pin: an unlinked file stays readable
through a descriptor already open; it opens only a local copy (an offload comparing a recorder's
file with an evicted object stages the file rather than download the object). Least recently
used: the copy's access time, which ``open_local`` sets (explicitly, so ``noatime`` mounts work
too); ``open_fd`` (verify's scrub, an offload's comparison) reads with ``O_NOATIME`` where it may,
so a nightly scrub does not make every copy "recent".
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from daemon.catalog.db import Catalog
from daemon.errors import EvidockError, StoreError
from daemon.evidence.store import LocalObjectStore, _held, check_sha256, still_names
from daemon.evidence.transfer import hash_fd
from daemon.i18n import N_, Message, message_of

log = logging.getLogger(__name__)

EVICT_EVERY_S = 600.0  # an upload pass that stored nothing evicts at most this often (evict_due)
BUCKET_DOWN_S = 60.0  # verify: after the bucket failed to answer, the next objects are not asked for this long


class Bucket(Protocol):
    """What the cache asks of the store's bucket (``daemon.store.bucket.StoreBucket``)."""

    bucket: str

    def read_version(self, sha256: str, version: str, sink: BinaryIO) -> tuple[str, int]: ...

    def head_version(self, sha256: str, version: str) -> dict[str, Any] | None: ...


@dataclass
class Eviction:
    """One eviction pass: what went, what was kept in use, and the cache after it."""

    evicted: int = 0
    evicted_bytes: int = 0
    busy: int = 0  # evictable copies skipped because they were in use
    cached: int = 0  # local copies after the pass
    cached_bytes: int = 0
    stored_only: int = 0  # stored objects with no local copy after the pass (in the bucket only)

    def to_json(self) -> dict[str, int]:
        return {"evicted": self.evicted, "evicted_bytes": self.evicted_bytes, "busy": self.busy, "cached": self.cached,
                "cached_bytes": self.cached_bytes, "in_bucket_only": self.stored_only}


class CachedObjectStore(LocalObjectStore):
    """``objects/`` as local staging and cache in front of the bucket of ``[store.s3]``."""

    def __init__(self, data_dir: Path, cache_bytes: int, bucket: Callable[[], Bucket], reserve_bytes: int = 0):
        super().__init__(data_dir)
        self.cache_bytes = cache_bytes
        self.reserve_bytes = reserve_bytes  # store.reserve_bytes: a download leaves it free, as an offload does
        self._bucket_factory = bucket
        self._bucket: Bucket | None = None
        self._local = threading.local()  # a catalog connection per thread, for version ids
        self._evicted_at: float | None = None  # time.monotonic() of the last pass
        self._down: tuple[float, Message] | None = None  # the bucket failed verify's question: until when, why

    # -- what the catalog says is stored ----------------------------------------------------

    def _catalog(self) -> Catalog:
        cat = getattr(self._local, "catalog", None)
        if cat is None:
            cat = self._local.catalog = Catalog(self.data_dir)
        return cat

    def stored(self, sha256: str) -> tuple[str, int] | None:
        """The version id and size of the object as stored in the bucket and still this station's; else None."""
        try:
            row = self._catalog().conn.execute(
                "SELECT version_id, size FROM store_uploads WHERE sha256 = ? AND state = 'stored'"
                " AND version_id IS NOT NULL AND COALESCE(ref, '') NOT IN ('drop', 'dropped')"
                " AND EXISTS (SELECT 1 FROM objects o WHERE o.sha256 = store_uploads.sha256)", (sha256,)).fetchone()
        except sqlite3.OperationalError:
            return None  # a catalog from before the upload queue: nothing is stored in a bucket
        return (str(row[0]), int(row[1])) if row else None

    def _evictable(self, sha256: str) -> bool:
        """Stored, with its version id, and this station's ref in the bucket (no gc may take it)."""
        row = self._catalog().conn.execute(
            "SELECT 1 FROM store_uploads WHERE sha256 = ? AND state = 'stored' AND version_id IS NOT NULL"
            " AND ref = 'written'", (sha256,)).fetchone()
        return row is not None

    def cached(self, sha256: str) -> bool:
        """Is there a local copy of the object?"""
        return super().exists(sha256)

    def exists(self, sha256: str) -> bool:
        return self.cached(sha256) or self.stored(sha256) is not None

    def size(self, sha256: str) -> int | None:
        local = super().size(sha256)
        if local is not None:
            return local
        stored = self.stored(sha256)
        return stored[1] if stored else None

    def bucket(self) -> Bucket:
        if self._bucket is None:
            self._bucket = self._bucket_factory()
        return self._bucket

    # -- reading ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def open_local(self, sha256: str) -> Iterator[Path]:
        """A local, read-only copy of the object for the block, downloaded first if it was evicted.

        The copy is pinned for the block: no eviction removes it while ffmpeg, a backup or an
        upload reads it by its path."""
        path = self.path_of(sha256)
        if not self.cached(sha256):
            stored = self.stored(sha256)
            if stored is not None:
                self.evict(room=stored[1])  # before the object's lock: eviction only tries locks
        with self.object_lock(sha256):
            pin = self._pin(sha256)
            try:
                if not self.cached(sha256):
                    self._download(sha256)
            except BaseException:
                os.close(pin)
                raise
        try:
            with contextlib.suppress(OSError):  # not ours (a restore by hand): the LRU order is only a little off
                os.utime(path, ns=(time.time_ns(), os.stat(path).st_mtime_ns))
            yield path
        finally:
            self._unpin(sha256, pin)

    def open_fd(self, sha256: str) -> int:
        """The local copy only (``FileNotFoundError`` when evicted): its callers re-hash in place — an
        offload comparing a recorder's file stages that file instead of downloading the object, and
        verify checks an evicted object in the bucket (``check_in_bucket``)."""
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            return os.open(self.path_of(sha256), flags | getattr(os, "O_NOATIME", 0))
        except PermissionError:
            return os.open(self.path_of(sha256), flags)  # O_NOATIME needs the file's owner

    def _download(self, sha256: str) -> None:
        """Bring the recorded version of an evicted object back into ``objects/`` (object lock held)."""
        stored = self.stored(sha256)
        if stored is None:
            raise StoreError(N_("store {root}: object {sha256} is neither in local staging nor stored in the evidence "
                                "store bucket; run `evidock verify`"), root=str(self.root), sha256=sha256)
        version, size = stored
        space = self.free_for(size + self.reserve_bytes)
        if not space.fits:
            raise StoreError(N_("store {root}: no room to download object {sha256} ({size} bytes, {free} free); lower "
                                "store.cache_bytes or free the disk"), root=str(self.root), sha256=sha256, size=size,
                             free=space.free)
        # Only a holder of this object's lock writes this name: anything there is a dead run's leftover.
        tmp = self.staging_dir / f"cache-{sha256}.tmp"
        tmp.unlink(missing_ok=True)
        try:
            with open(tmp, "x+b") as f:  # readable too: the re-hash may read through this descriptor
                try:
                    streamed = self.bucket().read_version(sha256, version, f)
                except EvidockError as e:
                    raise StoreError(N_("object {sha256}: cannot download version {version} from the evidence store "
                                        "bucket: {reason}"), sha256=sha256, version=version, reason=message_of(e)) from None
                f.flush()
                os.fsync(f.fileno())
                reread = hash_fd(f.fileno())  # from the disk, not the page cache
            if streamed != (sha256, size) or reread != (sha256, size):
                got, n = reread if streamed == (sha256, size) else streamed
                log.error("store: object %s version %s downloads as %s (%d bytes); refused", sha256, version, got, n)
                raise StoreError(N_("object {sha256}: version {version} from bucket {bucket} hashes to {got} ({n} bytes), "
                                    "not to its name ({size} bytes); refused, nothing was handed out — run `evidock "
                                    "verify`"), sha256=sha256, version=version, bucket=self.bucket().bucket, got=got,
                                 n=n, size=size)
            os.chmod(tmp, 0o444)
            self._put_locked(tmp, sha256, size)  # link in place read-only, fsync the directories
        except OSError as e:
            raise StoreError(N_("store {root}: cannot write the downloaded object {sha256} ({reason})"),
                             root=str(self.root), sha256=sha256, reason=str(e.strerror or e)) from None
        finally:
            tmp.unlink(missing_ok=True)
        log.info("store: object %s downloaded from the bucket (version %s)", sha256, version)

    # -- pins ---------------------------------------------------------------------------------

    def _pin_path(self, sha256: str) -> Path:
        return self.locks_dir / f"{check_sha256(sha256)}.pin"

    def _pin(self, sha256: str) -> int:
        """A shared hold on the object's copy (taken under its lock; eviction takes it exclusively)."""
        path = self._pin_path(sha256)
        self.locks_dir.mkdir(mode=0o750, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o640)
        fcntl.flock(fd, fcntl.LOCK_SH)
        return fd

    def _unpin(self, sha256: str, fd: int) -> None:
        # The last reader tidies the pin file away; if the object's lock is busy, the file stays
        # (the next eviction or reader removes it).
        try:
            with self._try_lock(sha256) as locked:
                if locked and self._exclusive(fd):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self._pin_path(sha256))
        finally:
            os.close(fd)

    @staticmethod
    def _exclusive(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    @contextlib.contextmanager
    def _try_lock(self, sha256: str) -> Iterator[bool]:
        """The object's lock if it is free now (False: another holder, or this very thread, has it)."""
        path = self.locks_dir / f"{check_sha256(sha256)}.lock"
        held: dict[Path, int] = _held.__dict__.setdefault("paths", {})
        if held.get(path):
            yield False
            return
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o640)
        except FileNotFoundError:
            self.locks_dir.mkdir(mode=0o750, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o640)
        if not (self._exclusive(fd) and still_names(path, fd)):
            os.close(fd)
            yield False
            return
        held[path] = 1
        try:
            yield True
        finally:
            del held[path]
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            os.close(fd)

    # -- eviction -----------------------------------------------------------------------------

    def evict(self, room: int = 0) -> Eviction:
        """Remove least recently used local copies of stored objects until the local copies and
        ``room`` more fit in ``store.cache_bytes``. Waiting objects and pinned copies stay."""
        self._evicted_at = time.monotonic()
        self._drop_leftovers()
        ev, candidates = self._scan()
        bound = max(self.cache_bytes - room, 0)
        for _, sha, size in sorted(candidates):
            if ev.cached_bytes <= bound:
                break
            if self._evict_one(sha):
                ev.evicted += 1
                ev.evicted_bytes += size
                ev.cached -= 1
                ev.cached_bytes -= size
                ev.stored_only += 1
            else:
                ev.busy += 1
        if ev.evicted:
            log.info("store: cache: %d local copies evicted (%d bytes), %d bytes cached (store.cache_bytes = %d)",
                     ev.evicted, ev.evicted_bytes, ev.cached_bytes, self.cache_bytes)
        return ev

    def evict_due(self, changed: bool) -> Eviction | None:
        """An eviction pass after an upload pass: when it ``changed`` what may be evicted (an object
        stored, a ref written), else at most every ``EVICT_EVERY_S`` (copies that came back by a
        re-dock) — the daemon's queue pass runs every few seconds, and a pass stats every object."""
        if changed or self._evicted_at is None or time.monotonic() - self._evicted_at >= EVICT_EVERY_S:
            return self.evict()
        return None

    def _drop_leftovers(self) -> None:
        """Downloads a dead run left in staging (``cache-<sha>.tmp``; only the object's lock holder writes one)."""
        for tmp in self.staging_dir.glob("cache-*.tmp"):
            sha = tmp.name[len("cache-"):-len(".tmp")]
            with contextlib.suppress(ValueError), self._try_lock(sha) as locked:
                if locked:
                    tmp.unlink(missing_ok=True)
                    log.info("store: cache: removed %s, left by a download that did not finish", tmp.name)

    def usage(self) -> Eviction:
        """The cache as it is (nothing evicted): local copies and their bytes, objects in the bucket only."""
        return self._scan()[0]

    def _scan(self) -> tuple[Eviction, list[tuple[int, str, int]]]:
        """One stat per catalogued object: the local copies, and the evictable ones as (atime, sha, size)."""
        ev = Eviction()
        candidates: list[tuple[int, str, int]] = []
        try:
            rows = self._catalog().conn.execute(
                "SELECT o.sha256, u.state = 'stored' AND u.version_id IS NOT NULL AND u.ref = 'written',"
                " u.state = 'stored' AND u.version_id IS NOT NULL"
                " FROM objects o LEFT JOIN store_uploads u ON u.sha256 = o.sha256").fetchall()
        except sqlite3.OperationalError:
            return ev, candidates  # a catalog not yet migrated: nothing is stored in a bucket yet
        for sha, evictable, stored in rows:
            try:
                st = os.stat(self.path_of(sha))
            except FileNotFoundError:
                ev.stored_only += bool(stored)  # else lost from staging before its upload: `verify` says so
                continue
            ev.cached += 1
            ev.cached_bytes += st.st_size
            if evictable:
                candidates.append((st.st_atime_ns, sha, st.st_size))
        return ev, candidates

    def _evict_one(self, sha256: str) -> bool:
        with self._try_lock(sha256) as locked:
            if not locked or not self._evictable(sha256):  # again, under the lock: retention may have struck
                return False
            path = self._pin_path(sha256)
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o640)
            except OSError as e:
                log.warning("store: cache: cannot open the pin %s (%s); %s kept", path, e.strerror, sha256)
                return False
            try:
                if not self._exclusive(fd):
                    return False  # being read right now (a proxy, a backup, an upload)
                try:
                    self._delete_locked(sha256)
                except StoreError as e:  # one copy that cannot go does not stop the pass
                    log.warning("store: cache: %s", e)
                    return False
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                return True
            finally:
                os.close(fd)

    # -- verify -------------------------------------------------------------------------------

    def check_in_bucket(self, sha256: str, size: int | None) -> Message | str | None:
        """An evicted object, checked where it is: None if the recorded version in the bucket carries
        its SHA-256 (and size); "missing" if it is neither local nor stored; else what is wrong."""
        stored = self.stored(sha256)
        if stored is None:
            return "missing"
        version, stored_size = stored
        down = self._down
        if down is not None and time.monotonic() < down[0]:
            reason = down[1]  # asked a moment ago: a scrub does not wait out the timeouts for every object
        else:
            try:
                head = self.bucket().head_version(sha256, version)
                reason = None
            except EvidockError as e:
                reason = message_of(e)
                self._down = (time.monotonic() + BUCKET_DOWN_S, reason)
        if reason is not None:
            return Message(N_("has no local copy, and the evidence store bucket cannot be asked for version {version}: "
                              "{reason}"), version=version, reason=reason)
        if head is None:
            return Message(N_("has no local copy, and the evidence store bucket has no version {version} of it"),
                           version=version)
        checksum = str(head.get("ChecksumSHA256") or "")  # S3's form: base64 of the 32 bytes
        composite = "-" in checksum and head.get("Metadata", {}).get("sha256") == sha256  # a multipart put
        if checksum != base64.b64encode(bytes.fromhex(sha256)).decode() and not composite:
            return Message(N_("has no local copy, and version {version} in the evidence store bucket carries checksum "
                              "{checksum}, not its SHA-256"), version=version, checksum=checksum or "-")
        want = size if size is not None else stored_size
        if head.get("ContentLength") != want:
            return Message(N_("version {version} in the evidence store bucket is {size} bytes, the catalog says "
                              "{expected}"), version=version, size=head.get("ContentLength"), expected=want)
        return None
