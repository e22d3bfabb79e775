"""A backup run: per target, the objects it lacks, verified there; retention's deletions; a
catalog snapshot. Every run is a ``backup_runs`` row and an audit entry.

Nothing is marked backed up before it is verified at the target: the ``backup_copies`` row is
written after ``put`` returned (the target verified the copy), in a transaction of its own. A
run killed in between leaves the copy at the target and no row: the next run finds the copy
intact and marks it then (once — the row's key is the object and the target). A target that
fails (down, full, refused credentials) fails its run with a message naming it; what was
verified before that stays marked, and the next run goes on from there.

Footage on legal hold has no retention date, so its S3 copies' locks never get one: each such
copy carries an S3 Object Legal Hold on its version instead, from its PUT or from the next run
after the hold, lifted by the first run after the release (``_sync_holds``; the catalog marks
which copies carry it, so a run asks the bucket only about changes).

An error that is not a target's (``EvidockError``) — a full data disk under the snapshot, the
catalog's own SQLite — still ends the run's row as failed with its alert; it is raised after
the other targets ran.

Article 10: footage of secret cases goes only to on-site targets, unless the target sets
``include_secret = true`` — each run that copies secret footage there says so in the audit log.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import daemon
from daemon.backup.overlap import overlapped
from daemon.backup.target import Copy, Target, snapshot_key
from daemon.backup.targets import open_target, targets_of
from daemon.catalog.db import Catalog
from daemon.clock import from_iso, iso, now_utc
from daemon.crashpoints import crashpoint
from daemon.errors import EvidockError
from daemon.evidence import audit
from daemon.i18n import N_, Message, dumps, message_of

if TYPE_CHECKING:
    from daemon.config import BackupTarget
    from daemon.context import StationContext

log = logging.getLogger(__name__)

ALERT_JOB = "backup:{target}"  # the job name backup alerts are kept under (daemon/schedule/runs.py)


@dataclass
class TargetRun:
    target: str
    result: str = "ok"  # ok | failed
    copied: int = 0
    bytes: int = 0
    skipped_secret: int = 0
    deleted: int = 0
    held: int = 0  # copies given an S3 legal hold ON this run (footage on legal hold)
    released: int = 0  # copies whose legal hold was lifted (OFF) this run
    forgotten: int = 0  # copies the catalog marked at a target that turned out not to be the one
    missing: list[str] = field(default_factory=list)  # in the catalog, not in the store
    snapshot: str | None = None
    error: Message | None = None

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "result": self.result, "copied": self.copied, "bytes": self.bytes,
                "skipped_secret": self.skipped_secret, "deleted": self.deleted, "held": self.held,
                "released": self.released, "forgotten": self.forgotten,
                "missing": self.missing,
                "snapshot": self.snapshot, "error": str(self.error) if self.error else None}


@dataclass
class BackupReport:
    runs: list[TargetRun]

    @property
    def exit_code(self) -> int:
        if any(r.result == "failed" for r in self.runs):
            return 2
        return 1 if any(r.missing for r in self.runs) else 0

    def to_json(self) -> dict[str, Any]:
        return {"targets": [r.to_json() for r in self.runs], "exit_code": self.exit_code}

    def counts(self) -> dict[str, int]:
        return {"targets": len(self.runs), "copied": sum(r.copied for r in self.runs),
                "bytes": sum(r.bytes for r in self.runs), "deleted": sum(r.deleted for r in self.runs),
                "skipped_secret": sum(r.skipped_secret for r in self.runs),
                "failed": sum(r.result == "failed" for r in self.runs)}


def secret_objects(catalog: Catalog) -> set[str]:
    """Objects of footage filed to (or possibly belonging to) a secret case."""
    rows = catalog.conn.execute(
        "SELECT f.sha256 FROM footage f JOIN footage_cases fc ON fc.footage_id = f.id"
        " JOIN cases c ON c.case_no = fc.case_no WHERE c.sensitivity = 'secret'"
        " UNION SELECT f.sha256 FROM footage f JOIN footage_ambiguous a ON a.footage_id = f.id, json_each(a.candidates) j"
        " JOIN cases c ON c.case_no = j.value WHERE c.sensitivity = 'secret'").fetchall()
    return {r[0] for r in rows}


def held_objects(catalog: Catalog) -> set[str]:
    """Objects of footage on legal hold (few: people put them there one by one)."""
    return {r[0] for r in catalog.conn.execute(
        "SELECT DISTINCT f.sha256 FROM legal_holds h JOIN footage f ON f.id = h.footage_id")}


def _lacking(catalog: Catalog, target: str) -> list[tuple[str, int]]:
    return [(r[0], int(r[1])) for r in catalog.conn.execute(
        "SELECT o.sha256, o.size FROM objects o WHERE NOT EXISTS"
        " (SELECT 1 FROM backup_copies c WHERE c.sha256 = o.sha256 AND c.target = ?) ORDER BY o.stored_at, o.sha256",
        (target,))]


def mark(catalog: Catalog, target: str, copy: Copy, retain_until: datetime | None) -> None:
    """Record a verified copy (after ``put`` returned); one written with a legal hold is audited
    as such in the same transaction."""
    with catalog.transaction() as conn:
        conn.execute("INSERT INTO backup_copies (sha256, target, size, copied_at, version_id, verified_at, retain_until,"
                     " legal_hold) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (sha256, target) DO UPDATE SET size=excluded.size,"
                     " copied_at=excluded.copied_at, version_id=excluded.version_id, verified_at=excluded.verified_at,"
                     " retain_until=excluded.retain_until, legal_hold=excluded.legal_hold",
                     (copy.sha256, target, copy.size, iso(now_utc()), copy.version_id, copy.verified_at,
                      iso(retain_until) if retain_until else None, int(copy.legal_hold)))
        if copy.legal_hold:
            _audit_hold(catalog, target, copy, True)


def _audit_hold(catalog: Catalog, target: str, copy: Copy, on: bool) -> None:
    audit.append(catalog, "backup.legal_hold", f"object:{copy.sha256}",
                 {"target": target, "version": copy.version_id, "status": "ON" if on else "OFF"})


def start_row(catalog: Catalog, target: str, kind: str) -> int:
    with catalog.transaction() as conn:
        return int(conn.execute("INSERT INTO backup_runs (target, kind, started_at, result) VALUES (?,?,?,?)",
                                (target, kind, iso(now_utc()), "running")).lastrowid)


def end_row(catalog: Catalog, rid: int, target: str, kind: str, result: str, counts: dict[str, Any],
            error: Message | None) -> None:
    from daemon.schedule.runs import clear_alerts, raise_alert

    now = now_utc()
    with catalog.transaction() as conn:
        conn.execute("UPDATE backup_runs SET ended_at=?, result=?, counts=?, error=?, error_msg=? WHERE id=?",
                     (iso(now), result, json.dumps(counts, sort_keys=True), str(error) if error else None,
                      dumps(error), rid))
        audit.append(catalog, f"backup.{kind}", f"backup:{target}", {"run": rid, "result": result, "counts": counts,
                                                                     "error": str(error) if error else None})
        job = ALERT_JOB.format(target=target)
        if result in ("failed", "damaged"):
            raise_alert(catalog, job, f"{kind}-{result}", error or Message(N_("backup {target} failed"), target=target), now)
        else:
            clear_alerts(catalog, job, f"{kind}-failed", now)
            if kind == "verify" and counts.get("complete"):
                clear_alerts(catalog, job, "verify-damaged", now)


def run_backup(ctx: StationContext, catalog: Catalog, target: str | None = None) -> BackupReport:
    """Back up to every configured target (or the one named): objects, deletions, a snapshot."""
    from daemon.cases.retention import keep_until_by_object

    station = ctx.config.station.station_id()
    entries = targets_of(ctx.config, target)
    keep = {sha: _whole_second(until) for sha, until in keep_until_by_object(catalog, ctx.config.retention).items()}
    secret = secret_objects(catalog)
    held = held_objects(catalog)
    runs = []
    bug: Exception | None = None  # the first failure that is not a target's: raised after every target's run
    for entry in entries:
        tr = TargetRun(entry.name)
        rid = start_row(catalog, entry.name, "run")
        try:
            t = open_target(entry, station)
            t.check()
            tr.forgotten = check_marker(catalog, t)
            _copy_objects(ctx, catalog, t, tr, keep, secret, held)
            _extend_locks(catalog, t, keep)
            _sync_holds(catalog, t, tr, held)  # before the deletions: a hold lifted lets them through
            _apply_deletions(catalog, t, tr)
            tr.snapshot = take_snapshot(catalog, t, station, ctx.config.backup.keep_snapshots)
        except EvidockError as e:
            tr.result, tr.error = "failed", message_of(e)
        except BaseException as e:
            # Not a target's error (a full data disk under the snapshot, the catalog's own SQLite,
            # a bug): the run still ends as failed, with its alert, and the error is raised again
            # (after the other targets, which may well succeed; at once for an interrupt) so that
            # it is seen: the CLI's exit code, the job's failure.
            tr.result, tr.error = "failed", unexpected(entry.name, e)
            log.exception("backup target %s: the run failed on an unexpected error", entry.name)
            _end_run(catalog, rid, tr, after_error=True)
            runs.append(tr)
            if not isinstance(e, Exception):
                raise
            bug = bug or e
            continue
        _end_run(catalog, rid, tr)
        runs.append(tr)
    try:
        check_lag(ctx, catalog)
    except Exception:
        if bug is None:
            raise
        log.exception("backup: the lag check failed too")  # the first error is the one raised
    if bug is not None:
        raise bug
    return BackupReport(runs)


def _whole_second(t: datetime | None) -> datetime | None:
    """A keep date as a lock date: S3 keeps whole seconds and the catalog stores them (``iso``),
    so a date with a fraction (from an ingest time) is rounded up — never a lock shorter than the
    rules, and the stored date compares equal to it on the next run, which then leaves the lock
    alone instead of asking the bucket about every such copy again."""
    if t is None or t.microsecond == 0:
        return t
    return t.replace(microsecond=0) + timedelta(seconds=1)


def unexpected(target: str, e: BaseException, command: str = "backup run") -> Message:
    """The words for a run (``command``: backup run, backup verify) ended by an error that is not
    a target's, naming what to do."""
    reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    return Message(N_("backup {target}: `evidock {command}` stopped on an unexpected error ({reason}); nothing that "
                      "was not verified at the target is marked backed up. Check the data disk's free space and "
                      "the service log (journalctl -u evidock), then run `evidock {command} --target {target}`"),
                   target=target, reason=reason, command=command)


