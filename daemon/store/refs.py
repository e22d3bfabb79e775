"""Many stations, one bucket: each station's references to the objects, and the bucket's gc.

Objects are keyed by their hash, so the same file docked at two stations is one object in the
bucket. Which stations still need it is said by small keys beside it, one per station:

- ``refs/<sha256>/<station-id>``: written once this station's upload queue has the object
  ``stored``; deleted (every version, audited ``store.unref``) when this station's retention
  removes its footage of it — never the object itself;
- ``holds/<sha256>/<station-id>``: written while footage of the object is on legal hold here,
  deleted when the hold is lifted. A key of its own rather than a flag in the ref: a hold is set
  and lifted by people, independently of the upload and of retention, and each of the two keys
  is then only ever put whole or deleted by one path (no read-modify-write of one object), and
  ``holds/`` lists every held object of every station in one listing. With the key, the object's
  version gets an S3 Object Legal Hold (the key only stops `store gc`; held footage has no
  retention date, so its lock runs out), lifted when the last station's hold key goes.

The catalog's ``store_uploads.ref`` / ``hold_ref`` say what the bucket has; ``sync_refs`` (each
pass of the upload queue) brings the bucket in line: a reference that could not be written or
deleted (bucket down) is done by the next pass. An object retention removed here and later
docked again goes back into the queue (the bucket may have let it go meanwhile).

``gc`` runs at one station only (``store.gc_station``): it deletes an object's versions only when
no station has a ref or a hold on it and its Object Lock has expired — S3 refuses a locked
version (AccessDenied): it is kept and tried again next time. Each deletion is audited
(``store.gc``). Just before deleting, it lists the object's references again, so a station that
uploaded it since the full listing keeps it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from daemon.backup.target import Copy
from daemon.catalog.db import Catalog
from daemon.clock import iso, now_utc
from daemon.errors import EXIT_OK, EXIT_WARNING, EvidockError, StoreError
from daemon.evidence import audit
from daemon.i18n import N_, Message, message_of

if TYPE_CHECKING:
    from daemon.store.bucket import StoreBucket
    from daemon.context import StationContext

log = logging.getLogger(__name__)


def ref_key(sha256: str, station_id: str) -> str:
    """This station's reference to an object."""
    return f"refs/{sha256}/{station_id}"


def hold_key(sha256: str, station_id: str) -> str:
    """This station's legal hold on an object."""
    return f"holds/{sha256}/{station_id}"


def _body(sha256: str, station_id: str, **more: Any) -> bytes:
    return json.dumps({"sha256": sha256, "station": station_id, "at": iso(now_utc()), **more},
                      sort_keys=True).encode()


def _held(catalog: Catalog) -> set[str]:
    return {r[0] for r in catalog.conn.execute(
        "SELECT DISTINCT f.sha256 FROM legal_holds h JOIN footage f ON f.id = h.footage_id")}


@dataclass
class RefsReport:
    """One pass of ``sync_refs``: references written and deleted, failures (retried next pass)."""

    written: int = 0
    dropped: int = 0
    holds: int = 0
    released: int = 0
    failed: list[tuple[str, Message]] = field(default_factory=list)


