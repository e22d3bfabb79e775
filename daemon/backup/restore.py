"""``evidock restore``: rebuild a station's store and catalog from a backup target.

Into an empty data dir only (a restore never mixes with a living station): the target's newest
catalog snapshot becomes the catalog, every object the catalog names is fetched from the target,
hashed, and brought into the store the way an offload does (``put_staged``), and then the whole
store is verified against the catalog (``daemon.evidence.verify``: presence, size, mode, the
cross-check with the audit log — each object's bytes were hashed once, cold, as it came in) and
the audit chain checked (``daemon.evidence.auditlog``). Two objects are fetched at once (one
being written while the other is hashed, ``daemon.backup.overlap``). What could not be fetched,
or came back damaged, is reported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.backup.overlap import overlapped
from daemon.backup.target import Copy
from daemon.backup.targets import open_target, targets_of
from daemon.catalog.db import CATALOG_NAME, Catalog
from daemon.config import Config
from daemon.errors import BackupError, EvidockError
from daemon.evidence import audit
from daemon.evidence.transfer import hash_fd
from daemon.i18n import N_


@dataclass
class RestoreReport:
    target: str
    snapshot: str
    meta: dict[str, Any]
    objects: int = 0
    bytes: int = 0
    missing: list[dict[str, str]] = field(default_factory=list)  # {sha256, reason}
    verify: dict[str, Any] = field(default_factory=dict)
    audit_ok: bool = False

    @property
    def exit_code(self) -> int:
        bad = self.missing or self.verify.get("damaged") or self.verify.get("missing") or self.verify.get("mismatches")
        return 2 if bad or not self.audit_ok else 0

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "snapshot": self.snapshot, "meta": self.meta, "objects": self.objects,
                "bytes": self.bytes, "missing": self.missing, "verify": self.verify, "audit_ok": self.audit_ok,
                "exit_code": self.exit_code}


def _fetch(t: Any, store: Any, sha: str, size: int, version: str | None, verified: str) -> str | None:
    """Fetch one object into the store: None when it is in, verified, else why not.

    The fetched copy is made durable, read back cold and hashed once — that read is the object's
    verification, since the store's object is then this very inode (``put_staged`` links it)."""
    staged = store.staging_dir / f".restore-{sha}"
    try:
        t.fetch(Copy(sha, size, version, verified), staged)
        fd = os.open(staged, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
            got, got_size = hash_fd(fd)
        finally:
            os.close(fd)
        if got != sha or got_size != size:
            return f"fetched copy hashes to {got} ({got_size} bytes)"
        store.put_staged(staged, sha, size)
        return None
    except EvidockError as e:
        return str(e)
    except OSError as e:
        return f"{staged}: {e.strerror or e}"
    finally:
        staged.unlink(missing_ok=True)


def restore(config: Config, target: str, data_dir: Path, station: str | None = None) -> RestoreReport:
    """Restore from ``target`` into ``data_dir`` (empty or absent)."""
    from daemon.evidence.auditlog import check_chain
    from daemon.evidence.store import LocalObjectStore
    from daemon.evidence.verify import verify_store

    data_dir = Path(data_dir)
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(N_("restore: {path} is not an empty directory; restore only into an empty data dir"),
                          path=str(data_dir))
    entry = targets_of(config, target)[0]
    station = station or config.station.station_id()
    t = open_target(entry, station)
    t.check()
    keys = t.snapshots(station)
    if not keys:
        raise BackupError(N_("backup target {target} holds no catalog snapshot of station {station}; name the station "
                             "with --station"), target=entry.name, station=station)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    tmp = data_dir / f".{CATALOG_NAME}.restore"
    meta = t.fetch_snapshot(keys[-1], tmp)
    os.replace(tmp, data_dir / CATALOG_NAME)
    rep = RestoreReport(entry.name, keys[-1], meta)
    store = LocalObjectStore(data_dir)
    with Catalog(data_dir) as catalog:
        audit.write_anchor(catalog)
        versions = {r[0]: (r[1], r[2]) for r in catalog.conn.execute(
            "SELECT sha256, version_id, verified_at FROM backup_copies WHERE target = ?", (entry.name,))}
        objects = [(r[0], int(r[1])) for r in catalog.conn.execute("SELECT sha256, size FROM objects ORDER BY sha256")]
        hashed: set[str] = set()

        def fetch(item: tuple[str, int]) -> str | None:
            version, verified = versions.get(item[0], (None, ""))
            return _fetch(t, store, item[0], item[1], version, verified or "")

        for (sha, size), done in overlapped(objects, fetch):
            reason = done.result()
            if reason:
                if sha not in versions:  # e.g. secret footage, which stays off off-site targets
                    reason = f"never backed up to {entry.name} (restore it from a target that has it): {reason}"
                rep.missing.append({"sha256": sha, "reason": reason})
                continue
            hashed.add(sha)
            rep.objects += 1
            rep.bytes += size
        with catalog.transaction():
            audit.append(catalog, "backup.restore", f"backup:{entry.name}",
                         {"snapshot": keys[-1], "objects": rep.objects, "missing": len(rep.missing)})
        rep.verify = verify_store(catalog, store, restart=True, hashed=hashed).to_json()
        rep.audit_ok = check_chain(catalog).ok
    return rep