def _end_run(catalog: Catalog, rid: int, tr: TargetRun, after_error: bool = False) -> None:
    """``end_row`` for a backup run. ``after_error``: the run is ending on an unexpected error;
    should the catalog itself not take the row's end either (the same full disk, SQLite's own
    error), that is logged and the first error is the one raised."""
    counts = {k: v for k, v in tr.to_json().items() if k not in ("target", "result", "error")}
    try:
        end_row(catalog, rid, tr.target, "run", tr.result, counts, tr.error)
    except Exception:
        if not after_error:
            raise
        log.exception("backup target %s: could not record the end of run %d", tr.target, rid)


MARKER_META = "backup.marker.{target}"  # the catalog's memory of each target's mark


def check_marker(catalog: Catalog, t: Target) -> int:
    """Is the target the one this catalog's copies were made to? Each target carries a mark the
    station wrote there, and the catalog remembers it. A target without the mark, or with another
    one — a disk swapped for an empty one, a share wiped, another bucket under the same name —
    holds none of what the catalog says it does: its copies are forgotten (audited, and told in
    the run's figures), so this run copies everything again. Returns how many were forgotten.
    A catalog that never saw a mark (copies made before marks existed) adopts the target's."""
    key = MARKER_META.format(target=t.name)
    remembered, found = catalog.get_meta(key), t.read_marker()
    if remembered and found == remembered:
        return 0
    forgotten = 0
    if remembered:
        with catalog.transaction() as conn:
            forgotten = conn.execute("DELETE FROM backup_copies WHERE target = ?", (t.name,)).rowcount
            audit.append(catalog, "backup.target_replaced", f"backup:{t.name}",
                         {"forgotten": forgotten, "expected_marker": remembered, "found_marker": found})
        log.warning("backup target %s does not carry this station's mark (%s found, %s expected): %d copies the "
                    "catalog had marked there are copied again", t.name, found, remembered, forgotten)
    if not found:
        found = uuid.uuid4().hex
        t.write_marker(found)
    catalog.set_meta(key, found)
    return forgotten


