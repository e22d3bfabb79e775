"""Offloading a recorder volume into the store: the stages over one file, and their runners.

The shape follows beets' pipeline: a ``FileTask`` per regular file on the volume goes through
``STAGES`` — copy (one read, hashed while written, into a resumable partial), verify (fsync,
then a cold re-read of the partial against that hash), commit (rename into objects/, then the catalog row
and its audit entry in one transaction). The stage list is assembled here, once; tests run it
sequentially, ingests run it threaded so that file *n* is verified while file *n+1* is read.

Invariant 2 is kept by construction: nothing is reported ``stored`` (and so nothing may be
wiped) before its bytes were fsync'd, re-read and matched, and its catalog row committed.
Per-file trouble becomes a ``Problem`` and the walk goes on (invariant 6); trouble that makes
going on pointless (store full, recorder gone, catalog unwritable) stops the offload cleanly,
every partial checkpointed so that the next dock resumes it (invariant 4).

Limits, because nothing from a recorder is trusted (invariant 5):
- a file is read up to the size listed at the scan plus a bounded margin (``read_limit``), never
  further: a file still being written, or a volume serving data without end, is reported as
  changing and left on the recorder instead of filling the store;
- a source that is, holds or lies inside the station's own data dir is refused
  (``refuse_own_data_dir``): the catalog, objects and partials are not footage;
- a file matching a sighting of an object already stored (same recorder, path, size and mtime,
  i.e. the same transfer key) is hashed straight from the recorder and compared with that
  object; it is staged only if the bytes differ (``_confirm_unstaged``). A full store can thus
  still confirm what it holds, and re-docking unwiped files costs one read instead of a copy.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
import os
import queue
import re
import sqlite3
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from drivers.base import clock_trusted

from . import audit, mediaqueue
from .cases import file_new_footage
from .catalog import Catalog, utcnow
from .config import Config
from .crashpoints import crashpoint
from .errors import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_WARNING,
    CatalogError,
    EvidockError,
    SourceError,
    SourceGone,
    StoreError,
    StoreFullError,
    format_bytes,
)
from .staging import Journal, Partial, PartialBusy, Staging, transfer_key
from .store import LocalObjectStore, free_bytes
from .transfer import (
    Cancelled,
    GrewPastLimit,
    ReadFailed,
    ReadTimeout,
    WriteFailed,
    copy_and_hash,
    hash_fd,
    hash_prefix,
)
from .volume import Entry, NotTheSameFile, Problem, open_beneath, quoted, scan, volume_alive

log = logging.getLogger(__name__)

# How far past its listed size a file may be read. A file can legitimately be a little longer
# than the directory listing said: a recorder finishing a segment (MP4 index written at close),
# a log it appends a line to, a FAT entry whose size is updated only when the file is closed.
# Those differences are small and scale with the file, hence 1 % of the listed size, with 1 MiB
# as a floor for small files (logs, stills). Anything more is a file still being recorded or a
# broken/hostile volume; reading on would let one file eat the store (a 113 MB file was read as
# 474 MB). The free-space check counts the listed size only: the margin comes out of the
# store's reserve (store.reserve_bytes), and a disk that still fills meets the clean ENOSPC path.
GROWTH_MARGIN_MIN = 1 << 20
GROWTH_MARGIN_PERCENT = 1


def growth_margin(listed: int) -> int:
    """Bytes a file may hold beyond the size listed at the scan: max(1 MiB, 1 %)."""
    return max(GROWTH_MARGIN_MIN, listed * GROWTH_MARGIN_PERCENT // 100)


def read_limit(listed: int) -> int:
    """The most bytes read from a file listed at ``listed`` bytes; past it, it is "changing"."""
    return max(listed, 0) + growth_margin(max(listed, 0))


@dataclass
class FileTask:
    """One regular file on the volume, on its way into the store."""

    entry: Entry
    partial: Partial | None = None
    sha256: str | None = None
    size: int = 0
    resumed_from: int = 0
    from_journal: bool = False  # copied and verified by an earlier run that died before finishing
    known_sha256: str | None = None  # a sighting with this file's transfer key names this stored object
    status: str = "pending"  # stored | duplicate | failed
    problem: Problem | None = None

    def fail(self, reason: str) -> None:
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
    store: LocalObjectStore
    staging: Staging
    catalog: Catalog
    config: Config
    session_id: int
    clock_drift_s: float | None = None
    progress: Callable[[int], None] | None = None
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
        why = str(ctx.fatal) if ctx.fatal else "the offload was stopped"
        task.fail(f"not offloaded: {why}")
        return
    if may_confirm and _confirm_unstaged(ctx, task):
        return
    if ctx.fatal is not None:
        task.fail(f"not offloaded: {ctx.fatal}")
        return
    try:
        part = ctx.staging.open(ctx.source_id, e.rel, e.size, e.mtime_ns)
    except PartialBusy as err:
        task.fail(str(err))
        return
    task.partial = part
    j = part.journal
    if j.sha256 is not None:
        if part.fd >= 0 or ctx.store.exists(j.sha256):
            # Copied and verified by an earlier run that died before finishing: no re-read.
            # the verified length (mark_verified keeps it in checkpoint), not the length listed at scan
            task.sha256, task.size, task.resumed_from = j.sha256, j.checkpoint, j.checkpoint
            task.from_journal = True
            return
        # The journal vouches for an object that is not there: start this file over.
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
    free = free_bytes(ctx.store.staging_dir)
    vfs = os.statvfs(ctx.store.staging_dir)
    if e.size > vfs.f_blocks * vfs.f_frsize:
        part.close()
        task.fail(f"listed as {e.size} bytes, more than the whole store's filesystem holds: the recorder's "
                  "directory entry is damaged or lying; not offloaded, the file stays on the recorder")
        return
    if free < needed:
        ctx.stop_all(StoreFullError(str(ctx.store.data_dir), needed, free, _what(ctx, e)))
        part.close()
        task.fail(f"not offloaded: {ctx.fatal}")
        return
    hasher = hashlib.sha256()
    hash_prefix(part.fd, start, hasher)
    task.resumed_from = start
    if start:
        log.info("resuming %s at byte %d of %d", quoted(e.rel), start, e.size)
    oc = ctx.config.offload
    try:
        with open_beneath(ctx.root, e) as src:
            total = copy_and_hash(
                src, part.fd, start, hasher,
                chunk=oc.chunk_bytes, timeout=oc.read_timeout_s,
                checkpoint_every=oc.checkpoint_bytes, checkpoint=part.checkpoint,
                progress=ctx.progress, cancel=ctx.cancel, limit=limit,
            )
    except GrewPastLimit as err:
        _discard_changing(part, e)
        task.fail(_changing(e, err.limit))
        return
    except Cancelled as err:
        _keep_partial(part, err.copied)
        task.fail(f"stopped after {err.copied} of {e.size} bytes (undock or shutdown); the partial is kept and "
                  "resumes on the next dock")
        return
    except (ReadFailed, ReadTimeout) as err:
        _keep_partial(part, err.copied)
        if isinstance(err, ReadTimeout) or not volume_alive(ctx.root):
            ctx.stop_all(SourceGone(f"the recorder volume {ctx.root} stopped answering ({_why(err)}); "
                                    "partials are kept and resume on the next dock"))
            task.fail(f"recorder went away after {err.copied} of {e.size} bytes ({_why(err)}); "
                      "the partial is kept and resumes on the next dock")
        else:
            task.fail(f"read error after {err.copied} of {e.size} bytes ({_why(err)}); the file stays on the "
                      "recorder and the partial is kept — check the recorder's card, then offload again")
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
            ctx.stop_all(StoreFullError(str(ctx.store.data_dir), needed, free_bytes(ctx.store.staging_dir), _what(ctx, e)))
        else:
            ctx.stop_all(StoreError(f"store {ctx.store.data_dir}: writing the partial of {quoted(e.rel)} failed ({err.strerror})"))
        task.fail(f"not stored: {ctx.fatal}")
        return
    except NotTheSameFile as err:
        part.close()
        task.fail(f"{err.strerror}: not read; scan the recorder again")
        return
    except FileNotFoundError:
        part.close()
        task.fail("vanished before it could be read; if the recorder is still docked, offload again")
        return
    except PermissionError as err:
        part.close()
        task.fail(f"cannot be opened ({err.strerror}); the file stays on the recorder — check the volume's permissions")
        return
    except OSError as err:
        part.close()
        if not volume_alive(ctx.root):
            ctx.stop_all(SourceGone(f"the recorder volume {ctx.root} went away ({err.strerror})"))
        task.fail(f"cannot be opened ({err.strerror}); the file stays on the recorder")
        return
    if total < e.size:
        _keep_partial(part, total)
        task.fail(f"shrank while being read: {total} of the {e.size} bytes listed; the partial is kept — "
                  "if the recorder was undocked, dock it again")
        return
    task.sha256, task.size = hasher.hexdigest(), total
    if total > e.size:
        task.problem = Problem(e.rel, f"grew while being read: {total} bytes stored, {e.size} listed by the recorder "
                                      "(within the margin accepted); if the recorder was still recording it, check "
                                      "that the stored copy plays to its end")


def verify_stage(ctx: OffloadContext, task: FileTask) -> None:
    """fsync the partial, re-read it from the disk and match it against the hash of what was read.

    The fsync is here rather than at the end of the copy so that, threaded, the disk flushes
    file n while file n+1 is being read from the recorder.
    """
    part = task.partial
    if task.finished or part is None or part.journal.sha256 is not None:
        return
    try:
        os.fsync(part.fd)
    except OSError as err:
        part.close()
        ctx.stop_all(StoreError(f"store {ctx.store.data_dir}: fsync of the partial of {quoted(task.entry.rel)} failed ({err.strerror})"))
        task.fail(f"not stored: {ctx.fatal}")
        return
    crashpoint("after-fsync")
    try:
        sha, size = hash_fd(part.fd)
    except OSError as err:
        part.close()
        task.fail(f"the staged copy could not be re-read ({err.strerror}); the file stays on the recorder")
        return
    if (sha, size) != (task.sha256, task.size):
        os.ftruncate(part.fd, 0)
        part.finish()
        task.fail(f"the staged copy does not match what was read from the recorder (read {task.sha256}, "
                  f"disk has {sha}): discarded; the file stays on the recorder — check the station's disk and memory")
        return
    part.mark_verified(sha, size)
    crashpoint("after-verify")


def commit_stage(ctx: OffloadContext, task: FileTask) -> None:
    """Move the verified copy into objects/, then record it (catalog row + audit) in one transaction."""
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
                if ctx.store.put_staged(part.part_path, sha, task.size) == "repaired":
                    with ctx.catalog.transaction():
                        audit.append(ctx.catalog, "object.repair", sha, {"size": task.size, "session": ctx.session_id,
                                                                         "from": task.entry.display})
                crashpoint("after-rename")
            elif not ctx.store.exists(sha):
                part.finish()  # the journal vouches for an object that is gone: the next offload starts over
                task.fail("verified by an earlier run, but its object has since been removed from the store (retention); "
                          "not stored — the file stays on the recorder, offload it again")
                return
            task.status = record_file(ctx, task)
    except EvidockError as err:
        ctx.stop_all(err)
        part.close()
        task.fail(f"not stored: {err}")
        return
    crashpoint("after-commit")
    part.finish()


STAGES: tuple[Callable[[OffloadContext, FileTask], None], ...] = (copy_stage, verify_stage, commit_stage)


# -- the catalog side of a stored file ------------------------------------------------------


def record_file(ctx: OffloadContext, task: FileTask) -> str:
    """Catalog row, sighting and audit entry for a file now in the store; returns its status."""
    sha, e = task.sha256, task.entry
    assert sha is not None
    key = task.partial.journal.key if task.partial else None
    now = utcnow()
    path = e.display
    recorded = datetime.fromtimestamp(e.mtime_ns / 1e9, timezone.utc)
    mtime = recorded.isoformat(timespec="seconds")
    fixed = corrected_time(recorded, ctx.clock_drift_s)
    corrected = fixed.isoformat(timespec="seconds") if fixed is not None else None  # None: clock not trusted
    # The object's lock (re-entrant; commit_stage already holds it) spans the check that the
    # object is there and the commit of the rows naming it: retention cannot delete it between.
    with ctx.store.object_lock(sha), ctx.catalog.transaction() as conn:
        if not ctx.store.exists(sha):
            raise StoreError(f"object {sha} of {path} is not in the store (removed meanwhile); not catalogued — "
                             "the file stays on the recorder, offload it again")
        if task.from_journal and conn.execute("SELECT 1 FROM sightings WHERE transfer_key = ? AND sha256 = ?", (key, sha)).fetchone():
            return "stored"  # committed by a run that died before it could clear its journal
        conn.execute("INSERT OR IGNORE INTO objects (sha256, size, stored_at) VALUES (?,?,?)", (sha, task.size, now))
        known = conn.execute("SELECT id FROM footage WHERE sha256 = ?", (sha,)).fetchone()
        if known is None:
            cur = conn.execute(
                "INSERT INTO footage (sha256, size, device_serial, officer_badge, source_path, source_path_raw,"
                " recorded_at, recorded_at_corrected, important, case_no, session_id, ingested_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (sha, task.size, ctx.device, ctx.officer, path, e.rel, mtime, corrected, int(e.important), None,
                 ctx.session_id, now),
            )
            file_new_footage(ctx.catalog, sha)  # art. 11: filed in the transaction that records it
            mediaqueue.enqueue_in_tx(conn, int(cur.lastrowid), sha)  # probe + proxy, later (daemon/mediaqueue.py)
        conn.execute(
            "INSERT INTO sightings (sha256, session_id, device_serial, officer_badge, source_path, source_path_raw,"
            " size, mtime, transfer_key, seen_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (sha, ctx.session_id, ctx.device, ctx.officer, path, e.rel, task.size, mtime, key, now),
        )
        event = "object.ingest" if known is None else "object.sighting"
        audit.append(ctx.catalog, event, sha, {
            "session": ctx.session_id, "device": ctx.device, "officer": ctx.officer,
            "path": path, "size": task.size, "important": e.important,
            # Since issue 9: the row this entry is about and its recording time, so that `verify`
            # can hold each footage row to the entry that created it (older entries lack them).
            "footage": conn.execute("SELECT id FROM footage WHERE sha256 = ?", (sha,)).fetchone()[0],
            "recorded_at": mtime,
        })
    return "stored" if known is None else "duplicate"


def corrected_time(recorded: datetime, clock_drift_s: float | None) -> datetime | None:
    """The recording time on the station's clock.

    Rule: corrected = reported − drift, where drift = recorder clock − station clock as measured
    when the recorder was docked (before the station set its clock). Assumption: the drift was
    the same when the file was recorded as at the dock — recorder clocks drift slowly and the
    station resets them at every dock, so within one shift the error is small. Unknown drift
    (no control channel): the reported time is kept as the corrected one.

    A clock more than ``drivers.base.CLOCK_TRUST_LIMIT_S`` (a year) from the station's was not
    drifting but set wrong, so nothing says the files were recorded under the same error: the
    time is unknown (None; the footage row keeps the reported time in ``recorded_at``). Filing
    then matches no case — the footage waits in the unfiled queue for a person — and its 2-day
    deadline runs from the ingest (``cases._T_DUE``).
    """
    if clock_drift_s is None:
        return recorded
    if not clock_trusted(clock_drift_s):
        return None
    try:
        return recorded - timedelta(seconds=clock_drift_s)
    except OverflowError:  # a reported time near datetime's ends
        return None


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


def _discard_changing(part: Partial, e: Entry) -> None:
    """Drop the partial of a file that grew past its limit.

    Kept, it would help nobody: a file still being written is listed with another size and
    mtime next time, so under another transfer key, and this partial would linger as "stale"
    with a false "no longer on the recorder"; a volume that lies about a size would only hit the
    limit again. Not silent: the file's problem says so, and the session records the problem.
    """
    log.warning("%s grew past its read limit; its partial %s is discarded", quoted(e.rel), part.journal.key)
    try:
        part.finish()
    except OSError as err:
        log.warning("could not remove partial %s (%s); `evidock staging discard %s` removes it",
                    part.journal.key, err.strerror, part.journal.key)


def _changing(e: Entry, limit: int) -> str:
    return (f"is still changing: it holds more than {limit} bytes, while {e.size} were listed when the recorder was "
            f"scanned (at most {format_bytes(growth_margin(e.size))} more are accepted). Not stored: the file stays on "
            "the recorder and its partial was discarded. Let the recorder finish writing it, then offload again; "
            "if it keeps growing, the recorder's volume is faulty")


class _Unstaged(Partial):
    """The stand-in partial of a file confirmed against the store without staging.

    Its journal carries the transfer key and the verified hash, so the verify stage skips it
    (already verified), the commit stage finds nothing to link (``fd`` is -1) and ``record_file``
    writes the sighting under this key, as for any duplicate. It owns no file in staging:
    ``finish`` must not remove a partial that another offload may have opened under the key.
    """

    def __init__(self, staging: Staging, journal: Journal):
        super().__init__(staging, journal, -1)

    def checkpoint(self, length: int) -> None:
        raise AssertionError("an unstaged confirmation has no partial to checkpoint")

    def mark_verified(self, sha256: str, size: int) -> None:
        raise AssertionError("an unstaged confirmation is verified when it is made")

    def finish(self) -> None:
        pass


def _confirm_unstaged(ctx: OffloadContext, task: FileTask) -> bool:
    """Confirm a file seen before against its stored object, reading it once and staging nothing.

    True: settled — confirmed (``task.partial`` is an ``_Unstaged``, the commit stage records
    a duplicate) or failed for good. False: the file must be staged (its bytes differ, the
    object is gone or damaged, an earlier partial exists, or the read went wrong in a way the
    staged path reads again and reports in its own words).
    """
    e, sha = task.entry, task.known_sha256
    assert sha is not None
    key = transfer_key(ctx.source_id, e.rel, e.size, e.mtime_ns)
    if ctx.staging.journal_path(key).exists() or (ctx.staging.dir / f"{key}.part").exists():
        return False  # an earlier run's partial of this very file: resumed or finished as usual
    try:
        if ctx.store.size(sha) != e.size:
            return False  # deleted by retention since, or not the size listed now
    except (ValueError, OSError):
        return False  # not a usable hash in the catalog, or the object's directory unreadable
    # A recorder may be wiped against this object (invariant 2), so it is re-read and hashed
    # here as on the staged path (store.put_staged); a damaged one is repaired by staging.
    try:
        fd = ctx.store.open_fd(sha)
        try:
            stored = hash_fd(fd)
        finally:
            os.close(fd)
    except OSError as err:
        log.warning("stored object %s could not be re-read (%s); %s is staged instead", sha, err.strerror, quoted(e.rel))
        return False
    if stored != (sha, e.size):
        log.error("stored object %s is damaged; %s is staged to repair it", sha, quoted(e.rel))
        return False
    hasher = hashlib.sha256()
    oc = ctx.config.offload
    try:
        with open_beneath(ctx.root, e) as src:
            total = copy_and_hash(src, None, 0, hasher, chunk=oc.chunk_bytes, timeout=oc.read_timeout_s,
                                  progress=ctx.progress, cancel=ctx.cancel, limit=e.size)
    except Cancelled:
        task.fail("stopped (undock or shutdown) while being compared with its stored copy; the file stays on the "
                  "recorder and is compared again on the next dock")
        return True
    except ReadTimeout as err:
        ctx.stop_all(SourceGone(f"the recorder volume {ctx.root} stopped answering ({_why(err)}); "
                                "partials are kept and resume on the next dock"))
        task.fail(f"recorder stopped answering while the file was compared with its stored copy ({_why(err)}); "
                  "the file stays on the recorder — dock it again")
        return True
    except (GrewPastLimit, OSError):
        return False  # changed or unreadable: the staged path reads it again and says what it found
    if (hasher.hexdigest(), total) != (sha, e.size):
        log.warning("%s has the name, size and mtime of stored object %s but other bytes; it is staged as a new file",
                    quoted(e.rel), sha)
        return False
    task.sha256, task.size = sha, total
    journal = Journal(key, ctx.source_id, base64.b64encode(e.rel).decode(), e.size, e.mtime_ns, total, sha)
    task.partial = _Unstaged(ctx.staging, journal)
    return True


def _what(ctx: OffloadContext, e: Entry) -> str:
    reserve = ctx.config.store.reserve_bytes
    return quoted(e.rel) + (f" (including the {format_bytes(reserve)} kept free by store.reserve_bytes)" if reserve else "")


def _why(err: BaseException) -> str:
    if isinstance(err, ReadTimeout):
        return f"no data for {err.seconds:g} s"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err)


# -- runners ---------------------------------------------------------------------------------


def _run_stage(stage: Callable[[OffloadContext, FileTask], None], ctx: OffloadContext, task: FileTask) -> None:
    try:
        stage(ctx, task)
    except EvidockError as err:
        ctx.stop_all(err)
        if not task.finished:
            task.fail(f"not stored: {err}")
    except Exception as err:  # one bad file must not take the others down (invariant 6)
        log.error("unexpected error in %s for %s:\n%s", stage.__name__, quoted(task.entry.rel), traceback.format_exc())
        if task.partial is not None:
            task.partial.close()
        if not task.finished:
            task.fail(f"not stored: unexpected error in {stage.__name__}: {err!r}")


def run_sequential(ctx: OffloadContext, tasks: Iterable[FileTask], stages=STAGES) -> None:
    for task in tasks:
        for stage in stages:
            _run_stage(stage, ctx, task)


def run_threaded(ctx: OffloadContext, tasks: Iterable[FileTask], stages=STAGES) -> None:
    """One thread per stage with one-slot queues between them: stages of different files overlap."""
    end = object()
    queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=1) for _ in stages[1:]]

    def worker(i: int) -> None:
        inq, outq = queues[i - 1], (queues[i] if i < len(queues) else None)
        while (task := inq.get()) is not end:
            _run_stage(stages[i], ctx, task)
            if outq is not None:
                outq.put(task)
        if outq is not None:
            outq.put(end)

    threads = [threading.Thread(target=worker, args=(i,), name=f"evidock-{s.__name__}") for i, s in enumerate(stages) if i]
    for t in threads:
        t.start()
    try:
        for task in tasks:
            _run_stage(stages[0], ctx, task)
            queues[0].put(task)
    finally:
        queues[0].put(end)
        for t in threads:
            t.join()


# -- one whole offload -----------------------------------------------------------------------


@dataclass
class IngestResult:
    session_id: int
    status: str  # completed | interrupted | failed
    tasks: list[FileTask]
    problems: list[Problem]
    message: str | None = None
    error: EvidockError | None = None  # what stopped the offload early (store full, recorder gone…)

    @property
    def exit_code(self) -> int:
        if self.status != "completed" or any(p.severity == "error" for p in self.problems):
            return EXIT_ERROR
        return EXIT_WARNING if self.problems else EXIT_OK

    def counts(self) -> dict[str, int]:
        stored = [t for t in self.tasks if t.status == "stored"]
        return {
            "stored": len(stored),
            "duplicates": sum(t.status == "duplicate" for t in self.tasks),
            "failed": sum(t.status == "failed" for t in self.tasks),
            "bytes_stored": sum(t.size for t in stored),
            "problems": len(self.problems),
        }

    def to_json(self) -> dict[str, Any]:
        files = []
        for t in self.tasks:
            if t.status in ("stored", "duplicate"):
                f: dict[str, Any] = {"path": t.entry.display, "sha256": t.sha256, "size": t.size, "status": t.status}
                if t.resumed_from:
                    f["resumed_from"] = t.resumed_from
                try:
                    t.entry.rel.decode("utf-8")
                except UnicodeDecodeError:  # "path" is lossy then; the exact name, as `footage list --json` gives it
                    f["path_bytes_b64"] = base64.b64encode(t.entry.rel).decode()
                files.append(f)
        return {
            "session": self.session_id,
            "status": self.status,
            "message": self.message,
            **self.counts(),
            "files": files,
            "problems": [{"path": p.display, "reason": p.reason, "severity": p.severity} for p in self.problems],
        }


def source_id_for(source: Path, device: str | None) -> str:
    """What a partial's resume is keyed on: the recorder's serial, else the folder's real path."""
    return f"device:{device}" if device else f"path:{os.path.realpath(source)}"


