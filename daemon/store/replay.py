"""Audit entries replayed onto a catalog: what ``evidock reindex --from-store`` rebuilds after its snapshot.

Each entry of the chain already says what its change was (``daemon.evidence.verify`` holds the
catalog to the same entries), so a catalog is rebuilt by appending each row to the ``audit``
table verbatim — same id, time, actor and hash: they *are* the record, and ``audit verify``
passes on the result — and applying its change to the tables, one handler per event in
``HANDLERS`` (the table, not a chain of ifs). Times come from the entry (``at``) except where
the bucket knows better: an object's metadata (``daemon.store.uploads.provenance``) gives its
footage row's first-read time and corrected recording time, and a filing entry carries the
link's own time (``filed_at``, since issue 17).

Order in the chain is not always the order a handler needs: an offload files the new footage
(``footage.file``) in the transaction that records it, and its ``object.ingest`` entry comes
last. Entries about footage not yet there wait for it (``pending``) and are applied right after
the ingest that creates it.

What the entries cannot give back is counted, never dropped silently: events whose tables are
not rebuilt (``NOT_REBUILT``: job runs, media derived files, backups …), footage whose
provenance the bucket lacks (times from the entry: ``approximate``), objects the bucket lacks
(``missing``). Events that change nothing in the catalog (``RECORD_ONLY``) are only appended.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from daemon.cases.filing import FOOTAGE_TABLES, _sync_case_no
from daemon.catalog import devices, footage
from daemon.catalog.db import Catalog
from daemon.catalog.schema import MEDIA_TABLES
from daemon.i18n import N_, Message

log = logging.getLogger(__name__)

Row = dict[str, Any]  # one audit row as a segment carries it (daemon.store.segments.COLUMNS)
Head = Callable[[str], "dict[str, Any] | None"]  # sha256 -> head_object of its current version, metadata decoded

_ESCAPE = re.compile(r"\\x([0-9a-f]{2})")

# On the record only: nothing in the catalog changes with them.
RECORD_ONLY = frozenset({"footage.attribution", "recorder.wipe", "object.repair", "store.gc", "case.import",
                         "officer.import", "store.reindex", "backup.restore", "backup.secret",
                         "backup.target_replaced", "api.refused"})

# Entries whose table is not rebuilt: what is lost with them (for people).
NOT_REBUILT = {
    "job.start": N_("scheduled job runs (evidock jobs)"), "job.end": N_("scheduled job runs (evidock jobs)"),
    "media.derive": N_("proxies and thumbnails (made again from the bucket: the media jobs are queued)"),
    "media.retry": N_("proxies and thumbnails (made again from the bucket: the media jobs are queued)"),
    "dock.state": N_("dock events of the bays"), "usb.refused": N_("refused USB devices"),
    "review.sample": N_("review samples and findings"), "review.finding": N_("review samples and findings"),
    "backup.run": N_("backup runs and copies (the next backup run checks the targets again)"),
    "backup.damaged": N_("backup runs and copies (the next backup run checks the targets again)"),
    "backup.delete": N_("backup runs and copies (the next backup run checks the targets again)"),
    "backup.legal_hold": N_("backup runs and copies (the next backup run checks the targets again)"),
    "staging.discard": N_("discarded partial transfers"),
}


def raw_path(display: str) -> bytes:
    """The name as the volume gave it, from its display form (UTF-8, undecodable bytes as ``\\xNN``)."""
    out, pos = bytearray(), 0
    for m in _ESCAPE.finditer(display):
        out += display[pos:m.start()].encode("utf-8") + bytes([int(m.group(1), 16)])
        pos = m.end()
    return bytes(out + display[pos:].encode("utf-8"))


class Replay:
    """Entries applied one by one inside the caller's ``catalog.transaction()``."""

    def __init__(self, catalog: Catalog, station_id: str, head: Head) -> None:
        self.catalog, self.conn, self.station_id, self.head = catalog, catalog.conn, station_id, head
        self.pending: dict[int, list[tuple[Row, dict[str, Any]]]] = defaultdict(list)
        self.not_rebuilt: Counter[str] = Counter()
        self.approximate: list[int] = []
        self.missing: dict[str, int] = {}  # sha256 -> footage id: ingested, and the bucket lacks it
        self.applied = 0

    def apply(self, row: Row) -> None:
        """Append ``row`` verbatim and apply its change."""
        self.conn.execute("INSERT INTO audit (id, at, actor, event, subject, details, prev_hash, hash)"
                          " VALUES (:id, :at, :actor, :event, :subject, :details, :prev_hash, :hash)", row)
        self.applied += 1
        handler = HANDLERS.get(row["event"])
        if handler is None:
            if row["event"] not in RECORD_ONLY:
                self.not_rebuilt[row["event"]] += 1
            return
        # An entry of an older form (lacking what its handler needs) is counted, not half applied.
        self.conn.execute("SAVEPOINT replay_entry")
        try:
            handler(self, row, json.loads(row["details"]))
        except (KeyError, ValueError, TypeError, sqlite3.IntegrityError) as e:
            self.conn.execute("ROLLBACK TO replay_entry")
            self.not_rebuilt[row["event"]] += 1
            log.warning("reindex: audit row %s (%s %s) not applied: %r", row["id"], row["event"], row["subject"], e)
        self.conn.execute("RELEASE replay_entry")

    def footage_here(self, row: Row, d: dict[str, Any]) -> int | None:
        """The footage id an entry is about, or None when it waits for its ingest."""
        fid = int(d["footage"])
        if self.conn.execute("SELECT 1 FROM footage WHERE id = ?", (fid,)).fetchone():
            return fid
        self.pending[fid].append((row, d))
        return None

    def finish(self) -> None:
        """Entries still waiting for footage that never came (cut off, or deleted first)."""
        for entries in self.pending.values():
            for row, _ in entries:
                self.not_rebuilt[row["event"]] += 1
        self.pending.clear()