def _copy_objects(ctx: StationContext, catalog: Catalog, t: Target, tr: TargetRun, keep: dict[str, datetime | None],
                  secret: set[str], held: set[str]) -> None:
    from daemon.errors import StoreError

    todo = []
    for sha, size in _lacking(catalog, t.name):
        if sha in secret and t.offsite and not t.include_secret:
            tr.skipped_secret += 1
        else:
            todo.append((sha, size))

    def put(item: tuple[str, int]) -> Copy:
        sha, size = item
        with ctx.store.open_local(sha) as path:
            return t.put(sha, path, size, keep.get(sha), legal_hold=sha in held)

    secret_copied = 0
    try:
        for (sha, size), done in overlapped(todo, put):
            try:
                copy = done.result()
            except StoreError:
                tr.missing.append(sha)  # the store lost it: `evidock verify` says more; the target keeps waiting
                continue
            crashpoint("backup-after-put")
            mark(catalog, t.name, copy, keep.get(sha))
            tr.copied += 1
            tr.bytes += size
            secret_copied += sha in secret
    finally:
        if secret_copied:  # also when the target failed after some secret copies: they are there
            with catalog.transaction():
                audit.append(catalog, "backup.secret", f"backup:{t.name}",
                             {"objects": secret_copied, "offsite": t.offsite, "rule": "include_secret"})