def ingest(
    data_dir: Path,
    config: Config,
    source: Path,
    *,
    device: str | None = None,
    officer: str | None = None,
    clock_drift_s: float | None = None,
    threaded: bool = True,
    progress: Callable[[int], None] | None = None,
    on_scanned: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    only: set[bytes] | None = None,
    important_pattern: str | None = None,
) -> IngestResult:
    """Offload every regular file under ``source`` into the store of ``data_dir``.

    ``only``: offload just these paths (relative to ``source``, bytes), e.g. the files of a
    watch folder that have settled; problems and stale partials elsewhere are not reported.
    ``important_pattern``: the recorder model's rule (its driver's quirk) instead of the config's.
    """
    source = Path(source)
    if not source.is_dir():
        raise SourceError(f"source {source}: not a directory (give the recorder's mounted volume or a folder)")
    refuse_own_data_dir(source, Path(data_dir))
    store = LocalObjectStore(data_dir)
    with Catalog(data_dir) as catalog:
        session_id = start_session(catalog, device, officer, str(source), clock_drift_s)
        ctx = OffloadContext(
            root=source, source_id=source_id_for(source, device), device=device, officer=officer,
            store=store, staging=Staging(store.staging_dir), catalog=catalog, config=config,
            session_id=session_id, clock_drift_s=clock_drift_s, progress=progress,
        )
        if cancel is not None:
            ctx.cancel = cancel
        status, message = "completed", None
        tasks: list[FileTask] = []
        problems: list[Problem] = []
        try:
            entries, problems = scan(source, re.compile(important_pattern or config.offload.important_pattern))
            if only is not None:
                entries = [e for e in entries if e.rel in only]
                problems = [p for p in problems if p.rel in only]
            if on_scanned:
                on_scanned(len(entries), sum(e.size for e in entries))
            known = known_objects(catalog, ctx.source_id, device, entries)
            tasks = [FileTask(e, known_sha256=known.get(e.rel)) for e in entries]
            (run_threaded if threaded else run_sequential)(ctx, tasks)
            for t in tasks:
                if t.problem is not None:
                    problems.append(t.problem)
            if ctx.fatal is None and not ctx.cancel.is_set() and only is None:
                problems += stale_partials(ctx, tasks)
        except OSError as err:
            ctx.stop_all(SourceGone(f"source {source}: {err.strerror}"))
        if ctx.fatal is not None:
            status = "failed" if isinstance(ctx.fatal, CatalogError) else "interrupted"
            message = str(ctx.fatal)
        elif ctx.cancel.is_set():
            status, message = "interrupted", "the offload was stopped; partials resume on the next dock"
        result = IngestResult(session_id, status, tasks, problems, message, ctx.fatal)
        try:
            end_session(catalog, result)
        except CatalogError as err:
            # The files stored so far are committed; only the session summary is missing.
            log.error("%s", err)
            result.status = "failed"
            result.message = f"{message + '; ' if message else ''}the end of session {session_id} could not be recorded ({err})"
        # E.g. the audit anchor on a full disk: everything is committed, so a warning (exit 1), not
        # an error — the anchor only lags (a note in `audit verify`) until the next commit rewrites it.
        for msg in dict.fromkeys(catalog.after_commit_failures):
            result.problems.append(Problem(os.fsencode(data_dir), msg, "warning"))
        return result