# -- offloads -----------------------------------------------------------------------------------


def _session_start(r: Replay, row: Row, d: dict[str, Any]) -> None:
    sid, at = int(row["subject"].split(":", 1)[1]), row["at"]
    if d.get("officer"):
        devices.upsert_officer(r.catalog, d["officer"], now=at)
    if d.get("device"):
        devices.upsert_device(r.catalog, d["device"], officer=d.get("officer"), now=at)
    r.conn.execute("INSERT INTO sessions (id, device_serial, officer_badge, source, actor, clock_drift_s, started_at,"
                   " status) VALUES (?,?,?,?,?,?,?, 'running')",
                   (sid, d.get("device"), d.get("officer"), d.get("source"), row["actor"], d.get("clock_drift_s"), at))


def _session_end(r: Replay, row: Row, d: dict[str, Any]) -> None:
    r.conn.execute("UPDATE sessions SET ended_at=?, status=?, message=?, files_stored=?, files_duplicate=?,"
                   " bytes_stored=?, problems=? WHERE id=?",
                   (row["at"], d.get("status"), d.get("message"), d.get("stored"), d.get("duplicates"),
                    d.get("bytes_stored"), d.get("problems"), int(row["subject"].split(":", 1)[1])))


def _provenance(r: Replay, row: Row, d: dict[str, Any]) -> tuple[str, str | None, bool]:
    """First-read time and corrected recording time of a new footage row; whether the bucket gave them."""
    from daemon.ingest.record import corrected_time

    head = r.head(row["subject"])
    if head is None:
        r.missing[row["subject"]] = int(d["footage"])
    meta = (head or {}).get("Metadata", {})
    if (meta.get("evidock-station"), meta.get("recorder"), meta.get("path")) == \
            (r.station_id, d.get("device"), d.get("path")) and meta.get("first-read"):
        return meta["first-read"], meta.get("recorded-at-corrected"), True
    # another station's upload of the same bytes, or none: the entry's time, the drift of its session
    drift = r.conn.execute("SELECT clock_drift_s FROM sessions WHERE id = ?", (d.get("session"),)).fetchone()
    fixed = corrected_time(datetime.fromisoformat(d["recorded_at"]), drift[0] if drift else None)
    return row["at"], fixed.isoformat(timespec="seconds") if fixed is not None else None, False