def _extend_locks(catalog: Catalog, t: Target, keep: dict[str, datetime | None]) -> None:
    """A copy whose object the retention rules now keep longer (a case reopened, a later close)
    gets its lock extended at the target (never shortened; path targets: nothing to do) — and a
    copy written while the rules gave no date (filed to an open case, on hold) gets its first lock
    as soon as they give one."""
    if getattr(t, "kind", None) == "path":
        return
    rows = catalog.conn.execute("SELECT sha256, size, version_id, verified_at, retain_until FROM backup_copies"
                                " WHERE target = ?", (t.name,)).fetchall()
    for sha, size, version, verified, until in rows:
        new = keep.get(sha)
        if new is None or (until is not None and iso(new) <= until):  # as recorded: ISO-8601 UTC, one form
            continue  # kept for ever has no lock date: the copy keeps the one it has, renewed when a date is known
        t.extend_retention(Copy(sha, int(size), version, verified), new)
        with catalog.transaction() as conn:
            conn.execute("UPDATE backup_copies SET retain_until = ? WHERE sha256 = ? AND target = ?",
                         (iso(new), sha, t.name))


def _sync_holds(catalog: Catalog, t: Target, tr: TargetRun, held: set[str]) -> None:
    """Bring the S3 legal holds of the target's copies in line with evidock's: ON for each copy
    of held footage not yet marked so, OFF for each marked one whose hold was lifted (its
    retention then applies as for any copy). Only those rows are read — the held objects by key,
    the marked ones through their partial index — and only their versions are asked of the bucket.
    Each change is audited with the catalog's mark, after the target took it: a run killed in
    between sets it again next time, which changes nothing at the target."""
    if getattr(t, "kind", None) == "path":
        return
    on = catalog.conn.execute(
        "SELECT sha256, size, version_id, verified_at FROM backup_copies WHERE target = ? AND legal_hold = 0"
        " AND sha256 IN (SELECT value FROM json_each(?)) ORDER BY sha256", (t.name, json.dumps(sorted(held)))).fetchall()
    off = [r for r in catalog.conn.execute(
        "SELECT sha256, size, version_id, verified_at FROM backup_copies WHERE target = ? AND legal_hold = 1"
        " ORDER BY sha256", (t.name,)) if r[0] not in held]
    for rows, status in ((on, True), (off, False)):
        for sha, size, version, verified in rows:
            copy = Copy(sha, int(size), version, verified)
            if not t.set_legal_hold(copy, status):
                return  # no legal hold at this target (a bucket without Object Lock): nothing to mirror
            with catalog.transaction() as conn:
                conn.execute("UPDATE backup_copies SET legal_hold = ? WHERE sha256 = ? AND target = ?",
                             (int(status), sha, t.name))
                _audit_hold(catalog, t.name, copy, status)
            if status:
                tr.held += 1
            else:
                tr.released += 1