def refuse_own_data_dir(source: Path, data_dir: Path) -> None:
    """Refuse (``SourceError``, exit 2) a source that is the data dir, lies inside it or holds it.

    Ingesting the station's own data dir stored its ``catalog.sqlite-wal`` as footage. The test
    is by identity (st_dev, st_ino) along real paths, not by comparing strings, so a symlink, a
    ``..``, a second name or a bind mount of the data dir is caught too. One exception: another
    filesystem mounted inside the data dir is not the store — the dock mounts recorders at
    ``<data-dir>/mnt/<bay>`` — and the walk never leaves the source's filesystem.
    """
    src, dd = Path(os.path.realpath(source)), Path(os.path.realpath(data_dir))
    try:
        s = os.stat(src)
    except OSError:
        return  # the walk reports an unreadable source in its own words
    what = ("Ingesting it would store the station's own catalog, objects and partials as footage. Give the "
            "recorder's mounted volume, or a folder outside the data dir")
    for anc in (dd, *dd.parents):  # where the data dir is, or will be created
        try:
            a = os.stat(anc)
        except OSError:
            continue
        if (a.st_dev, a.st_ino) == (s.st_dev, s.st_ino):
            how = "is the station's data dir" if anc == dd else f"contains the station's data dir {data_dir}"
            raise SourceError(f"source {source} {how}: refused. {what}.")
    try:
        d = os.stat(dd)
    except OSError:
        return  # no data dir yet: nothing can be inside it
    if s.st_dev != d.st_dev:
        return  # another filesystem mounted inside the data dir (a recorder the dock mounted)
    for anc in src.parents:
        try:
            a = os.stat(anc)
        except OSError:
            continue
        if (a.st_dev, a.st_ino) == (d.st_dev, d.st_ino):
            raise SourceError(f"source {source} is inside the station's data dir {data_dir}: refused. {what}.")


