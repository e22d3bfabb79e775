"""``evidock backup status``: per target, what is backed up of all, the lag, the last run and verify."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from daemon.backup.run import lag, withheld
from daemon.catalog.db import Catalog
from daemon.clock import now_utc
from daemon.i18n import Message

if TYPE_CHECKING:
    from daemon.config import Config


def _last(catalog: Catalog, target: str, kind: str) -> dict[str, Any] | None:
    rows = list(catalog.db.query("SELECT * FROM backup_runs WHERE target = ? AND kind = ? AND result != 'running'"
                                 " ORDER BY id DESC LIMIT 1", [target, kind]))
    if not rows:
        return None
    r = rows[0]
    r["counts"] = json.loads(r["counts"]) if r.get("counts") else {}
    stored = r.pop("error_msg", None)
    r["error_message"] = Message.from_json(json.loads(stored)) if stored else None
    return r


def backup_status(config: Config, catalog: Catalog) -> dict[str, Any]:
    """The status document (``--json`` prints it, minus the ``Message`` objects)."""
    from daemon.schedule.runs import open_job_alerts

    now = now_utc()
    total_n, total_b = catalog.conn.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM objects").fetchone()
    out = []
    for e in config.backup.targets:
        n, b = catalog.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(o.size), 0) FROM backup_copies c JOIN objects o ON o.sha256 = c.sha256"
            " WHERE c.target = ?", (e.name,)).fetchone()
        oldest, age = lag(catalog, e.name, now, withheld(catalog, e))
        alerts = open_job_alerts(catalog, f"backup:{e.name}")
        out.append({"target": e.name, "kind": e.kind, "offsite": e.is_offsite, "objects": n, "bytes": b,
                    "objects_total": total_n, "bytes_total": total_b, "oldest_not_backed_up": oldest,
                    "lag_s": age, "lagging": age is not None and age > config.backup.max_lag_hours * 3600,
                    "last_run": _last(catalog, e.name, "run"), "last_verify": _last(catalog, e.name, "verify"),
                    "alerts": alerts})
    return {"targets": out, "max_lag_hours": config.backup.max_lag_hours}


def open_backup_alerts(catalog: Catalog) -> list[dict[str, Any]]:
    """Open backup alerts (lag, damaged copies, failed runs): job alerts under ``backup:<target>``."""
    from daemon.schedule.runs import open_job_alerts

    return [a for a in open_job_alerts(catalog) if str(a["job"]).startswith("backup")]
