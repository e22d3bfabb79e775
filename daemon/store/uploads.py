"""The upload queue of the S3 evidence store: each object from local staging into the bucket, once.

With ``store.backend = "s3"`` an offload completes into local staging exactly as with the local
backend (``objects/`` in the data dir: one read, hash while writing, fsync, cold re-read), and
the recorder's job is VERIFIED on that. This queue — the ``store_uploads`` table, one row per
object, ever — then puts each object into ``[store.s3]``'s bucket with its SHA-256 as the request
checksum, COMPLIANCE retention until the date the retention rules give, and its provenance as
object metadata, and checks the version written with ``head_object(ChecksumMode=ENABLED)``
(``daemon.backup.s3target``, the S3 client of the backup targets). Only then is the row
``stored``, with its version id — and only then may the recorder be wiped (``dock.check``).

States::

    waiting --claim--> uploading --put + head ok--> stored   (version id recorded)
                          '--failure--> waiting (not before now + back-off; never given up:
                                        the recorder keeps its copy meanwhile, the lag alert says so)

A claim is one UPDATE in a catalog transaction and carries its runner's process token, so no two
runners (the daemon's thread, ``evidock store upload``) put one object at once, and a row left
``uploading`` by a runner that died (kill -9, power cut) goes back to ``waiting``. Every attempt
first asks the bucket for the object's current version: bytes already there — put by a run that
died before it recorded them, or by another station sharing the bucket (objects are keyed by
their hash, so the same file docked at two stations is one object) — are recorded as they are,
never put a second time under a new version id.

Object metadata is ASCII on the wire: the values are percent-encoded UTF-8 (a recorder's path or
an officer's name may be Chinese). Crash point for tests: ``store-after-put`` (the bucket holds
the version, the catalog does not know it yet).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from daemon.catalog.db import Catalog
from daemon.clock import iso, now_utc
from daemon.backup.target import Copy
from daemon.crashpoints import crashpoint
from daemon.errors import EXIT_OK, EXIT_WARNING, EvidockError, StoreError
from daemon.evidence import audit
from daemon.i18n import N_, Message, dumps, message_of
from daemon.proc import process_token, token_alive

if TYPE_CHECKING:
    from daemon.backup.s3target import S3Target
    from daemon.store.bucket import StoreBucket
    from daemon.config import Config, RetentionConfig
    from daemon.context import StationContext

log = logging.getLogger(__name__)

ALERT_JOB = "store"  # job alerts (daemon.schedule.runs): kinds "bucket" (unusable) and "lag"
BACKOFF_S = (30, 120, 600, 1800, 3600)  # after the 1st, 2nd … failure; the last one repeats


def open_bucket(config: Config, station: str | None = None) -> StoreBucket:
    """The S3 client of ``[store.s3]`` (the backup targets' client; Object Lock required), as this
    station (``[station] id``) or the one named."""
    from daemon.store.bucket import StoreBucket

    s3 = config.store.s3
    entry = {"name": "store", "endpoint": s3.endpoint, "bucket": s3.bucket, "region": s3.region,
             "access_key_id": s3.access_key_id, "secret_file": s3.secret_file, "require_object_lock": True}
    return StoreBucket(entry, station or config.station.station_id())


# The newest object row each catalog had when this process last looked for objects without an
# upload row. The look is an anti-join over every object (millions, five years on): the daemon
# passes every few seconds, so it looks again only when an object was added since. An insert
# always takes the highest rowid (the table has no AUTOINCREMENT, so a deleted top rowid can be
# taken again), and a new row has a new stored_at: (rowid, sha256, stored_at) of the top row
# changes with every insert, and a new process looks once at its first pass.
_newest_seen: dict[Path, tuple[Any, ...] | None] = {}


def enqueue_missing(catalog: Catalog) -> int:
    """A ``waiting`` row for every stored object that has none (new offloads, objects stored
    before the backend was s3); the number added. Waiting rows of objects gone from the catalog go."""
    now = iso(now_utc())
    with catalog.transaction() as conn:
        newest = conn.execute("SELECT rowid, sha256, stored_at FROM objects ORDER BY rowid DESC LIMIT 1").fetchone()
        # an object retention removed before its upload: nothing left to put, and no recorder waits for it
        conn.execute("DELETE FROM store_uploads WHERE state = 'waiting'"
                     " AND NOT EXISTS (SELECT 1 FROM objects o WHERE o.sha256 = store_uploads.sha256)")
        # docked again after retention removed it here and dropped this station's ref: the bucket may
        # have let it go since (store gc), so upload it (or find it present) again, then a new ref
        conn.execute("UPDATE store_uploads SET state='waiting', ref=NULL, version_id=NULL, stored_at=NULL, outcome=NULL,"
                     " queued_at=?, not_before=?, attempts=0"
                     " WHERE ref IN ('drop', 'dropped') AND EXISTS (SELECT 1 FROM objects o WHERE o.sha256 = store_uploads.sha256)",
                     (now, now))
        key, mark = catalog.path.resolve(), tuple(newest) if newest else None
        if key in _newest_seen and _newest_seen[key] == mark:
            return 0
        added = conn.execute(
            "INSERT INTO store_uploads (sha256, size, state, queued_at, not_before)"
            " SELECT o.sha256, o.size, 'waiting', o.stored_at, ? FROM objects o"
            " WHERE NOT EXISTS (SELECT 1 FROM store_uploads u WHERE u.sha256 = o.sha256)", (now,)).rowcount
    _newest_seen[key] = mark  # committed: the rows are there
    return added


def recover_stale(catalog: Catalog) -> int:
    """Rows left ``uploading`` by a runner that died go back to ``waiting``; how many."""
    rows = catalog.conn.execute("SELECT sha256, claimed_by FROM store_uploads WHERE state = 'uploading'").fetchall()
    dead = [(sha, token) for sha, token in rows if not token_alive(token or "")]
    if dead:
        with catalog.transaction() as conn:
            for sha, token in dead:
                conn.execute("UPDATE store_uploads SET state='waiting', claimed_by=NULL WHERE sha256=?"
                             " AND state='uploading' AND claimed_by IS ?", (sha, token))
        log.warning("store: %d upload(s) left unfinished by a runner that died are waiting again", len(dead))
    return len(dead)


def _claim(catalog: Catalog, token: str, due_only: bool, tried: set[str]) -> tuple[str, int, int] | None:
    now = iso(now_utc())
    with catalog.transaction() as conn:
        due, params = (" AND not_before <= ?", (now,)) if due_only else ("", ())
        # The first waiting row not tried in this pass: one row read, not the whole queue per claim.
        row = conn.execute(
            f"SELECT sha256, size, attempts FROM store_uploads WHERE state = 'waiting'{due}"
            " AND sha256 NOT IN (SELECT value FROM json_each(?)) ORDER BY queued_at, sha256 LIMIT 1",
            (*params, json.dumps(sorted(tried)))).fetchone()
        if row is None:
            return None
        sha, size, attempts = row
        conn.execute("UPDATE store_uploads SET state='uploading', attempts=attempts+1, claimed_by=?"
                     " WHERE sha256=? AND state='waiting'", (token, sha))
        return sha, size, attempts + 1


def provenance(catalog: Catalog, sha256: str) -> dict[str, str]:
    """The object's provenance as S3 metadata: its first footage row (percent-encoded UTF-8)."""
    row = catalog.conn.execute(
        "SELECT ingested_at, device_serial, officer_badge, source_path, recorded_at, recorded_at_corrected"
        " FROM footage WHERE sha256 = ? ORDER BY id LIMIT 1", (sha256,)).fetchone()
    if row is None:
        return {}
    names = ("first-read", "recorder", "officer", "path", "recorded-at", "recorded-at-corrected")
    return {k: quote(str(v), safe=":/+-._") for k, v in zip(names, row) if v is not None}


@dataclass
class UploadReport:
    """One run of the queue: what went up, what the bucket already held, what failed (and why)."""

    uploaded: int = 0
    present: int = 0
    bytes: int = 0
    failed: list[tuple[str, Message]] = field(default_factory=list)
    error: Message | None = None  # the bucket could not be used at all
    waiting: int = 0  # left in the queue at the end
    refs: dict[str, int] = field(default_factory=dict)  # daemon.store.refs: written, dropped, holds, released
    segments: int = 0  # audit segments written (daemon.store.segments)
    later: list[tuple[str, Message]] = field(default_factory=list)  # refs/segments the next pass retries
    snapshot: str | None = None  # the catalog snapshot this pass put into the bucket (daemon.store.snapshot)
    cache: dict[str, int] | None = None  # the eviction pass after it (daemon.evidence.cache), if one ran
    locks_extended: int = 0  # objects whose lock the daily look extended (daemon.store.locks)

    @property
    def exit_code(self) -> int:
        ok = self.error is None and not self.failed and not self.waiting and not self.later
        return EXIT_OK if ok else EXIT_WARNING

    def to_json(self) -> dict[str, Any]:
        return {"uploaded": self.uploaded, "present": self.present, "bytes": self.bytes, "waiting": self.waiting,
                "failed": [{"sha256": s, "error": str(m)} for s, m in self.failed],
                "error": str(self.error) if self.error is not None else None,
                "refs": self.refs, "audit_segments": self.segments, "cache": self.cache,
                "retry_later": [{"subject": s, "error": str(m)} for s, m in self.later], "snapshot": self.snapshot,
                "locks_extended": self.locks_extended}


def run_queue(ctx: StationContext, catalog: Catalog, *, due_only: bool = False, stop: threading.Event | None = None,
              bucket: StoreBucket | None = None) -> UploadReport:
    """Work the queue once through: every waiting object (``due_only``: only those whose back-off
    is over) is tried once. A bucket that cannot be used (down, wrong credentials, no Object Lock)
    ends the run at once with ``error`` and a ``store``/``bucket`` alert; nothing is counted stored."""
    from daemon.cases.retention import keep_until_by_object
    from daemon.schedule.runs import clear_alerts, raise_alert

    if ctx.config.store.backend != "s3":
        raise StoreError(N_("store.backend is \"local\": there is no bucket to upload to (set store.backend = \"s3\" "
                            "and [store.s3])"))
    rep = UploadReport()
    enqueue_missing(catalog)
    recover_stale(catalog)
    b = bucket or open_bucket(ctx.config)
    try:
        b.check()
    except EvidockError as e:
        rep.error = Message(N_("the evidence store bucket cannot be used: {reason}; offloads go on into local "
                               "staging and recorders are not wiped until their files are stored there"),
                            reason=message_of(e))
        raise_alert(catalog, ALERT_JOB, "bucket", rep.error, now_utc())
        check_lag(ctx, catalog)
        rep.waiting = _count_waiting(catalog)
        return rep
    with catalog.transaction():
        clear_alerts(catalog, ALERT_JOB, "bucket", now_utc())
    if not _count_waiting(catalog):  # the daemon's pass every few seconds: no retention walk for nothing
        _bucket_keys(catalog, b, rep, ctx.config.store.snapshot_hours, ctx.config.retention)
        rep.cache = evict_cache(ctx, changed=bool(rep.refs.get("written")))  # a ref that waited: evictable now
        check_lag(ctx, catalog)
        return rep
    keep = keep_until_by_object(catalog, ctx.config.retention)
    token, tried = process_token(), set[str]()
    while stop is None or not stop.is_set():
        claimed = _claim(catalog, token, due_only, tried)
        if claimed is None:
            break
        sha, size, attempts = claimed
        tried.add(sha)
        try:
            _upload(ctx, catalog, b, sha, size, keep.get(sha), token, rep)
        except EvidockError as e:
            _failed(catalog, sha, token, attempts, message_of(e))
            rep.failed.append((sha, message_of(e)))
        except BaseException:
            _failed(catalog, sha, token, attempts, Message(N_("the upload was interrupted")))
            raise
    _bucket_keys(catalog, b, rep, ctx.config.store.snapshot_hours, ctx.config.retention)
    rep.cache = evict_cache(ctx, changed=bool(rep.uploaded or rep.present or rep.refs.get("written")))
    check_lag(ctx, catalog)
    rep.waiting = _count_waiting(catalog)
    return rep


def evict_cache(ctx: StationContext, changed: bool) -> dict[str, int] | None:
    """The local cache's eviction pass (``store.cache_bytes``) after an upload pass, as JSON; None when
    none was due (``changed``: the pass stored an object or wrote a ref) or the store has no cache."""
    from daemon.evidence.cache import CachedObjectStore

    if not isinstance(ctx.store, CachedObjectStore):
        return None
    try:
        ev = ctx.store.evict_due(changed)
        return ev.to_json() if ev is not None else None
    except (EvidockError, OSError) as e:  # the copies stay; the next pass tries again
        log.warning("store: cache eviction failed: %s", e)
        return None


def _bucket_keys(catalog: Catalog, b: StoreBucket, rep: UploadReport, snapshot_hours: float,
                 rules: RetentionConfig) -> None:
    """This station's references, its objects' locks (once a day), audit segments and catalog
    snapshot in the bucket (daemon.store.refs, .locks, .segments, .snapshot)."""
    from daemon.store.locks import extend_locks, locks_due
    from daemon.store.refs import sync_refs
    from daemon.store.segments import push_audit
    from daemon.store.snapshot import put_snapshot, snapshot_due

    refs = sync_refs(catalog, b)
    rep.refs = {"written": refs.written, "dropped": refs.dropped, "holds": refs.holds, "released": refs.released}
    rep.later += refs.failed
    if locks_due(catalog):
        rep.locks_extended, failed = extend_locks(catalog, b, rules)
        rep.later += failed
    try:
        rep.segments = push_audit(catalog, b)
    except EvidockError as e:
        rep.later.append(("audit", message_of(e)))
        log.warning("store: the audit segment waits for the next pass: %s", e)
        return  # a snapshot only once its audit head is in the bucket
    if snapshot_due(catalog, snapshot_hours):
        try:
            rep.snapshot = put_snapshot(catalog, b)
        except EvidockError as e:
            rep.later.append(("snapshot", message_of(e)))
            log.warning("store: the catalog snapshot waits for the next pass: %s", e)


def _upload(ctx: StationContext, catalog: Catalog, b: S3Target, sha: str, size: int, until: datetime | None,
            token: str, rep: UploadReport) -> None:
    head = b.current(sha)
    present = head is not None and head.get("ContentLength") == size
    if present and "-" in (head.get("ChecksumSHA256") or ""):
        # a version put in parts carries a composite checksum: only its metadata names the SHA-256,
        # and metadata is what anyone writes; read it back before the recorder may be wiped for it
        present = b.verify(Copy(sha, size, head.get("VersionId"), iso(now_utc())))
    if present:
        version, outcome = head.get("VersionId"), "present"  # a dead run's put, or another station's
        if until is not None:  # it carries the lock of whoever put it: at least ours too
            b.extend_retention(Copy(sha, size, version, iso(now_utc())), until)
    else:
        with ctx.store.open_local(sha) as path:
            copy = b.put(sha, path, size, until, metadata=provenance(catalog, sha), take_up=False)  # looked above
        crashpoint("store-after-put")
        version, outcome = copy.version_id, "uploaded"
    now = iso(now_utc())
    with catalog.transaction() as conn:
        conn.execute("UPDATE store_uploads SET state='stored', version_id=?, stored_at=?, retain_until=?, outcome=?,"
                     " claimed_by=NULL, error=NULL, error_msg=NULL WHERE sha256=? AND claimed_by=?",
                     (version, now, iso(until) if until else None, outcome, sha, token))
        audit.append(catalog, "store.upload", sha, {"bucket": b.bucket, "version_id": version, "size": size,
                                                     "outcome": outcome})
    if outcome == "present":
        rep.present += 1
    else:
        rep.uploaded += 1
        rep.bytes += size
    log.info("store: %s %s in bucket %s (version %s)", sha, outcome, b.bucket, version)


def _failed(catalog: Catalog, sha: str, token: str, attempts: int, why: Message) -> None:
    wait = BACKOFF_S[min(attempts, len(BACKOFF_S)) - 1]
    with catalog.transaction() as conn:
        conn.execute("UPDATE store_uploads SET state='waiting', claimed_by=NULL, not_before=?, error=?, error_msg=?"
                     " WHERE sha256=? AND claimed_by=?",
                     (iso(now_utc() + timedelta(seconds=wait)), str(why), dumps(why), sha, token))
    log.warning("store: upload of %s failed (attempt %d, next in %d s): %s", sha, attempts, wait, why)


def _count_waiting(catalog: Catalog) -> int:
    return int(catalog.conn.execute("SELECT COUNT(*) FROM store_uploads WHERE state != 'stored'").fetchone()[0])


def oldest_waiting(catalog: Catalog, now: datetime | None = None) -> tuple[str | None, float | None]:
    """When the oldest object still waiting for its upload was stored locally, and its age in seconds."""
    from daemon.clock import from_iso

    row = catalog.conn.execute("SELECT MIN(queued_at) FROM store_uploads WHERE state != 'stored'").fetchone()
    if not row or not row[0]:
        return None, None
    return row[0], ((now or now_utc()) - from_iso(row[0])).total_seconds()


def check_lag(ctx: StationContext, catalog: Catalog) -> None:
    """A ``store``/``lag`` alert while an object waits longer than ``store.max_upload_lag_hours``."""
    from daemon.schedule.runs import clear_alerts, raise_alert

    now = now_utc()
    oldest, age = oldest_waiting(catalog, now)
    hours = ctx.config.store.max_upload_lag_hours
    if age is not None and age > hours * 3600:
        raise_alert(catalog, ALERT_JOB, "lag", Message(
            N_("objects stored locally since {since} are still not in the evidence store bucket (more than "
               "store.max_upload_lag_hours = {hours}); their recorders are not wiped — see `evidock store status`"),
            since=oldest, hours=hours), now)
    else:
        with catalog.transaction():
            clear_alerts(catalog, ALERT_JOB, "lag", now)