def sync_refs(catalog: Catalog, b: StoreBucket) -> RefsReport:
    """Bring this station's refs and holds in the bucket in line with the catalog."""
    rep = RefsReport()
    with catalog.transaction() as conn:
        # removed here before its ref was written: nothing to delete in the bucket
        conn.execute("UPDATE store_uploads SET ref='dropped' WHERE ref IS NULL AND state='stored'"
                     " AND NOT EXISTS (SELECT 1 FROM objects o WHERE o.sha256 = store_uploads.sha256)")
    todo = catalog.conn.execute(
        "SELECT sha256, version_id FROM store_uploads WHERE state='stored' AND ref IS NULL ORDER BY stored_at").fetchall()
    for sha, version in todo:
        if _step(rep, sha, lambda: _write(catalog, b, sha, version)):
            rep.written += 1
    for (sha,) in catalog.conn.execute("SELECT sha256 FROM store_uploads WHERE ref='drop'").fetchall():
        if _step(rep, sha, lambda: drop(catalog, b, sha)):
            rep.dropped += 1
    held = _held(catalog)  # legal holds are few: from them, not from every stored object
    for sha in sorted(held):
        row = catalog.conn.execute("SELECT hold_ref FROM store_uploads WHERE sha256=? AND state='stored'"
                                   " AND ref='written'", (sha,)).fetchone()
        if row is not None and not row[0] and _step(rep, sha, lambda: _hold(catalog, b, sha, on=True)):
            rep.holds += 1
    for (sha,) in catalog.conn.execute("SELECT sha256 FROM store_uploads WHERE hold_ref = 1").fetchall():
        if sha not in held and _step(rep, sha, lambda: _hold(catalog, b, sha, on=False)):
            rep.released += 1
    return rep


def _step(rep: RefsReport, sha: str, call: Any) -> bool:
    try:
        call()
        return True
    except EvidockError as e:
        rep.failed.append((sha, message_of(e)))
        log.warning("store: the bucket reference of %s could not be updated (next pass retries): %s", sha, e)
        return False


def _write(catalog: Catalog, b: StoreBucket, sha: str, version: str | None) -> None:
    key = ref_key(sha, b.station_id)
    b.put_small(key, _body(sha, b.station_id, version_id=version))
    with catalog.transaction() as conn:
        conn.execute("UPDATE store_uploads SET ref='written' WHERE sha256=? AND ref IS NULL", (sha,))
        audit.append(catalog, "store.ref", sha, {"bucket": b.bucket, "key": key, "version_id": version})


def drop(catalog: Catalog, b: StoreBucket, sha: str) -> None:
    """Delete this station's ref to an object (every version of the ref; never the object). Audited."""
    key = ref_key(sha, b.station_id)
    _delete(b, key)
    with catalog.transaction() as conn:
        conn.execute("UPDATE store_uploads SET ref='dropped' WHERE sha256=? AND ref='drop'", (sha,))
        audit.append(catalog, "store.unref", sha, {"bucket": b.bucket, "key": key})
    log.info("store: reference %s deleted (the object stays while other stations refer to it)", key)


def _delete(b: StoreBucket, key: str) -> None:
    if not b.delete_key(key):
        raise StoreError(N_("bucket {bucket} refused to delete {key}: a default retention rule of the bucket locks "
                            "it; remove the bucket's default retention (evidock locks each object itself) — the "
                            "next pass tries again"), bucket=b.bucket, key=key)


def _hold(catalog: Catalog, b: StoreBucket, sha: str, on: bool) -> None:
    """This station's hold key, and the S3 Object Legal Hold of the object's version with it: the
    key only stops `store gc`, and a lock runs out (footage on hold has no retention date), so
    without the legal hold anyone with the bucket's credentials could delete held evidence. It is
    lifted only when no station holds the object any more (one flag a version, for all)."""
    key = hold_key(sha, b.station_id)
    row = catalog.conn.execute("SELECT size, version_id FROM store_uploads WHERE sha256=?", (sha,)).fetchone()
    copy = Copy(sha, int(row[0]), row[1], iso(now_utc())) if row and row[1] else None
    if on:
        b.put_small(key, _body(sha, b.station_id, hold=True))
        if copy is not None:
            b.set_legal_hold(copy, True)
    else:
        if copy is not None and not [k for k in b.keys(f"holds/{sha}/") if k != key]:
            b.set_legal_hold(copy, False)  # before the key goes: a failure leaves both for the next pass
        _delete(b, key)
    with catalog.transaction() as conn:
        conn.execute("UPDATE store_uploads SET hold_ref=? WHERE sha256=?", (1 if on else 0, sha))
        audit.append(catalog, "store.hold" if on else "store.release", sha, {"bucket": b.bucket, "key": key})


