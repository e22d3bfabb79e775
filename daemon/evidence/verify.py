"""``evidock verify``: a read-only, resumable scrub of the store, held against the audit log.

Two kinds of check, cheap ones first (DESIGN.md, bagit style), every problem collected and
reported once, nothing repaired here:

1. **The catalog against the audit chain** (SQL only, every run). Each object, footage row,
   sighting, filing and legal hold came with an audit entry that states its content, so the
   chain is replayed (``object.ingest`` / ``object.sighting`` create, ``footage.file`` /
   ``footage.unfile`` and ``footage.hold`` / ``footage.release`` change, retention's
   ``object.delete`` removes) and the catalog must be exactly what the replay says. A row
   edited, swapped, re-pointed, added or deleted by hand — or an object deleted together with
   its ``objects`` row — is a *mismatch* naming the footage id or SHA-256 and the audit row.
   Entries written before issue 9 lack the footage id; those rows are matched by SHA-256
   (unique in ``footage``). No command reassigns footage to another officer, so the officer
   must be the one the ingest entry recorded. ``audit verify`` checks that the chain itself is
   intact; this check trusts its content, so run both (the nightly job does). The replay goes
   one slice of the SHA-256 space at a time (an object's entries are found by their subject,
   its footage row's by the row's id, both through the audit_subject index), so memory holds
   one slice of at most about ``CHUNK_OBJECTS`` objects, not the whole catalog (issue 19).
2. **The objects on disk** (read from the disk, not the page cache, and re-hashed with SHA-256 —
   the offload's check digest is never trusted here). Each catalogued object must hash to
   its name and catalog size and be read-only (a writable object is a broken invariant 1 even
   while its bytes are still right). With a time budget the hashing stops at the budget and
   leaves a checkpoint (the last hash checked) in the catalog's ``meta`` table; the next run
   continues after it, so a nightly job scrubs a large store in slices. A run that reaches the
   end clears the checkpoint and walks ``objects/``: a file with a valid name that the catalog
   does not know is *hashed* — the right content is a harmless leftover of a crash between the
   rename and the catalog commit (or a retention removal still pending), a note; other content
   is a foreign file under an evidence name, damage. Anything else in ``objects/`` (junk in a
   fan-out directory, a badly named file) is a stray: reported, never opened, and the walk
   goes on.

Exit: 2 if anything is damaged, missing or mismatched; 1 for strays only; 0 clean.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections import defaultdict
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from daemon.catalog.db import Catalog
from daemon.errors import EXIT_ERROR, EXIT_OK, EXIT_WARNING
from daemon.evidence.cache import CachedObjectStore
from daemon.evidence.store import LocalObjectStore
from daemon.evidence.transfer import hash_fd
from daemon.i18n import Message, N_, os_error

CHECKPOINT_KEY = "verify.position"


@dataclass
class VerifyReport:
    checked: int = 0
    in_bucket: int = 0  # of those checked: evicted from the local cache, checked in the bucket (s3 backend)
    damaged: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unreferenced: list[str] = field(default_factory=list)
    # catalog rows that do not match the audit entries that created/changed/deleted them
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    # entries under objects/ that are not objects at all (never opened)
    strays: list[dict[str, str]] = field(default_factory=list)
    # unreferenced objects whose deletion is audited (sha256 -> the object.delete audit row)
    pending_removal: dict[str, int] = field(default_factory=dict)
    resumed_after: str | None = None
    complete: bool = False
    next_after: str | None = None

    @property
    def exit_code(self) -> int:
        if self.damaged or self.missing or self.mismatches:
            return EXIT_ERROR
        return EXIT_WARNING if self.strays else EXIT_OK

    def summary(self) -> str:
        tail = "" if self.complete else f" (stopped at the time limit; the next run continues after {self.next_after[:16]}…)"
        extra = ""
        if self.mismatches:
            extra += f", {len(self.mismatches)} catalog row(s) not matching the audit log"
        if self.strays:
            extra += f", {len(self.strays)} stray file(s) in objects/"
        if self.in_bucket:
            extra += f", {self.in_bucket} checked in the bucket (not cached locally)"
        return f"checked {self.checked} objects, {len(self.damaged)} damaged, {len(self.missing)} missing{extra}{tail}"

    def to_json(self) -> dict[str, Any]:
        return {
            "checked": self.checked, "in_bucket": self.in_bucket, "damaged": _english(self.damaged), "missing": self.missing,
            "unreferenced": self.unreferenced, "mismatches": _english(self.mismatches), "strays": _english(self.strays),
            "pending_removal": self.pending_removal, "complete": self.complete,
            "resumed_after": self.resumed_after, "next_after": self.next_after, "summary": self.summary(),
        }


def verify_store(catalog: Catalog, store: LocalObjectStore, max_duration: float | None = None,
                 restart: bool = False, hashed: Collection[str] = ()) -> VerifyReport:
    """Cross-check the catalog with the audit log, then hash objects in hash order from the last
    checkpoint, within ``max_duration`` seconds (the cross-check is not counted against it).

    ``hashed``: objects the caller has just read back cold and hashed itself (a restore does, as
    it brings each one in); they are checked for presence, size and mode without a second read."""
    rep = VerifyReport()
    cross_check(catalog, store, rep)
    after = None if restart else catalog.get_meta(CHECKPOINT_KEY)
    rep.resumed_after = after
    deadline = time.monotonic() + max_duration if max_duration else None
    last = after
    for sha, size in _objects_after(catalog, after or ""):
        if deadline is not None and time.monotonic() >= deadline and rep.checked:
            rep.next_after = last
            catalog.set_meta(CHECKPOINT_KEY, last)
            return rep
        rep.checked += 1
        last = sha
        if isinstance(store, CachedObjectStore) and not store.cached(sha):
            # evicted from the local cache: the bucket holds it, checked there (head_object's checksum)
            rep.in_bucket += 1
            problem = store.check_in_bucket(sha, size)
        else:
            problem = _check_object(store, sha, size, read=sha not in hashed)
        if problem == "missing":
            rep.missing.append(sha)
        elif problem:
            rep.damaged.append({"sha256": sha, "reason": str(problem), "reason_msg": problem})
    rep.complete = True
    catalog.set_meta(CHECKPOINT_KEY, None)
    for sha in store.iter_objects(
            on_stray=lambda p, why: rep.strays.append({"path": str(p), "why": str(why), "why_msg": why})):
        if catalog.conn.execute("SELECT 1 FROM objects WHERE sha256 = ?", (sha,)).fetchone():
            continue  # one indexed lookup a file: not a set of every object's hash in memory
        problem = _check_object(store, sha, None)
        if problem and problem != "missing":
            reason = Message(N_("not in the catalog, and {problem}: a foreign file under an evidence name — keep "
                                "it aside for inspection"), problem=problem)
            rep.damaged.append({"sha256": sha, "reason": str(reason), "reason_msg": reason})
            continue
        rep.unreferenced.append(sha)
        deleted = _deleted_at(catalog, sha)
        if deleted is not None:
            rep.pending_removal[sha] = deleted
    return rep


def _objects_after(catalog: Catalog, after: str, batch: int = 1000) -> Iterator[tuple[str, int]]:
    """The catalog's objects after ``after`` in hash order, a batch at a time (keyset): memory holds
    one batch, and the checkpoint written between batches needs no open read."""
    while True:
        rows = catalog.conn.execute("SELECT sha256, size FROM objects WHERE sha256 > ? ORDER BY sha256 LIMIT ?",
                                    (after, batch)).fetchall()
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1][0]


def _english(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Findings as ``--json`` prints them: the English only (``*_msg``, the messages, are for people)."""
    return [{k: v for k, v in e.items() if not k.endswith("_msg")} for e in entries]