def _object_seen(r: Replay, row: Row, d: dict[str, Any]) -> None:
    from daemon.media.queue import enqueue_in_tx

    sha, seen_at, path = row["subject"], row["at"], d["path"]
    if row["event"] == "object.ingest":
        seen_at, corrected, exact = _provenance(r, row, d)
        footage.add_object(r.conn, sha, d["size"], seen_at)
        fid = footage.add_footage(r.conn, sha256=sha, size=d["size"], device=d.get("device"), officer=d.get("officer"),
                                  path=path, path_raw=raw_path(path), recorded_at=d["recorded_at"],
                                  recorded_at_corrected=corrected, important=bool(d.get("important")),
                                  session_id=d["session"], now=seen_at, bound_officer=d.get("bound_officer"),
                                  attributed_by=d.get("attributed_by"), kind=d.get("kind"))
        if fid != int(d["footage"]):  # ids are the record's: a row deleted before its successor was added
            r.conn.execute("UPDATE footage SET id = ? WHERE id = ?", (int(d["footage"]), fid))
            fid = int(d["footage"])
        if not exact:
            r.approximate.append(fid)
        enqueue_in_tx(r.conn, fid, sha)  # the derived files are made again, from the bucket
        for waiting, details in r.pending.pop(fid, []):
            HANDLERS[waiting["event"]](r, waiting, details)
    footage.add_sighting(r.conn, sha256=sha, session_id=d["session"], device=d.get("device"), officer=d.get("officer"),
                         path=path, path_raw=raw_path(path), size=d["size"], mtime=d.get("recorded_at"),
                         transfer_key=None, now=seen_at)


def _object_delete(r: Replay, row: Row, d: dict[str, Any]) -> None:
    sha, fid = row["subject"], int(d["footage"])
    f = r.conn.execute("SELECT size, officer_badge, device_serial, source_path, recorded_at, ingested_at FROM footage"
                       " WHERE id = ?", (fid,)).fetchone()
    size, officer, device, path, recorded, ingested = f if f else (d.get("size"), d.get("officer"), None, None,
                                                                   d.get("recorded_at"), None)
    r.conn.execute(
        "INSERT INTO retention_deleted (sha256, footage_id, size, officer, device, source_path, recorded_at, ingested_at,"
        " cases, rule, reason, plan_id, deleted_at, deleted_by, object_state, object_done_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,'removed',?)",
        (sha, fid, size, officer, device, path, recorded, ingested, json.dumps(d.get("cases", []), ensure_ascii=False),
         d.get("rule"), d.get("reason"), d.get("plan"), row["at"], row["actor"], row["at"]))
    for table in (*FOOTAGE_TABLES, *MEDIA_TABLES, "legal_holds"):
        r.conn.execute(f"DELETE FROM {table} WHERE footage_id = ?", (fid,))
    r.conn.execute("DELETE FROM sightings WHERE sha256 = ?", (sha,))
    r.conn.execute("DELETE FROM footage WHERE id = ?", (fid,))
    r.conn.execute("DELETE FROM objects WHERE sha256 = ?", (sha,))
    r.conn.execute("UPDATE store_uploads SET ref='drop' WHERE sha256=? AND ref='written'", (sha,))
    r.missing.pop(sha, None)
    for waiting, _ in r.pending.pop(fid, []):
        r.not_rebuilt[waiting["event"]] += 1


# -- filing and holds ---------------------------------------------------------------------------


def _file(r: Replay, row: Row, d: dict[str, Any]) -> None:
    fid = r.footage_here(row, d)
    if fid is None:
        return
    case, how, actor = d["case"], d["how"], row["actor"]
    if row["event"] == "footage.unfile":
        r.conn.execute("DELETE FROM footage_cases WHERE footage_id = ? AND case_no = ?", (fid, case))
        if how == "manual":  # a person's unfiling blocks auto-filing there
            r.conn.execute("INSERT OR REPLACE INTO filing_blocks (footage_id, case_no, blocked_at, blocked_by, reason)"
                           " VALUES (?,?,?,?,?)", (fid, case, row["at"], actor, d["reason"]))
    else:
        if how == "manual":  # also a person confirming an auto link: the link keeps its time
            r.conn.execute("UPDATE footage_cases SET how='manual', filed_by=?, reason=? WHERE footage_id=? AND case_no=?",
                           (actor, d["reason"], fid, case))
            r.conn.execute("DELETE FROM filing_blocks WHERE footage_id = ? AND case_no = ?", (fid, case))
            r.conn.execute("DELETE FROM footage_ambiguous WHERE footage_id = ?", (fid,))
        r.conn.execute("INSERT OR IGNORE INTO footage_cases (footage_id, case_no, filed_at, filed_by, how, reason)"
                       " VALUES (?,?,?,?,?,?)", (fid, case, d.get("filed_at") or row["at"], actor, how, d["reason"]))
    _sync_case_no(r.conn, [fid])