def release_ref(ctx: StationContext, catalog: Catalog, sha: str) -> None:
    """Retention removed the object here: delete this station's ref now if the bucket answers
    (else the next pass of the upload queue does). Nothing with the local backend."""
    if ctx.config.store.backend != "s3":
        return
    with catalog.transaction() as conn:
        marked = conn.execute("UPDATE store_uploads SET ref='drop' WHERE sha256=? AND ref='written'", (sha,)).rowcount
    if not marked:
        return
    from daemon.store.uploads import open_bucket

    try:
        drop(catalog, open_bucket(ctx.config), sha)
    except EvidockError as e:
        log.warning("store: the reference of %s stays in the bucket until the next upload pass: %s", sha, e)


# -- gc -----------------------------------------------------------------------------------------

@dataclass
class GcReport:
    """One ``store gc``: objects deleted, kept (referenced, still locked), errors."""

    objects: int = 0
    deleted: list[str] = field(default_factory=list)
    versions: int = 0
    referenced: int = 0
    locked: list[str] = field(default_factory=list)
    errors: list[tuple[str, Message]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_OK if not self.errors else EXIT_WARNING

    def counts(self) -> dict[str, int]:
        return {"objects": self.objects, "gc_deleted": len(self.deleted), "referenced": self.referenced,
                "locked": len(self.locked), "failed": len(self.errors)}

    def to_json(self) -> dict[str, Any]:
        return {**self.counts(), "deleted": self.deleted, "versions": self.versions, "locked_objects": self.locked,
                "errors": [{"sha256": s, "error": str(m)} for s, m in self.errors]}


def is_gc_station(ctx: StationContext) -> bool:
    """This station is ``store.gc_station`` (and the store is a bucket)."""
    cfg = ctx.config.store
    return cfg.backend == "s3" and cfg.gc_station is not None and cfg.gc_station == ctx.config.station.station_id()


def gc(ctx: StationContext, catalog: Catalog, bucket: StoreBucket | None = None) -> GcReport:
    """Delete every object version in the bucket that no station refers to and whose lock has expired."""
    from daemon.store.uploads import open_bucket

    cfg = ctx.config.store
    if cfg.backend != "s3":
        raise StoreError(N_("store.backend is \"local\": there is no bucket to collect garbage in"))
    if not is_gc_station(ctx):
        raise StoreError(N_("store gc runs only at the station store.gc_station names ({gc}), not at {station}: "
                            "one station deletes, so that two never race"),
                         gc=cfg.gc_station or "-", station=ctx.config.station.station_id())
    b = bucket or open_bucket(ctx.config)
    b.check()
    rep = GcReport()
    wanted = {k.split("/")[1] for k in b.keys("refs/") + b.keys("holds/") if k.count("/") == 2}
    for key, vids in sorted(b.versions("objects/").items()):
        sha = key.rsplit("/", 1)[-1]
        rep.objects += 1
        if sha in wanted:
            rep.referenced += 1
            continue
        try:
            # a station may have stored it since the listing: ask again right before deleting
            if b.keys(f"refs/{sha}/") or b.keys(f"holds/{sha}/"):
                rep.referenced += 1
                continue
            gone = [v for v in vids if b.delete(Copy(sha, 0, v, ""))]
        except EvidockError as e:
            rep.errors.append((sha, message_of(e)))
            continue
        if gone:
            rep.versions += len(gone)
            with catalog.transaction():
                audit.append(catalog, "store.gc", sha, {"bucket": b.bucket, "key": key, "versions": gone,
                                                         "kept_locked": len(vids) - len(gone)})
        if len(gone) < len(vids):
            rep.locked.append(sha)  # S3 refused (AccessDenied): still under its Object Lock; next time
        else:
            rep.deleted.append(sha)
            log.info("store gc: %s deleted from bucket %s (no station refers to it)", key, b.bucket)
    return rep