def _check_object(store: LocalObjectStore, sha: str, size: int | None, read: bool = True) -> Message | str | None:
    """None if the object is whole and read-only; "missing"; else what is wrong, in words.
    ``read=False``: its bytes were just hashed by the caller; only its size and mode are checked."""
    try:
        fd = store.open_fd(sha)
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        return Message(N_("cannot be opened ({reason})"), reason=os_error(e))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return Message(N_("is not a regular file"))
        got, got_size = hash_fd(fd) if read else (sha, st.st_size)
    except OSError as e:
        return Message(N_("read error ({reason})"), reason=os_error(e))
    finally:
        os.close(fd)
    if got != sha:
        return Message(N_("content hashes to {sha256}"), sha256=got)
    if size is not None and got_size != size:
        return Message(N_("size {size}, catalog says {expected}"), size=got_size, expected=size)
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o222:
        # Right bytes today, but anyone with that write bit can change evidence tomorrow.
        return Message(N_("is writable (mode {mode:04o}); evidence must be read-only (0444): find out who changed "
                          "it, then `chmod 0444` it"), mode=mode)
    return None


# -- the catalog against the audit chain ----------------------------------------------------

_REPLAYED = ("object.ingest", "object.sighting", "object.delete", "footage.file", "footage.unfile",
             "footage.hold", "footage.release")