def _apply_deletions(catalog: Catalog, t: Target, tr: TargetRun) -> None:
    """Copies of objects retention deleted (and not brought back since) leave the target."""
    rows = catalog.conn.execute(
        "SELECT c.sha256, c.size, c.version_id, c.verified_at FROM backup_copies c WHERE c.target = ?"
        " AND EXISTS (SELECT 1 FROM retention_deleted d WHERE d.sha256 = c.sha256)"
        " AND NOT EXISTS (SELECT 1 FROM objects o WHERE o.sha256 = c.sha256)"
        " AND NOT EXISTS (SELECT 1 FROM footage f WHERE f.sha256 = c.sha256)", (t.name,)).fetchall()
    for sha, size, version, verified in rows:
        copy = Copy(sha, int(size), version, verified)
        if not t.delete(copy):
            continue  # still locked at the target (S3): a later run tries again
        with catalog.transaction() as conn:
            conn.execute("DELETE FROM backup_copies WHERE sha256 = ? AND target = ?", (sha, t.name))
            audit.append(catalog, "backup.delete", f"object:{sha}", {"target": t.name, "reason": "retention"})
        tr.deleted += 1


def take_snapshot(catalog: Catalog, t: Target, station: str, keep: int) -> str:
    """A consistent copy of the catalog (SQLite's online backup) to ``t``; older ones pruned (path).

    A key names its second: a run in the same second as the one before it (a run by hand right
    after the nightly one) waits for the next, so that each run leaves a snapshot of its own and
    none at a target is ever replaced."""
    existing = set(t.snapshots(station))
    taken = now_utc()
    key = snapshot_key(station, taken)
    while key in existing:  # at most a second
        time.sleep(1.0 - taken.microsecond / 1e6 + 0.01)
        taken = now_utc()
        key = snapshot_key(station, taken)
    with tempfile.TemporaryDirectory(prefix="evidock-snap-", dir=catalog.path.parent) as d:
        dest = os.path.join(d, "catalog.sqlite")
        out = sqlite3.connect(dest)
        try:
            catalog.conn.backup(out)
            rows, head = out.execute("SELECT COUNT(*), (SELECT hash FROM audit ORDER BY id DESC LIMIT 1) FROM audit").fetchone()
            footage = out.execute("SELECT COUNT(*) FROM footage").fetchone()[0]
            out.execute("PRAGMA journal_mode=DELETE")
        finally:
            out.close()
        meta = {"station": station, "taken_at": iso(taken), "audit_head": head or audit.GENESIS, "audit_rows": rows,
                "footage_rows": footage, "evidock_version": daemon.__version__}
        t.put_snapshot(key, Path(dest), meta)
    if getattr(t, "kind", None) == "path":
        for old in t.snapshots(station)[:-keep]:
            t.delete_snapshot(old)
    return key


def withheld(catalog: Catalog, entry: BackupTarget) -> set[str]:
    """Objects a target is not to get (Article 10: secret footage and an off-site target without
    ``include_secret``): kept off it on purpose, so never its lag."""
    return secret_objects(catalog) if entry.is_offsite and not entry.include_secret else set()


def lag(catalog: Catalog, target: str, now: datetime | None = None,
        skip: set[str] | frozenset[str] = frozenset()) -> tuple[str | None, float | None]:
    """The oldest object the target lacks (its stored_at) and its age in seconds; (None, None) when
    none. ``skip``: objects the target is not to get (``withheld``)."""
    rows = catalog.conn.execute(
        "SELECT o.sha256, o.stored_at FROM objects o WHERE NOT EXISTS"
        " (SELECT 1 FROM backup_copies c WHERE c.sha256 = o.sha256 AND c.target = ?) ORDER BY o.stored_at", (target,))
    for sha, stored in rows:  # the withheld are few (secret footage): the first other row ends the walk
        if sha not in skip and stored:
            return stored, ((now or now_utc()) - from_iso(stored)).total_seconds()
    return None, None


def check_lag(ctx: StationContext, catalog: Catalog) -> None:
    """An alert for each target holding no copy of an object older than backup.max_lag_hours."""
    from daemon.schedule.runs import clear_alerts, raise_alert

    now = now_utc()
    limit = timedelta(hours=ctx.config.backup.max_lag_hours).total_seconds()
    for entry in ctx.config.backup.targets:
        oldest, age = lag(catalog, entry.name, now, withheld(catalog, entry))
        job = ALERT_JOB.format(target=entry.name)
        if age is not None and age > limit:
            raise_alert(catalog, job, "lag", Message(
                N_("backup target {target} lacks objects stored since {since} (more than backup.max_lag_hours = "
                   "{hours}); run `evidock backup run --target {target}`"), target=entry.name, since=oldest,
                hours=ctx.config.backup.max_lag_hours), now)
        else:
            with catalog.transaction():
                clear_alerts(catalog, job, "lag", now)