def known_objects(catalog: Catalog, source_id: str, device: str | None, entries: list[Entry]) -> dict[bytes, str]:
    """For each entry seen before, the stored object its latest sighting names (path -> SHA-256).

    "Seen before" is the transfer key: the same recorder (or folder), path, size and mtime to the
    nanosecond; the sighting's own device, path and size are checked again against the entry.
    A catalog that cannot be read here only costs the shortcut: everything is staged as before.
    """
    by_key = {transfer_key(source_id, e.rel, e.size, e.mtime_ns): e for e in entries}
    keys = list(by_key)
    out: dict[bytes, str] = {}
    try:
        for i in range(0, len(keys), 500):
            batch = keys[i:i + 500]
            rows = catalog.conn.execute(
                "SELECT transfer_key, sha256, device_serial, source_path_raw, size FROM sightings"
                f" WHERE transfer_key IN ({','.join('?' * len(batch))}) ORDER BY id", batch)
            for key, sha, dev, raw, size in rows:
                e = by_key[key]
                raw = os.fsencode(raw) if isinstance(raw, str) else bytes(raw or b"")
                if dev == device and raw == e.rel and size == e.size and sha:
                    out[e.rel] = sha  # ORDER BY id: the latest sighting wins
    except sqlite3.Error as err:
        log.warning("catalog %s: sightings could not be read (%s); every file is staged", catalog.path, err)
        return {}
    return out