# footage column -> key in the object.ingest details
_FOOTAGE_FIELDS = (("size", "size"), ("officer_badge", "officer"), ("device_serial", "device"),
                   ("session_id", "session"), ("source_path", "path"), ("important", "important"),
                   ("recorded_at", "recorded_at"), ("bound_officer", "bound_officer"), ("attributed_by", "attributed_by"))


# The cross-check replays the chain a slice of SHA-256 space at a time (the objects' events are
# found by their subject, the SHA-256, through the audit_subject index; the footage events by the
# footage ids of the slice), so that memory holds one slice — about CHUNK_OBJECTS objects with
# their rows and entries — however many million the catalog holds (issue 19).
CHUNK_OBJECTS = 2_000
_OBJECT_EVENTS = ("object.ingest", "object.sighting", "object.delete")
_FOOTAGE_EVENTS = ("footage.file", "footage.unfile", "footage.hold", "footage.release")
_FOOTAGE_COLS = ("id", "sha256", "size", "officer_badge", "device_serial", "session_id", "source_path",
                 "important", "recorded_at", "case_no", "bound_officer", "attributed_by")


def _slices(conn: Any) -> list[tuple[str, str]]:
    """SHA-256 prefixes tiling the hex space ``[lo, hi)``: 16**k of them, k the least giving at
    most CHUNK_OBJECTS objects a slice."""
    n = max(conn.execute("SELECT COUNT(*) FROM objects").fetchone()[0],
            conn.execute("SELECT COUNT(*) FROM footage").fetchone()[0])
    k = 1
    while n > CHUNK_OBJECTS * 16 ** k and k < 6:
        k += 1
    # the last slice ends past "fff…f" (every 64-digit hash) but before "footage:…", "g…": the
    # subjects of other events are not walked
    cuts = [format(i, f"0{k}x") for i in range(16 ** k)] + ["f" * 65]
    return list(zip(cuts, cuts[1:]))


def cross_check(catalog: Catalog, store: LocalObjectStore, rep: VerifyReport) -> None:
    """Replay the audit chain and add every catalog row that differs from it to ``rep.mismatches``.

    Reads in one snapshot, so an offload committing meanwhile cannot look like a mismatch, and a
    slice of the SHA-256 space at a time (``_slices``), so memory does not grow with the catalog.
    """
    conn = catalog.conn
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")  # deferred: a read snapshot, no write lock
    try:
        def bad(message: Message, sha256: str | None = None, footage_id: int | None = None,
                row: int | None = None) -> None:
            rep.mismatches.append({"footage": footage_id, "sha256": sha256, "audit_row": row, "problem": str(message),
                                   "problem_msg": message})

        # an object entry whose subject is no SHA-256 falls in no slice: said here, not replayed
        for rid, event, subject in conn.execute(
                "SELECT id, event, subject FROM audit INDEXED BY audit_event WHERE event IN (?,?,?) AND NOT"
                " (length(subject) = 64 AND subject NOT GLOB '*[^0-9a-f]*') ORDER BY id", _OBJECT_EVENTS):
            bad(_unreadable(rid, event, subject), row=rid)
        # rows of one slice whose ingest entry is in another (re-pointed at other content): rare,
        # a tampered catalog only; settled at the end so that no row is reported twice
        unaccounted: dict[int, str] = {}
        accounted_elsewhere: set[int] = set()
        for lo, hi in _slices(conn):
            _check_slice(conn, store, lo, hi, bad, unaccounted, accounted_elsewhere)
        for fid in sorted(set(unaccounted) - accounted_elsewhere):
            bad(Message(N_("footage {id} ({sha256}) has no object.ingest entry in the audit log: it was not stored by "
                           "evidock (added or re-pointed by hand, or the end of the log was cut off)"),
                        id=fid, sha256=unaccounted[fid]), unaccounted[fid], fid)
    finally:
        if own:
            conn.execute("ROLLBACK")


