"""The stages over one file of an offload: copy (one read, hashed while written, into a resumable
partial), flush (fsync), verify (a cold re-read against the check digest), commit (into the store, then the
catalog row and its audit entry in one transaction).

Each byte is SHA-256'd once, as it is read from the recorder: that digest is the object's name.
The copy takes a second, cheaper digest from the same buffers (the *check digest*, BLAKE3, see
``daemon.evidence.transfer``), and the verify stage's cold re-read of the staged copy must
reproduce it: the bytes on the store's disk are then the bytes read from the recorder, and so
the bytes the SHA-256 names. A partial verified by a version of evidock that journalled no
check digest is re-read with SHA-256 as that version did, before it is relied on.

Invariant 2 is kept by construction: nothing is reported ``stored`` (and so nothing may be wiped)
before its bytes were fsync'd, re-read and matched, and its catalog row committed. Per-file trouble
becomes a ``Problem`` and the walk goes on (invariant 6); trouble that makes going on pointless
(store full, recorder gone, catalog unwritable) stops the offload cleanly, every partial
checkpointed so that the next dock resumes it (invariant 4).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from daemon.catalog.db import Catalog
from daemon.catalog.kinds import SAMPLE
from daemon.config import Config
from daemon.crashpoints import crashpoint
from daemon.errors import (
    Cancelled,
    EvidockError,
    GrewPastLimit,
    NotTheSameFile,
    PartialBusy,
    ReadFailed,
    ReadTimeout,
    SourceGone,
    StoreError,
    StoreFullError,
    WriteFailed,
    format_bytes,
)
from daemon.evidence import audit
from daemon.evidence.staging import Partial, Staging
from daemon.evidence.store import ObjectStore
from daemon.evidence.transfer import check_hasher, check_value, copy_and_hash, digest_fd, hash_fd, hash_prefix
from daemon.i18n import N_, Message, message_of, os_error
from daemon.ingest.confirm import _confirm_unstaged, _Unstaged
from daemon.ingest.limits import _changing, _discard_changing, _why, read_limit
from daemon.ingest.pipeline import Stage
from daemon.ingest.record import record_file
from daemon.ingest.volume import Entry, Problem, open_beneath, quoted, volume_alive

log = logging.getLogger(__name__)



@dataclass
class FileTask:
    """One regular file on the volume, on its way into the store."""

    entry: Entry
    partial: Partial | None = None
    sha256: str | None = None
    check: str | None = None  # the check digest of the bytes read, which the cold re-read must reproduce
    size: int = 0
    resumed_from: int = 0
    from_journal: bool = False  # copied and verified by an earlier run that died before finishing
    flushed: bool = False  # the partial was fsync'd whole (flush_stage)
    known_sha256: str | None = None  # a sighting with this file's transfer key names this stored object
    sample: tuple[bytes, bytes] | None = None  # first and last bytes of the verified copy (its kind, issue 14)
    status: str = "pending"  # stored | duplicate | failed
    problem: Problem | None = None

    def fail(self, reason: Message) -> None:
        self.status = "failed"
        self.problem = Problem(self.entry.rel, reason, "error")

    @property
    def finished(self) -> bool:
        return self.status != "pending"


@dataclass
class OffloadContext:
    """What every stage needs: where from, where to, who, and the offload-wide stop flag."""

    root: Path
    source_id: str
    device: str | None
    officer: str | None
    store: ObjectStore
    staging: Staging
    catalog: Catalog
    config: Config
    session_id: int
    clock_drift_s: float | None = None
    progress: Callable[[int], None] | None = None
    # Called in the transaction that records a new footage row: (catalog, conn, footage id, sha256).
    on_footage_recorded: Callable[[Catalog, sqlite3.Connection, int, str], None] = lambda cat, conn, fid, sha: None
    fatal: EvidockError | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def stop_all(self, err: EvidockError) -> None:
        with self._lock:
            if self.fatal is None:
                self.fatal = err


# -- stages -------------------------------------------------------------------------------


def copy_stage(ctx: OffloadContext, task: FileTask) -> None:
    """Read the source once into its partial (resuming a checkpointed one), hashing as it goes.

    At most ``read_limit(listed size)`` bytes are read. A file seen before (``known_sha256``)
    is first compared with its stored object without staging (``_confirm_unstaged``); only if
    that does not settle it is it staged.
    """
    e = task.entry
    # A full store stops staging, not confirming: a file already stored needs no room (only
    # its catalog rows), and that is exactly when a station most needs to know what is safe.
    may_confirm = task.known_sha256 is not None and (ctx.fatal is None or isinstance(ctx.fatal, StoreFullError))
    if ctx.cancel.is_set() or (ctx.fatal is not None and not may_confirm):
        why = ctx.fatal if ctx.fatal else Message(N_("the offload was stopped"))
        task.fail(Message(N_("not offloaded: {why}"), why=why))
        return
    if may_confirm and _confirm_unstaged(ctx, task):
        return
    if ctx.fatal is not None:
        task.fail(Message(N_("not offloaded: {why}"), why=ctx.fatal))
        return
    try:
        part = ctx.staging.open(ctx.source_id, e.rel, e.size, e.mtime_ns)
    except PartialBusy as err:
        task.fail(message_of(err))
        return
    task.partial = part
    j = part.journal
    if j.sha256 is not None:
        if (part.fd >= 0 or ctx.store.exists(j.sha256)) and (j.check is not None or _old_journal_holds(ctx, part)):
            # Copied and verified by an earlier run that died before finishing: no re-read.
            # the verified length (mark_verified keeps it in checkpoint), not the length listed at scan
            task.sha256, task.check, task.size, task.resumed_from = j.sha256, j.check, j.checkpoint, j.checkpoint
            task.from_journal = True
            return
        # The journal vouches for an object that is not there (or, from an old version, for a
        # copy that no longer hashes to it): start this file over.
        part.finish()
        part = task.partial = ctx.staging.open(ctx.source_id, e.rel, e.size, e.mtime_ns)
    start = part.journal.checkpoint
    limit = read_limit(e.size)
    if start > limit:
        # Staged by a version without the limit, from a file that grew far past its listing.
        _discard_changing(part, e)
        task.fail(_changing(e, limit))
        return
    needed = max(e.size - start, 0) + ctx.config.store.reserve_bytes
    space = ctx.store.free_for(needed)
    if e.size > space.total:
        part.close()
        task.fail(Message(N_("listed as {size} bytes, more than the whole store's filesystem holds: the recorder's "
                             "directory entry is damaged or lying; not offloaded, the file stays on the recorder"), size=e.size))
        return
    if not space.fits:
        ctx.stop_all(StoreFullError(ctx.store.location, needed, space.free, _what(ctx, e)))
        part.close()
        task.fail(Message(N_("not offloaded: {why}"), why=ctx.fatal))
        return
    hasher, check = hashlib.sha256(), check_hasher()
    hash_prefix(part.fd, start, hasher, check)
    task.resumed_from = start
    if start:
        log.info("resuming %s at byte %d of %d", quoted(e.rel), start, e.size)
    oc = ctx.config.offload
    try:
        with open_beneath(ctx.root, e) as src:
            total = copy_and_hash(
                src, part.fd, start, hasher,
                chunk=oc.chunk_bytes, timeout=oc.read_timeout_s, check=check,
                checkpoint_every=oc.checkpoint_bytes, checkpoint=part.checkpoint,
                progress=ctx.progress, cancel=ctx.cancel, limit=limit,
            )
    except GrewPastLimit as err:
        _discard_changing(part, e)
        task.fail(_changing(e, err.limit))
        return
    except Cancelled as err:
        _keep_partial(part, err.copied)
        task.fail(Message(N_("stopped after {copied} of {size} bytes (undock or shutdown); the partial is kept and "
                             "resumes on the next dock"), copied=err.copied, size=e.size))
        return
    except (ReadFailed, ReadTimeout) as err:
        _keep_partial(part, err.copied)
        if isinstance(err, ReadTimeout) or not volume_alive(ctx.root):
            ctx.stop_all(SourceGone(N_("the recorder volume {root} stopped answering ({why}); "
                                       "partials are kept and resume on the next dock"), root=str(ctx.root), why=_why(err)))
            task.fail(Message(N_("recorder went away after {copied} of {size} bytes ({why}); "
                                 "the partial is kept and resumes on the next dock"),
                              copied=err.copied, size=e.size, why=_why(err)))
        else:
            task.fail(Message(N_("read error after {copied} of {size} bytes ({why}); the file stays on the "
                                 "recorder and the partial is kept — check the recorder's card, then offload again"),
                              copied=err.copied, size=e.size, why=_why(err)))
        return
    except WriteFailed as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            # Back to the last checkpoint: frees the space the catalog needs to record the stop.
            _keep_partial(part, part.journal.checkpoint, truncate=True)
        else:
            _keep_partial(part, err.written, truncate=True)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            # From the checkpoint it resumes at: the rest of the listed size, and at least what
            # was read and did not fit (a file longer than listed made "listed − written" < 0).
            ckpt = part.journal.checkpoint
            needed = max(e.size, err.written + err.pending) - ckpt + ctx.config.store.reserve_bytes
            ctx.stop_all(StoreFullError(ctx.store.location, needed, ctx.store.free_for(needed).free, _what(ctx, e)))
        else:
            ctx.stop_all(StoreError(N_("store {store}: writing the partial of {file} failed ({error})"),
                                    store=str(ctx.store.location), file=quoted(e.rel), error=os_error(err)))
        task.fail(Message(N_("not stored: {error}"), error=ctx.fatal))
        return
    except NotTheSameFile as err:
        part.close()
        task.fail(Message(N_("{error}: not read; scan the recorder again"), error=os_error(err)))
        return
    except FileNotFoundError:
        part.close()
        task.fail(Message(N_("vanished before it could be read; if the recorder is still docked, offload again")))
        return
    except PermissionError as err:
        part.close()
        task.fail(Message(N_("cannot be opened ({error}); the file stays on the recorder — check the volume's permissions"),
                          error=os_error(err)))
        return
    except OSError as err:
        part.close()
        if not volume_alive(ctx.root):
            ctx.stop_all(SourceGone(N_("the recorder volume {root} went away ({error})"), root=str(ctx.root), error=os_error(err)))
        task.fail(Message(N_("cannot be opened ({error}); the file stays on the recorder"), error=os_error(err)))
        return
    if total < e.size:
        _keep_partial(part, total)
        task.fail(Message(N_("shrank while being read: {total} of the {size} bytes listed; the partial is kept — "
                             "if the recorder was undocked, dock it again"), total=total, size=e.size))
        return
    task.sha256, task.check, task.size = hasher.hexdigest(), check_value(check), total
    if total > e.size:
        task.problem = Problem(e.rel, Message(N_("grew while being read: {total} bytes stored, {size} listed by the recorder "
                                                 "(within the margin accepted); if the recorder was still recording it, check "
                                                 "that the stored copy plays to its end"), total=total, size=e.size))


def flush_stage(ctx: OffloadContext, task: FileTask) -> None:
    """fsync the whole partial, so that the re-read reads back what is on the disk.

    A stage of its own, after the copy and before the re-read: threaded, the disk flushes file
    n+1 while file n is re-read and file n+2 is read from the recorder.
    """
    part = task.partial
    if task.finished or part is None or part.journal.sha256 is not None or task.flushed:
        return
    try:
        os.fsync(part.fd)
    except OSError as err:
        part.close()
        ctx.stop_all(StoreError(N_("store {store}: fsync of the partial of {file} failed ({error})"),
                                store=str(ctx.store.location), file=quoted(task.entry.rel), error=os_error(err)))
        task.fail(Message(N_("not stored: {error}"), error=ctx.fatal))
        return
    task.flushed = True
    crashpoint("after-fsync")


def verify_stage(ctx: OffloadContext, task: FileTask) -> None:
    """Re-read the fsync'd partial from the disk and match it against the check digest of what was read.

    The re-read takes the check digest only (the SHA-256 was taken from the same bytes as the
    check digest during the copy); a task without one is re-read with SHA-256, as before.
    """
    part = task.partial
    if task.finished or part is None or part.journal.sha256 is not None:
        return
    if not task.flushed:
        flush_stage(ctx, task)
        if task.finished:
            return
    try:
        if task.check is not None:
            h, size = digest_fd(part.fd, check_hasher)
            read, disk = task.check, check_value(h)
        else:
            read, (disk, size) = task.sha256, hash_fd(part.fd)
    except OSError as err:
        part.close()
        task.fail(Message(N_("the staged copy could not be re-read ({error}); the file stays on the recorder"), error=os_error(err)))
        return
    if (disk, size) != (read, task.size):
        os.ftruncate(part.fd, 0)
        part.finish()
        task.fail(Message(N_("the staged copy does not match what was read from the recorder (read {read}, "
                             "disk has {disk}, {size} bytes): discarded; the file stays on the recorder — check the station's disk "
                             "and memory"), read=read, disk=disk, size=size))
        return
    assert task.sha256 is not None
    part.mark_verified(task.sha256, size, task.check)
    crashpoint("after-verify")


def commit_stage(ctx: OffloadContext, task: FileTask) -> None:
    """Move the verified copy into objects/, then record it (catalog row + audit) in one transaction."""
    part = task.partial
    if task.finished or part is None or task.sha256 is None:
        return
    sha = task.sha256
    if isinstance(part, _Unstaged):
        # Confirmed against the stored object without staging. The object's lock spans the check
        # that it is still there and the commit of the sighting; if retention removed it after the
        # confirmation, the file is staged after all (a second read of this one file), so its
        # bytes bring the object back instead of the file failing. This runs on the commit thread,
        # beside the copy thread's next file: rare (retention must strike in between), so the
        # second concurrent read of the recorder and its progress counted twice are accepted.
        try:
            with ctx.store.object_lock(sha):
                if ctx.store.exists(sha):
                    task.status = record_file(ctx, task)
                    return
        except EvidockError as err:
            ctx.stop_all(err)
            task.fail(Message(N_("not stored: {error}"), error=err))
            return
        log.info("object %s was removed after %s was confirmed against it; staging the file", sha, quoted(task.entry.rel))
        task.partial, task.sha256, task.known_sha256, task.from_journal = None, None, None, False
        copy_stage(ctx, task)
        flush_stage(ctx, task)
        verify_stage(ctx, task)
        part = task.partial
        if task.finished or part is None or task.sha256 is None:
            return
        sha = task.sha256
    try:
        # Held from the put (or the finding that an earlier run put it) until the catalog row has
        # committed: retention cannot unlink the object in between, and the staged copy stays
        # until then (Partial.finish) so that a put after a deletion brings the object back.
        with ctx.store.object_lock(sha):
            if part.fd >= 0:
                task.sample = _sample(part.fd, task.size)
                if ctx.store.put_staged(part.part_path, sha, task.size) == "repaired":
                    with ctx.catalog.transaction():
                        audit.append(ctx.catalog, "object.repair", sha, {"size": task.size, "session": ctx.session_id,
                                                                         "from": task.entry.display})
                crashpoint("after-rename")
            elif not ctx.store.exists(sha):
                part.finish()  # the journal vouches for an object that is gone: the next offload starts over
                task.fail(Message(N_("verified by an earlier run, but its object has since been removed from the store (retention); "
                                     "not stored — the file stays on the recorder, offload it again")))
                return
            task.status = record_file(ctx, task)
    except EvidockError as err:
        ctx.stop_all(err)
        part.close()
        task.fail(Message(N_("not stored: {error}"), error=err))
        return
    crashpoint("after-commit")
    part.finish()


# The offload's stage list, run by daemon.ingest.pipeline (threaded: file n is committed while n+1 is
# re-read, n+2 flushed and n+3 read from the recorder).
STAGES: tuple[Stage[OffloadContext, FileTask], ...] = (copy_stage, flush_stage, verify_stage, commit_stage)


def _sample(fd: int, size: int) -> tuple[bytes, bytes] | None:
    """The first and last ``kinds.SAMPLE`` bytes of the verified staged copy (None: unreadable)."""
    try:
        return os.pread(fd, SAMPLE, 0), os.pread(fd, SAMPLE, max(0, size - SAMPLE))
    except OSError:
        return None  # the kind then comes from the name; the copy itself was verified


def _old_journal_holds(ctx: OffloadContext, part: Partial) -> bool:
    """A verified journal without a check digest (an older evidock's): re-read with SHA-256 as it did.

    The staged copy if it is still there, else the object it was linked in as. True if the
    bytes on the disk still hash to the journal's SHA-256 and length.
    """
    j = part.journal
    assert j.sha256 is not None
    try:
        fd = os.dup(part.fd) if part.fd >= 0 else ctx.store.open_fd(j.sha256)
        try:
            ok = hash_fd(fd) == (j.sha256, j.checkpoint)
        finally:
            os.close(fd)
    except OSError as err:
        log.warning("partial %s, verified by an older evidock, could not be re-read (%s); the file is read again",
                    j.key, err.strerror)
        return False
    if not ok:
        log.error("partial %s, verified by an older evidock, no longer hashes to %s; the file is read again",
                  j.key, j.sha256)
    return ok


def _keep_partial(part: Partial, length: int, truncate: bool = False) -> None:
    """Make the first ``length`` bytes of an interrupted partial durable and journal them."""
    try:
        if truncate:
            os.ftruncate(part.fd, length)
        part.checkpoint(length)
    except OSError as err:
        log.warning("could not checkpoint partial %s at %d bytes (%s); it resumes from its last checkpoint",
                    part.journal.key, length, err.strerror)
    finally:
        part.close()


def _what(ctx: OffloadContext, e: Entry) -> object:
    reserve = ctx.config.store.reserve_bytes
    if not reserve:
        return quoted(e.rel)
    return Message(N_("{file} (including the {reserve} kept free by store.reserve_bytes)"),
                   file=quoted(e.rel), reserve=format_bytes(reserve))
