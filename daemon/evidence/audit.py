"""The hash-chained audit log: every change to evidence, on the record (invariant 3, art. 13).

Each row's ``hash`` is SHA-256 over the previous row's hash and the row's own content (time,
actor, event, subject, details), so editing a row breaks its own hash, deleting one breaks its
successor's link, and swapping two breaks the links around them. ``verify`` walks the chain and
names the first broken row and how it broke.

A chain alone cannot show that its *last* rows were cut off, so every commit that appends also
rewrites a small anchor file beside the catalog (``audit.head``: row count and last hash).
The anchor may lag behind the table (two writers racing, a crash just after a commit) — that is
reported as a note — but a table *shorter* than the anchor, or a different hash at the
anchor's row, is a break. So is a chain with rows and no (or an unreadable) anchor: the anchor
is written after the very first commit, and removing it is exactly how a cut tail would be
hidden. If the anchor cannot be written (full disk), the commit stands, the tmp file is removed
and the caller hears of it (``Catalog.after_commit_failures``): the old anchor then lags, which
is a note, and the next commit rewrites it. The anchor is a tripwire against quiet truncation,
not a defence against someone who rewrites both files (see README, "What the checks cannot
catch"); periodic reports print the head hash for that.
"""

from __future__ import annotations

import contextlib
import errno
import getpass
import hashlib
import json
import os
import pwd
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.catalog.db import Catalog
from daemon.clock import utcnow
from daemon.errors import AnchorError
from daemon.i18n import N_, Message

GENESIS = "0" * 64
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
ANCHOR_NAME = "audit.head"


