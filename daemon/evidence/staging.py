"""Partial transfers: the staging area where a file is written before it becomes an object.

Each source file being offloaded has a *transfer key* (a hash of the recorder's identity, the
file's path on the volume, its size and its mtime). Its bytes go to ``staging/<key>.part``
and a small journal ``staging/<key>.json`` records how far the partial is known to be on disk
(the *checkpoint*: a length that was fsync'd before it was written) and, once the copy has been
verified, the SHA-256 it must be stored under and the check digest it was verified with
(``daemon.evidence.transfer``: the cold re-read matches the check digest taken while the
recorder's bytes were read, not a second SHA-256). A journal records both, so a verified
partial that a crash left behind stays verified on the next run. A journal written before the
check digest existed (``check`` absent) is verified again the old way — a cold SHA-256 re-read
of the staged copy — before anything relies on it (``daemon.ingest.stages.copy_stage``).

Why a journal and not just the partial's length: after a power cut a file's length can run
ahead of the data that reached the disk; only the bytes below an fsync'd checkpoint are
trusted on resume. After a SIGKILL the page cache survives, but we cannot tell the two apart.

A partial belongs to one offload at a time: its owner holds an ``flock`` on
``staging/<key>.lock`` from before it reads the journal until after it has removed the partial
(or closed it to resume later), and a second offload of the same file — two CLI runs, the watch
folder and a dock, a re-dock while the old job winds down — is refused at once (``PartialBusy``)
and skips the file. The lock is on its own file, not on the ``.part``: the ``.part`` is created,
replaced and unlinked over a partial's life, and a lock on an inode someone else has just
unlinked protects nothing (flock belongs to an open file description, not to a path). The lock
file is unlinked by its holder before release; a run that opened it just before sees that the
path no longer names what it locked, and tries again. The lock dies with its process, so a
killed run never blocks the next one. Partials are never deleted silently: only a completed
store, or an explicit, audited ``evidock staging discard``, removes one.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from daemon.catalog.db import Catalog
from daemon.crashpoints import crashpoint
from daemon.errors import NotFound, PartialBusy, StoreError
from daemon.i18n import Message, N_, os_error
from daemon.evidence import audit
from daemon.evidence.store import fsync_dir, still_names

log = logging.getLogger(__name__)


def transfer_key(source_id: str, relpath: bytes, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    for part in (source_id.encode(), relpath, str(size).encode(), str(mtime_ns).encode()):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()[:40]


@dataclass
class Journal:
    key: str
    source_id: str
    relpath_b64: str
    size: int
    mtime_ns: int
    checkpoint: int = 0
    sha256: str | None = None  # set once the staged copy was verified
    check: str | None = None  # the check digest it was verified with ("blake3:<hex>"); None in old journals

    @property
    def relpath(self) -> bytes:
        return base64.b64decode(self.relpath_b64)


class Partial:
    """One partial transfer owned by this process: its lock, the open staged file and its journal."""

    def __init__(self, staging: Staging, journal: Journal, fd: int, lock_fd: int = -1):
        self.staging, self.journal, self.fd, self.lock_fd = staging, journal, fd, lock_fd

    @property
    def part_path(self) -> Path:
        return self.staging.dir / f"{self.journal.key}.part"

    def checkpoint(self, length: int) -> None:
        """fsync the partial, then journal ``length`` as safe to resume from."""
        os.fsync(self.fd)
        self.journal.checkpoint = length
        self.staging.write_journal(self.journal)
        crashpoint("after-checkpoint")

    def mark_verified(self, sha256: str, size: int, check: str | None) -> None:
        """Journal the staged copy as verified: its SHA-256, length and the check digest that matched."""
        self.journal.sha256 = sha256
        self.journal.check = check
        self.journal.checkpoint = size
        self.staging.write_journal(self.journal)

    def close(self) -> None:
        """Stop working on the partial (kept as it is, to resume) and give up its ownership."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.lock_fd >= 0:
            self.staging._unlock(self.journal.key, self.lock_fd)
            self.lock_fd = -1

    def finish(self) -> None:
        """The object is in the store and catalogued: drop the journal (and any leftover partial)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        # Still owned while unlinking: nobody else can have re-created or opened these paths.
        # No fsync: a journal that reappears after a power cut points at an object that is
        # already catalogued under this transfer key, which the commit stage recognises.
        try:
            for p in (self.part_path, self.staging.dir / f"{self.journal.key}.json"):
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass
        finally:
            self.close()  # the lock goes with the process's hold of it, also when an unlink failed


class Staging:
    def __init__(self, staging_dir: Path):
        self.dir = Path(staging_dir)

    def journal_path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def read_journal(self, key: str) -> Journal | None:
        try:
            data: dict[str, Any] = json.loads(self.journal_path(key).read_text())
            return Journal(**data)
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, OSError):
            return None  # a torn or foreign journal is ignored: resume starts from zero

    def write_journal(self, j: Journal) -> None:
        """Replace the journal atomically.

        Not fsync'd, on purpose: the journal only ever vouches for data fsync'd *before* it was
        written, so losing it in a power cut just means resuming from an earlier state — never
        trusting bytes that are not on the disk. Skipping the two fsyncs per file is measurable.
        """
        path = self.journal_path(j.key)
        tmp = path.with_suffix(".json.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
        try:
            os.write(fd, json.dumps(asdict(j)).encode())
        finally:
            os.close(fd)
        os.replace(tmp, path)

    def _lock(self, key: str, busy: Callable[[Message], Message]) -> int:
        """Take ownership of partial ``key`` (its lock fd) or raise ``PartialBusy(busy(who))`` at once."""
        path = self.dir / f"{key}.lock"
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o640)
            except OSError as e:
                raise StoreError(N_("staging {dir}: cannot create the lock of partial {key} ({reason}); check the data "
                                    "dir's disk and permissions"), dir=str(self.dir), key=key, reason=os_error(e)) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
                os.close(fd)
                if holder == str(os.getpid()):
                    who = Message(N_("another offload in this evidock process (pid {pid})"), pid=holder)
                else:
                    who = (Message(N_("another evidock run (pid {pid})"), pid=holder) if holder.isdigit()
                           else Message(N_("another evidock run")))
                raise PartialBusy(busy(who)) from None
            except BaseException:
                os.close(fd)
                raise
            try:
                current = still_names(path, fd)
            except BaseException:
                os.close(fd)
                raise
            if current:
                try:
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # names the owner in a second run's message
                except OSError as e:
                    # Only informational (a full disk may refuse even these bytes): the lock is held.
                    log.warning("staging %s: could not note the owner of partial %s (%s)", self.dir, key, e.strerror)
                return fd
            os.close(fd)  # its owner unlinked it between our open and our lock: take the new one

    def _unlock(self, key: str, fd: int) -> None:
        try:
            os.unlink(self.dir / f"{key}.lock")
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)

    def open(self, source_id: str, relpath: bytes, size: int, mtime_ns: int) -> Partial:
        """Open (creating or resuming) the partial for one source file, owned by this process.

        Raises ``PartialBusy`` if another offload owns it right now.
        """
        key = transfer_key(source_id, relpath, size, mtime_ns)
        part = self.dir / f"{key}.part"
        # Before anything is read or created: the journal and the .part are the owner's alone.
        lock = self._lock(key, lambda who: Message(
            N_("{path} is being offloaded right now by {who}; this run skipped it and that run stores it — the file "
               "stays on the recorder until then; if that run has ended, offload again"),
            path=relpath.decode("utf-8", "backslashreplace"), who=who))
        fd = -1
        try:
            j = self.read_journal(key)
            if j is None or (j.size, j.mtime_ns, j.relpath, j.source_id) != (size, mtime_ns, relpath, source_id):
                j = Journal(key, source_id, base64.b64encode(relpath).decode(), size, mtime_ns)
            if j.sha256 and not part.exists():
                # Verified and already moved into objects/ before a crash: nothing left to open.
                # The catalog commit that follows is idempotent (keyed by the transfer key).
                return Partial(self, j, -1, lock)
            # A verified partial is only linked into objects/ from here on, never written, and is
            # read-only (0444) once linked (it shares the object's inode): open it read-only.
            mode = os.O_RDONLY if j.sha256 else os.O_RDWR | os.O_CREAT
            fd = os.open(part, mode | os.O_CLOEXEC | os.O_NOFOLLOW, 0o640)
            have = os.fstat(fd).st_size
            if j.sha256 is None:
                # Trust only what a checkpoint vouched for.
                j.checkpoint = min(j.checkpoint, have)
                if have != j.checkpoint:
                    os.ftruncate(fd, j.checkpoint)
            return Partial(self, j, fd, lock)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            self._unlock(key, lock)
            raise

    def owner(self, key: str) -> int | None:
        """The pid of the live process that owns partial ``key`` right now, if any.

        Read from the lock file, not by trying the lock: a probe holding it for an instant would
        make a real offload opening it at that moment skip the file. A lock file left by a
        killed run names a dead pid.
        """
        try:
            text = (self.dir / f"{key}.lock").read_text("ascii", "replace").strip()
        except OSError:
            return None
        if not text.isdigit():
            return None
        try:
            os.kill(int(text), 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return int(text)

    def list(self) -> list[dict[str, Any]]:
        """Every partial (journalled or not) in staging, for reports; ``busy_pid``: its owner right now."""
        out = []
        keys = {p.name.split(".")[0] for p in self.dir.iterdir() if p.suffix in (".part", ".json")}
        for key in sorted(keys):
            # The owner first: a partial whose owner finishes meanwhile then has vanished below
            # (and is left out) rather than looking unowned and empty.
            owner = self.owner(key)
            j = self.read_journal(key)
            part = self.dir / f"{key}.part"
            try:
                staged = part.stat().st_size
            except FileNotFoundError:
                if not self.journal_path(key).exists():
                    continue  # finished (or discarded) while we looked
                staged = 0
            out.append(
                {
                    "key": key,
                    "busy_pid": owner,
                    "source_id": j.source_id if j else None,
                    "path": j.relpath.decode("utf-8", "backslashreplace") if j else None,
                    "size": j.size if j else None,
                    "staged_bytes": staged,
                    "checkpoint": j.checkpoint if j else 0,
                    "verified_sha256": j.sha256 if j else None,
                }
            )
        return out

    def discard(self, key: str) -> dict[str, Any]:
        """Delete one partial and its journal (the caller audits it). Refuses a locked partial."""
        entry = next((e for e in self.list() if e["key"] == key), None)
        if entry is None:
            raise KeyError(key)
        entry.pop("busy_pid")  # refused below if owned; not a fact about the discarded partial
        part = self.dir / f"{key}.part"
        lock = self._lock(key, lambda who: Message(
            N_("partial {key} ({path}) is being offloaded right now by {who}; not discarded — wait for that run to end"),
            key=key, path=entry["path"] or Message(N_("unknown file")), who=who))
        try:
            part.unlink(missing_ok=True)
            self.journal_path(key).unlink(missing_ok=True)
            fsync_dir(self.dir)
        finally:
            self._unlock(key, lock)
        return entry


def discard_partial(catalog: Catalog, staging: Staging, key: str, reason: str) -> dict[str, Any]:
    """Delete one partial whose source is gone for good, audited with ``reason``; return its entry.

    The partial is deleted inside the transaction that audits it: a failed delete records
    nothing. ``key`` may be the start of one partial's key (``staging list`` shows them whole). An
    unknown or ambiguous key is ``NotFound``; a partial being offloaded right now is ``PartialBusy``.
    """
    keys = [e["key"] for e in staging.list()]
    if key not in keys and key:
        matches = [k for k in keys if k.startswith(key)]
        if len(matches) > 1:
            raise NotFound(N_("the key {key} is the start of several partials' keys ({keys}); give more of it"),
                           key=key, keys=", ".join(matches))
        key = matches[0] if matches else key
    with catalog.transaction():
        try:
            entry = staging.discard(key)
        except KeyError:
            raise NotFound(N_("no partial transfer with key {key}; see `evidock staging list`"), key=key) from None
        audit.append(catalog, "staging.discard", f"partial:{key}", {**entry, "reason": reason})
    return entry
