"""Confirming a duplicate without staging it: a file whose recorder, path, size and mtime match a
sighting of a stored object is hashed straight from the recorder and compared with that object,
so a full store still confirms what it already holds; only a file whose bytes differ is staged.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import sqlite3
from typing import TYPE_CHECKING

from daemon.catalog import footage
from daemon.catalog.db import Catalog
from daemon.errors import (
    Cancelled,
    GrewPastLimit,
    ReadTimeout,
    SourceGone,
)
from daemon.evidence.staging import Journal, Partial, Staging, transfer_key
from daemon.evidence.transfer import copy_and_hash, hash_fd
from daemon.i18n import N_, Message
from daemon.ingest.limits import _why
from daemon.ingest.volume import Entry, open_beneath, quoted

if TYPE_CHECKING:
    from daemon.ingest.stages import FileTask, OffloadContext

log = logging.getLogger(__name__)



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

    def mark_verified(self, sha256: str, size: int, check: str | None) -> None:
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
        task.fail(Message(N_("stopped (undock or shutdown) while being compared with its stored copy; the file stays on the "
                             "recorder and is compared again on the next dock")))
        return True
    except ReadTimeout as err:
        ctx.stop_all(SourceGone(N_("the recorder volume {root} stopped answering ({why}); "
                                   "partials are kept and resume on the next dock"), root=str(ctx.root), why=_why(err)))
        task.fail(Message(N_("recorder stopped answering while the file was compared with its stored copy ({why}); "
                             "the file stays on the recorder — dock it again"), why=_why(err)))
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
        for key, sha, dev, raw, size in footage.sightings_by_key(catalog.conn, keys):
            e = by_key[key]
            raw = os.fsencode(raw) if isinstance(raw, str) else bytes(raw or b"")
            if dev == device and raw == e.rel and size == e.size and sha:
                out[e.rel] = sha  # ORDER BY id: the latest sighting wins
    except sqlite3.Error as err:
        log.warning("catalog %s: sightings could not be read (%s); every file is staged", catalog.path, err)
        return {}
    return out