def current_actor() -> str:
    """The OS user this process runs as: who did it, for the record."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return getpass.getuser() if os.environ.get("USER") else f"uid:{os.getuid()}"


def canonical(details: dict[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def row_hash(prev_hash: str, at: str, actor: str, event: str, subject: str, details: str) -> str:
    body = json.dumps([prev_hash, at, actor, event, subject, details], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def append(catalog: Catalog, event: str, subject: str, details: dict[str, Any], actor: str | None = None) -> str:
    """Append one entry. Must run inside ``catalog.transaction()``, with the change it records."""
    conn = catalog.conn
    if not conn.in_transaction:
        raise RuntimeError("audit.append must run inside the transaction of the change it records")
    row = conn.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    prev = row[0] if row else GENESIS
    at = utcnow()
    actor = actor or current_actor()
    det = canonical(details)
    h = row_hash(prev, at, actor, event, subject, det)
    conn.execute(
        "INSERT INTO audit (at, actor, event, subject, details, prev_hash, hash) VALUES (?,?,?,?,?,?,?)",
        (at, actor, event, subject, det, prev, h),
    )
    catalog.after_commit(lambda: write_anchor(catalog), key="audit-anchor")
    return h


def write_anchor(catalog: Catalog) -> None:
    """Record the chain's current length and head hash beside the catalog (atomic replace)."""
    # The last row's id is the row count: ids are the rowid, given in order from 1 and never
    # freed (rows are only appended). COUNT(*) would walk the whole table at every commit —
    # ~10 ms per 100 k rows here, the slowest part of a commit in a catalog of millions.
    last = catalog.conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    count, head = (last[0], last[1]) if last else (0, None)
    path = catalog.data_dir / ANCHOR_NAME
    tmp = path.with_name(f".{ANCHOR_NAME}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            # No fsync: an anchor that lags after a power cut is reported as a note, not a break.
            data = f"{count} {head or GENESIS}\n".encode()
            if os.write(fd, data) != len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        # A full disk (or a read-only data dir) must not leave .tmp litter for every commit.
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise AnchorError(
            N_("the audit anchor {path} could not be updated ({reason}); it still records an older head, which "
               "`evidock audit verify` reports as a lag, and the next commit rewrites it — free space in the data dir"),
            path=str(path), reason=e.strerror) from None


@dataclass
class AuditReport:
    rows: int = 0
    ok: bool = True
    # {"id", "kind", "message": English, "message_msg": the Message, for people}
    first_broken: dict[str, Any] | None = None
    notes: list[Message] = field(default_factory=list)  # str() English, text() for people
    head: str = GENESIS

    def to_json(self) -> dict[str, Any]:
        broken = None if self.first_broken is None else {k: v for k, v in self.first_broken.items() if k != "message_msg"}
        return {"rows": self.rows, "ok": self.ok, "first_broken": broken, "notes": [str(n) for n in self.notes],
                "head": self.head}


def verify(catalog: Catalog) -> AuditReport:
    """Walk the whole chain read-only, a row at a time (memory does not grow with the chain);
    stop at the first broken row and say how it broke."""
    rep = AuditReport()
    conn = catalog.conn
    prev, last_id, at_anchor = GENESIS, None, None
    anchored = _anchor_count(catalog)  # the anchor's row is kept as the walk passes it
    for rid, at, actor, event, subject, details, prev_hash, h in conn.execute(
            "SELECT id, at, actor, event, subject, details, prev_hash, hash FROM audit ORDER BY id"):
        rep.rows += 1
        if row_hash(prev_hash, at, actor, event, subject, details) != h:
            return _broken(rep, rid, "edited", Message(
                N_("audit row {row} ({event} {subject}) was edited: its content no longer matches its hash"),
                row=rid, event=event, subject=subject))
        if prev_hash != prev:
            linked = conn.execute("SELECT MAX(id) FROM audit WHERE hash = ?", (prev_hash,)).fetchone()[0]
            if linked is not None and linked > rid:
                return _broken(
                    rep, rid, "reordered",
                    Message(N_("audit row {row} ({event} {subject}) is out of order: it was written after row "
                               "{after}, which now stands after it"),
                            row=rid, event=event, subject=subject, after=linked),
                )
            where = (Message(N_("between row {before} and row {row}"), before=last_id, row=rid) if last_id is not None
                     else Message(N_("before row {row}"), row=rid))
            return _broken(rep, rid, "deleted", Message(
                N_("audit row(s) {where} were deleted: row {row} does not follow the row before it"), where=where, row=rid))
        prev, last_id = h, rid
        if rep.rows == anchored:
            at_anchor = (rid, h)
    rep.head = prev
    _check_anchor(catalog, rep, last_id, at_anchor)
    return rep


def _broken(rep: AuditReport, rid: int, kind: str, message: Message) -> AuditReport:
    rep.ok = False
    rep.first_broken = {"id": rid, "kind": kind, "message": str(message), "message_msg": message}
    return rep


def _anchor_count(catalog: Catalog) -> int | None:
    """The row count the anchor file records, if it can be read (``_check_anchor`` says why not)."""
    try:
        return int((catalog.data_dir / ANCHOR_NAME).read_text().split()[0])
    except (OSError, ValueError, IndexError, UnicodeDecodeError):
        return None


def _check_anchor(catalog: Catalog, rep: AuditReport, last_id: int | None,
                  at_anchor: tuple[int, str] | None) -> None:
    """The anchor against the intact chain ``verify`` walked: ``rep.rows`` rows, the last
    ``last_id`` with hash ``rep.head``; ``at_anchor``: the id and hash of the row the anchor's
    count names, as the walk passed it."""
    path: Path = catalog.data_dir / ANCHOR_NAME
    n, last, head_hash = rep.rows, last_id or 0, rep.head
    try:
        count_s, head = path.read_text().split()
        count = int(count_s)
    except FileNotFoundError:
        if n:
            # The anchor is written after the very first commit, so a chain with rows and no
            # anchor means someone removed it — the one thing that hides a cut-off tail.
            _broken(rep, last, "anchor",
                    Message(N_("the anchor file {path} is missing although the chain has {rows} rows (it is written at "
                               "every commit): rows may have been cut off after row {row}. Compare the head {head} with "
                               "the last printed report or an off-station copy before trusting this log"),
                            path=str(path), rows=n, row=last, head=head_hash))
        return
    except (OSError, ValueError, UnicodeDecodeError):
        if n:
            _broken(rep, last, "anchor",
                    Message(N_("the anchor file {path} is unreadable or not an anchor (\"<rows> <hash>\"): rows may have "
                               "been cut off after row {row}. Compare the head {head} with the last printed report or "
                               "an off-station copy before trusting this log"),
                            path=str(path), row=last, head=head_hash))
        return
    if count < 0 or not _HEX64.match(head):
        _broken(rep, last, "anchor", Message(
                N_("the anchor file {path} is not an anchor (\"<rows> <hash>\"): rows may have been cut off the end; "
                   "compare the head with the last printed report"), path=str(path)))
        return
    if count > n:
        _broken(rep, last + 1, "truncated",
                Message(N_("the last {n} audit row(s) after row {row} were deleted (the anchor {path} recorded "
                           "{count} rows)"), n=count - n, row=last, path=str(path), count=count))
    elif count and at_anchor is not None and at_anchor[1] != head:
        at = at_anchor
        _broken(rep, at[0], "edited",
                Message(N_("audit row {row} differs from the one the anchor {path} recorded: the chain was rewritten"),
                        row=at[0], path=str(path)))
    elif count < n:
        rep.notes.append(Message(N_("anchor {path} lags by {n} row(s) (a crash or a concurrent write); not a break"),
                                 path=str(path), n=n - count))