def stale_partials(ctx: OffloadContext, tasks: list[FileTask]) -> list[Problem]:
    """Partials of this recorder whose source file is no longer on it: reported, never deleted."""
    # Keyed by what is on the recorder now, not by the partials this run opened: a file another
    # run held (skipped here as busy) is still on the recorder.
    current = {transfer_key(ctx.source_id, t.entry.rel, t.entry.size, t.entry.mtime_ns) for t in tasks}
    out = []
    for p in ctx.staging.list():
        if p["source_id"] == ctx.source_id and p["key"] not in current and not p.get("busy_pid"):  # busy: another run's
            out.append(Problem(
                os.fsencode(p["path"] or p["key"]),
                f"a partial transfer ({p['staged_bytes']} of {p['size']} bytes, staging key {p['key']}) whose source is "
                "no longer on the recorder; it is kept — see `evidock staging list`, and `evidock staging discard` "
                "once you are sure the file is gone for good",
            ))
    return out


def start_session(catalog: Catalog, device: str | None, officer: str | None, source: str,
                  clock_drift_s: float | None = None) -> int:
    now = utcnow()
    actor = audit.current_actor()
    with catalog.transaction() as conn:
        if officer:
            conn.execute("INSERT OR IGNORE INTO officers (badge, first_seen) VALUES (?, ?)", (officer, now))
        if device:
            conn.execute(
                "INSERT INTO devices (serial, officer_badge, first_seen, last_seen) VALUES (?,?,?,?) "
                "ON CONFLICT(serial) DO UPDATE SET last_seen = excluded.last_seen, "
                "officer_badge = COALESCE(excluded.officer_badge, devices.officer_badge)",
                (device, officer, now, now),
            )
        _close_dead_sessions(catalog, now)
        cur = conn.execute(
            "INSERT INTO sessions (device_serial, officer_badge, source, actor, clock_drift_s, started_at, status, pid, boot_id)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            (device, officer, source, actor, clock_drift_s, now, "running", os.getpid(), _boot_id()),
        )
        sid = int(cur.lastrowid)
        audit.append(catalog, "session.start", f"session:{sid}",
                     {"device": device, "officer": officer, "source": source, "clock_drift_s": clock_drift_s,
                      "clock_trusted": clock_trusted(clock_drift_s)}, actor)
    return sid


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _close_dead_sessions(catalog: Catalog, now: str) -> None:
    """Sessions still 'running' whose process is gone (crash, kill, power cut) become 'interrupted'."""
    boot = _boot_id()
    for sid, pid, sboot in catalog.conn.execute("SELECT id, pid, boot_id FROM sessions WHERE status = 'running'").fetchall():
        if sboot == boot and pid and pid_alive(pid):
            continue
        msg = "the offloading process died (crash, kill or power cut); partials resume on the next offload"
        catalog.conn.execute("UPDATE sessions SET status='interrupted', ended_at=?, message=? WHERE id=?", (now, msg, sid))
        audit.append(catalog, "session.end", f"session:{sid}", {"status": "interrupted", "message": msg})


def pid_alive(pid: int) -> bool:
    """Is a process with this pid running (on this boot)? Our own pid counts as running."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True  # includes this very process: the daemon runs several sessions at once


def end_session(catalog: Catalog, result: IngestResult) -> None:
    c = result.counts()
    now = utcnow()
    with catalog.transaction() as conn:
        conn.execute(
            "UPDATE sessions SET ended_at=?, status=?, files_stored=?, files_duplicate=?, bytes_stored=?, problems=?, message=? WHERE id=?",
            (now, result.status, c["stored"], c["duplicates"], c["bytes_stored"], c["problems"], result.message, result.session_id),
        )
        conn.executemany(
            "INSERT INTO problems (session_id, path, path_raw, reason, severity, at) VALUES (?,?,?,?,?,?)",
            [(result.session_id, p.display, p.rel, p.reason, p.severity, now) for p in result.problems],
        )
        audit.append(catalog, "session.end", f"session:{result.session_id}",
                     {"status": result.status, "message": result.message, **c})