def _ambiguous(r: Replay, row: Row, d: dict[str, Any]) -> None:
    fid = r.footage_here(row, d)
    if fid is None:
        return
    if d.get("candidates"):
        r.conn.execute("INSERT OR REPLACE INTO footage_ambiguous (footage_id, candidates, marked_at) VALUES (?,?,?)",
                       (fid, json.dumps(d["candidates"], ensure_ascii=False), row["at"]))
    else:
        r.conn.execute("DELETE FROM footage_ambiguous WHERE footage_id = ?", (fid,))


def _kind(r: Replay, row: Row, d: dict[str, Any]) -> None:
    fid = r.footage_here(row, d)
    if fid is not None:
        footage.set_kind(r.conn, fid, d["kind"])


def _hold(r: Replay, row: Row, d: dict[str, Any]) -> None:
    fid = r.footage_here(row, d)
    if fid is None:
        return
    if row["event"] == "footage.hold":
        r.conn.execute("INSERT OR REPLACE INTO legal_holds (footage_id, held_at, held_by, reason) VALUES (?,?,?,?)",
                       (fid, row["at"], row["actor"], d["reason"]))
    else:
        r.conn.execute("DELETE FROM legal_holds WHERE footage_id = ?", (fid,))


# -- the bucket ---------------------------------------------------------------------------------


def _store_upload(r: Replay, row: Row, d: dict[str, Any]) -> None:
    at = row["at"]
    r.conn.execute("INSERT INTO store_uploads (sha256, size, state, queued_at, not_before, attempts, version_id,"
                   " stored_at, outcome) VALUES (?,?, 'stored', ?,?, 1, ?,?,?) ON CONFLICT(sha256) DO UPDATE SET"
                   " state='stored', version_id=excluded.version_id, stored_at=excluded.stored_at,"
                   " outcome=excluded.outcome, ref=NULL",
                   (row["subject"], d["size"], at, at, d.get("version_id"), at, d.get("outcome")))


def _store_lock(r: Replay, row: Row, d: dict[str, Any]) -> None:
    r.conn.execute("UPDATE store_uploads SET retain_until=? WHERE sha256=?", (d["retain_until"], row["subject"]))


def _store_ref(r: Replay, row: Row, d: dict[str, Any]) -> None:
    ref = {"store.ref": "written", "store.unref": "dropped"}[row["event"]]
    r.conn.execute("UPDATE store_uploads SET ref=? WHERE sha256=?", (ref, row["subject"]))


def _store_hold(r: Replay, row: Row, d: dict[str, Any]) -> None:
    r.conn.execute("UPDATE store_uploads SET hold_ref=? WHERE sha256=?",
                   (1 if row["event"] == "store.hold" else 0, row["subject"]))


# -- cases, officers, recorders -----------------------------------------------------------------


def _case_open(r: Replay, row: Row, d: dict[str, Any]) -> None:
    r.conn.execute("INSERT INTO cases (case_no, party, unit, opened_at, closed_at, status, sensitivity, notes, source,"
                   " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                   (d["case_no"], d["party"], d.get("unit"), d["opened_at"], d.get("closed_at"), d["status"],
                    d.get("sensitivity") or "normal", d.get("notes"), d.get("source"), row["at"], row["at"]))
    r.conn.executemany("INSERT INTO case_handlers (case_no, badge) VALUES (?, ?)",
                       [(d["case_no"], b) for b in d.get("handlers") or []])


_CASE_COLUMNS = ("party", "unit", "opened_at", "closed_at", "sensitivity", "notes")


def _case_change(r: Replay, row: Row, d: dict[str, Any]) -> None:
    case_no = row["subject"].split(":", 1)[1]
    changed = d.get("changed", {})
    sets = {k: (v[1] or "normal" if k == "sensitivity" else v[1]) for k, v in changed.items() if k in _CASE_COLUMNS}
    assigns = "".join(f"{k} = :{k}, " for k in sets)
    r.conn.execute(f"UPDATE cases SET {assigns}status = :status, source = :source, updated_at = :at WHERE case_no = :case",
                   {**sets, "status": d["status"], "source": d.get("source"), "at": row["at"], "case": case_no})
    if "handlers" in changed:
        r.conn.execute("DELETE FROM case_handlers WHERE case_no = ?", (case_no,))
        r.conn.executemany("INSERT INTO case_handlers (case_no, badge) VALUES (?, ?)",
                           [(case_no, b) for b in changed["handlers"][1] or []])


