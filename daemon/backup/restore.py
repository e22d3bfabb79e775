"""``evidock restore``: rebuild a station's store and catalog from a backup target.

Into an empty data dir only (a restore never mixes with a living station): the target's newest
catalog snapshot becomes the catalog, every object the catalog names is fetched from the target,
hashed, and brought into the store the way an offload does (``put_staged``), and then the whole
store is verified against the catalog (``daemon.evidence.verify``) and the audit chain checked
(``daemon.evidence.auditlog``). What could not be fetched, or came back damaged, is reported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def _sha(path: Path) -> str:
    """SHA-256 of a fetched copy, made durable first (it becomes the store's object by a link)."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())
        return hash_fd(f.fileno(), drop_cache=False)[0]


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
        for sha, size in catalog.conn.execute("SELECT sha256, size FROM objects ORDER BY sha256").fetchall():
            version, verified = versions.get(sha, (None, ""))
            staged = store.staging_dir / f".restore-{sha}"
            try:
                t.fetch(Copy(sha, int(size), version, verified or ""), staged)
                got = _sha(staged)
                if got != sha:
                    rep.missing.append({"sha256": sha, "reason": f"fetched copy hashes to {got}"})
                    continue
                store.put_staged(staged, sha, int(size))
                rep.objects += 1
                rep.bytes += int(size)
            except EvidockError as e:
                rep.missing.append({"sha256": sha, "reason": str(e)})
            finally:
                staged.unlink(missing_ok=True)
        with catalog.transaction():
            audit.append(catalog, "backup.restore", f"backup:{entry.name}",
                         {"snapshot": keys[-1], "objects": rep.objects, "missing": len(rep.missing)})
        rep.verify = verify_store(catalog, store, restart=True).to_json()
        rep.audit_ok = check_chain(catalog).ok
    return rep