def _unreadable(rid: int, event: str, subject: str) -> Message:
    return Message(N_("audit row {row} ({event} {subject}) does not have the details its event needs; it cannot "
                      "be held against the catalog — `evidock audit verify` tells whether it was edited"),
                   row=rid, event=event, subject=subject)


def _check_slice(conn: Any, store: LocalObjectStore, lo: str, hi: str, bad: Any, unaccounted: dict[int, str],
                 accounted_elsewhere: set[int]) -> None:
    """The cross-check of the objects whose SHA-256 is in ``[lo, hi)``, their footage rows,
    sightings, filings and holds."""
    events = [(rid, event, subject, _parsed(details)) for rid, event, subject, details in conn.execute(
        "SELECT id, event, subject, details FROM audit INDEXED BY audit_subject WHERE subject >= ? AND subject < ?"
        " AND event IN (?,?,?)", (lo, hi, *_OBJECT_EVENTS))]
    ingest_fids: set[int] = set()
    for _rid, event, _subject, d in events:
        if event == "object.ingest" and isinstance(d, dict) and isinstance(d.get("footage"), int):
            ingest_fids.add(d["footage"])
    cols = ", ".join(_FOOTAGE_COLS)
    footage = {r[0]: r for r in conn.execute(
        f"SELECT {cols} FROM footage WHERE sha256 >= ? AND sha256 < ?"
        f" UNION SELECT {cols} FROM footage WHERE id IN (SELECT value FROM json_each(?))",
        (lo, hi, json.dumps(sorted(ingest_fids))))}
    # the rows this slice answers for: their content is in it (a row re-pointed elsewhere is its
    # new content's slice's)
    owned = {fid for fid, r in footage.items() if lo <= r[1] < hi}
    owned |= {fid for fid in ingest_fids if fid not in footage}
    fids = sorted(set(footage) | ingest_fids)
    events += [(rid, event, subject, _parsed(details)) for rid, event, subject, details in conn.execute(
        "SELECT a.id, a.event, a.subject, a.details FROM json_each(?) j"
        " JOIN audit a INDEXED BY audit_subject ON a.subject = 'footage:' || j.value WHERE a.event IN (?,?,?,?)",
        (json.dumps(fids), *_FOOTAGE_EVENTS))]
    events.sort(key=lambda e: e[0])
    objects = dict(conn.execute("SELECT sha256, size FROM objects WHERE sha256 >= ? AND sha256 < ?", (lo, hi)))
    sightings = conn.execute(
        "SELECT id, sha256, session_id, device_serial, officer_badge, source_path, size FROM sightings"
        " WHERE sha256 >= ? AND sha256 < ? ORDER BY id", (lo, hi)).fetchall()
    filings = conn.execute(
        "SELECT footage_id, case_no FROM footage_cases WHERE footage_id IN (SELECT value FROM json_each(?))",
        (json.dumps(sorted(owned)),)).fetchall()
    holds = {r[0] for r in conn.execute(
        "SELECT footage_id FROM legal_holds WHERE footage_id IN (SELECT value FROM json_each(?))",
        (json.dumps(sorted(owned)),))}

    live: dict[str, dict[str, Any]] = {}  # sha256 -> its object.ingest details (+ "_row")
    deleted: dict[str, int] = {}
    seen: dict[tuple[Any, ...], list[int]] = defaultdict(list)  # sighting key -> audit rows
    filed: dict[int, set[str]] = defaultdict(set)
    held: set[int] = set()
    for rid, event, subject, d in events:
        try:
            if d is None:
                raise ValueError("not JSON")
            _replay(event, subject, d, rid, live, deleted, seen, filed, held)
        except (ValueError, KeyError, TypeError, AttributeError):
            bad(_unreadable(rid, event, subject), row=rid)

    # footage rows: each one the row its object.ingest entry created, field by field
    by_sha = {r[1]: r for r in footage.values()}
    accounted: set[int] = set()
    for sha, e in live.items():
        rid, fid = e["_row"], e.get("footage")
        row = footage.get(fid) if fid is not None else by_sha.get(sha)
        label = (Message(N_("footage {id}"), id=fid) if fid is not None
                 else Message(N_("the footage row of {sha256}"), sha256=sha))
        if row is None:
            bad(Message(N_("{what} ({sha256}) is not in the catalog, but audit row {row} recorded its ingest and no "
                           "object.delete its deletion: the row was deleted by hand — restore the catalog from a backup"),
                        what=label, sha256=sha, row=rid), sha, fid, rid)
            continue
        accounted.add(row[0])
        if row[0] not in owned:
            accounted_elsewhere.add(row[0])
        if row[1] != sha:
            bad(Message(N_("footage {id}: its sha256 is {sha256}, but audit row {row} (object.ingest) recorded "
                           "{recorded} for it: the row was re-pointed at other content"),
                        id=row[0], sha256=row[1], row=rid, recorded=sha), sha, row[0], rid)
            continue
        cols_of = dict(zip(_FOOTAGE_COLS, row))
        for col, key in _FOOTAGE_FIELDS:
            if key not in e:
                continue  # an entry of the old form (before issue 9) that did not state this
            want = int(e[key]) if col == "important" else e[key]
            if cols_of[col] != want:
                bad(Message(N_("footage {id} ({sha256}): {column} is {value!r}, but audit row {row} (object.ingest) "
                               "recorded {recorded!r} and no audited change followed"),
                            id=row[0], sha256=sha, column=col, value=cols_of[col], row=rid, recorded=want),
                    sha, row[0], rid)
    for fid in owned:
        if fid in footage and fid not in accounted:
            unaccounted[fid] = footage[fid][1]

    # objects rows, and for each ingested object: in the catalog and the store, or audited deletion
    for sha, e in live.items():
        if sha not in objects:
            where = (Message(N_("but its file is still in the store")) if store.exists(sha)
                     else Message(N_("nor in the store")))
            bad(Message(N_("object {sha256} is not in the catalog's objects table {where}; audit row {row} recorded its "
                           "ingest and no object.delete its deletion: evidence was removed outside retention — "
                           "restore it from a backup"), sha256=sha, where=where, row=e["_row"]),
                sha, e.get("footage"), e["_row"])
        elif objects[sha] != e.get("size", objects[sha]):
            bad(Message(N_("object {sha256}: catalog size {size}, audit row {row} recorded {recorded}"),
                        sha256=sha, size=objects[sha], row=e["_row"], recorded=e["size"]), sha, e.get("footage"), e["_row"])
    for sha in objects:
        if sha not in live:
            bad(Message(N_("object {sha256} is in the catalog but no object.ingest entry records it (or an "
                           "object.delete removed it)"), sha256=sha), sha)

    # sightings: one per object.ingest / object.sighting entry
    for sid, sha, *rest in sightings:
        key = (sha, *rest)
        if seen.get(key):
            seen[key].pop(0)
        else:
            bad(Message(N_("sighting {id} of {sha256} (session {session}, {path!r}) has no audit entry that records it"),
                        id=sid, sha256=sha, session=rest[0], path=rest[3]), sha)
    for key, rids in seen.items():
        for rid in rids:
            bad(Message(N_("audit row {row} records a sighting of {sha256} in session {session} ({path!r}) that is not "
                           "in the catalog"), row=rid, sha256=key[0], session=key[1], path=key[4]), key[0], row=rid)

    # filings and holds of the footage rows this slice answers for (a missing row is reported above)
    actual: dict[int, set[str]] = defaultdict(set)
    for fid, case_no in filings:
        actual[fid].add(case_no)
    for fid in sorted(set(actual) | {f for f, s in filed.items() if s and f in owned}):
        want, got = filed.get(fid, set()), actual.get(fid, set())
        sha = footage[fid][1] if fid in footage else None
        if want != got:
            bad(Message(N_("footage {id} ({sha256}): filed to {got} in the catalog, but the audit log's "
                           "footage.file/unfile entries leave it filed to {want}"),
                        id=fid, sha256=sha, got=_cases(got), want=_cases(want)), sha, fid)
    for fid in sorted(owned):
        row = footage.get(fid)
        if row is None or fid not in accounted:
            continue
        want_cases = filed.get(fid, set())
        want_no = next(iter(want_cases)) if len(want_cases) == 1 else None
        if row[9] != want_no:
            bad(Message(N_("footage {id} ({sha256}): case_no is {value!r}, its audited filings say {recorded!r}"),
                        id=fid, sha256=row[1], value=row[9], recorded=want_no), row[1], fid)
    for fid in sorted(holds ^ (held & owned)):
        sha = footage[fid][1] if fid in footage else None
        state = (Message(N_("on legal hold in the catalog but")) if fid in holds
                 else Message(N_("not on legal hold in the catalog but")))
        bad(Message(N_("footage {id} ({sha256}) is {state} the audit log's footage.hold/release entries say otherwise"),
                    id=fid, sha256=sha, state=state), sha, fid)