def _case_activity(r: Replay, row: Row, d: dict[str, Any]) -> None:
    handlers = list(d.get("handlers") or [])
    r.conn.execute("INSERT INTO case_activities (id, case_no, kind, start_at, end_at, all_handlers, handlers_key, source,"
                   " created_at, created_by) VALUES (?,?,?,?,?,?,?,?,?,?)",
                   (d["id"], d["case"], d["kind"], d["start"], d["end"], 0 if handlers else 1, ";".join(handlers),
                    d.get("source"), row["at"], row["actor"]))
    r.conn.executemany("INSERT INTO case_activity_handlers (activity_id, badge) VALUES (?, ?)",
                       [(d["id"], b) for b in handlers])


def _officer(r: Replay, row: Row, d: dict[str, Any]) -> None:
    badge, at = row["subject"].split(":", 1)[1], row["at"]
    r.conn.execute("INSERT INTO officers (badge, name, unit, first_seen, registered_at) VALUES (?,?,?,?,?)"
                   " ON CONFLICT(badge) DO UPDATE SET name = excluded.name, unit = COALESCE(excluded.unit, officers.unit),"
                   " registered_at = COALESCE(officers.registered_at, excluded.registered_at)",
                   (badge, d.get("name"), d.get("unit"), at, at))
    if "user" in d:  # the login tied to the badge (issue 20): only entries that changed it carry it
        r.conn.execute("UPDATE officers SET user = ? WHERE badge = ?", (d["user"], badge))


def _device_register(r: Replay, row: Row, d: dict[str, Any]) -> None:
    devices.upsert_device(r.catalog, row["subject"].split(":", 1)[1], seen=False, registered=True, now=row["at"])


def _device_assign(r: Replay, row: Row, d: dict[str, Any]) -> None:
    serial = row["subject"].split(":", 1)[1]
    if d.get("closed") is not None:
        r.conn.execute("UPDATE officer_assignments SET until_at = ? WHERE id = ?", (d["from"], d["closed"]))
    r.conn.execute("INSERT OR IGNORE INTO officers (badge, first_seen) VALUES (?,?)", (d["officer"], row["at"]))
    r.conn.execute("INSERT INTO officer_assignments (id, device_serial, badge, from_at, until_at, assigned_at, assigned_by)"
                   " VALUES (?,?,?,?,?,?,?)", (d["assignment"], serial, d["officer"], d["from"], d.get("until"),
                                               row["at"], row["actor"]))


def _device_bind(r: Replay, row: Row, d: dict[str, Any]) -> None:
    serial = row["subject"].split(":", 1)[1]
    devices.upsert_officer(r.catalog, d["officer"], d.get("name"), now=row["at"])
    devices.upsert_device(r.catalog, serial, officer=d["officer"], seen=False, now=row["at"])
    if d.get("assignment") is not None:
        r.conn.execute("UPDATE officer_assignments SET bound_at = ? WHERE id = ?", (row["at"], d["assignment"]))


Handler = Callable[[Replay, Row, dict[str, Any]], None]

HANDLERS: dict[str, Handler] = {
    "session.start": _session_start, "session.end": _session_end,
    "object.ingest": _object_seen, "object.sighting": _object_seen, "object.delete": _object_delete,
    "footage.file": _file, "footage.unfile": _file, "footage.ambiguous": _ambiguous, "footage.kind": _kind,
    "footage.hold": _hold, "footage.release": _hold,
    "store.upload": _store_upload, "store.ref": _store_ref, "store.unref": _store_ref,
    "store.hold": _store_hold, "store.release": _store_hold, "store.lock": _store_lock,
    "case.open": _case_open, "case.change": _case_change, "case.close": _case_change, "case.activity": _case_activity,
    "officer.register": _officer, "officer.edit": _officer,
    "device.register": _device_register, "device.assign": _device_assign, "device.bind": _device_bind,
}


def lost_with(event: str) -> Message:
    """What is not rebuilt with the entries of ``event`` (for people)."""
    return Message(NOT_REBUILT.get(event, N_("the changes of entries of this kind")))