def _parsed(details: str | None) -> Any:
    """An entry's details as JSON, or None when they are not JSON (said when it is replayed)."""
    try:
        return json.loads(details or "")
    except ValueError:
        return None


def _deleted_at(catalog: Catalog, sha: str) -> int | None:
    """The audit row of the object's deletion, if retention deleted it last (not ingested since)."""
    row = catalog.conn.execute(
        "SELECT id, event FROM audit INDEXED BY audit_subject WHERE subject = ? AND event IN (?, ?)"
        " ORDER BY id DESC LIMIT 1", (sha, "object.ingest", "object.delete")).fetchone()
    return int(row[0]) if row and row[1] == "object.delete" else None


def _cases(cases: set[str]) -> Message | str:
    return str(sorted(cases)) if cases else Message(N_("no case"))


def _replay(event: str, subject: str, d: dict[str, Any], rid: int, live: dict[str, dict[str, Any]],
            deleted: dict[str, int], seen: dict[tuple[Any, ...], list[int]], filed: dict[int, set[str]],
            held: set[int]) -> None:
    """Apply one audit entry to the expected state of the catalog."""
    if event in ("object.ingest", "object.sighting"):
        if event == "object.ingest":
            live[subject] = {**d, "_row": rid}
            deleted.pop(subject, None)
        seen[(subject, d.get("session"), d.get("device"), d.get("officer"), d.get("path"), d.get("size"))].append(rid)
    elif event == "object.delete":
        # retention removes the object, its footage row, sightings, filings and hold at once
        gone = live.pop(subject, None)
        deleted[subject] = rid
        for k in [k for k in seen if k[0] == subject]:
            del seen[k]
        for fid in {d.get("footage"), gone.get("footage") if gone else None} - {None}:
            filed.pop(fid, None)
            held.discard(fid)
    elif event in ("footage.file", "footage.unfile"):
        cases = filed[int(d["footage"])]
        (cases.add if event == "footage.file" else cases.discard)(d["case"])
    elif event == "footage.hold":
        held.add(int(d["footage"]))
    else:
        held.discard(int(d["footage"]))
