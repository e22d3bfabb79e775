"""``evidock store status`` and the upload-queue line of ``evidock status``: objects waiting for
their upload to the evidence store bucket, their bytes, the oldest and its age, the open alerts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from daemon.catalog.db import Catalog
from daemon.clock import now_utc
from daemon.store.uploads import ALERT_JOB, oldest_waiting

if TYPE_CHECKING:
    from daemon.config import Config
    from daemon.evidence.store import ObjectStore


def store_status(config: Config, catalog: Catalog, store: ObjectStore | None = None) -> dict[str, Any]:
    """The status document (``--json`` prints it, minus the ``Message`` objects of the alerts).

    With the station's ``store`` (s3 backend) it says the local cache too: one stat per object."""
    from daemon.evidence.cache import CachedObjectStore
    from daemon.schedule.runs import open_job_alerts

    counts = {state: (0, 0) for state in ("waiting", "uploading", "stored")}
    for state, n, b in catalog.conn.execute(
            "SELECT state, COUNT(*), COALESCE(SUM(size), 0) FROM store_uploads GROUP BY state"):
        counts[state] = (n, b)
    unqueued = catalog.conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM objects o"
        " WHERE NOT EXISTS (SELECT 1 FROM store_uploads u WHERE u.sha256 = o.sha256)").fetchone()
    oldest, age = oldest_waiting(catalog, now_utc())
    s3 = config.store.s3
    waiting = counts["waiting"][0] + counts["uploading"][0] + (unqueued[0] if config.store.backend == "s3" else 0)
    waiting_b = counts["waiting"][1] + counts["uploading"][1] + (unqueued[1] if config.store.backend == "s3" else 0)
    return {"backend": config.store.backend, "endpoint": s3.endpoint, "bucket": s3.bucket,
            "waiting": waiting, "waiting_bytes": waiting_b, "uploading": counts["uploading"][0],
            "stored": counts["stored"][0], "stored_bytes": counts["stored"][1],
            "oldest_waiting": oldest, "oldest_age_s": age, "max_upload_lag_hours": config.store.max_upload_lag_hours,
            "lagging": age is not None and age > config.store.max_upload_lag_hours * 3600,
            "alerts": open_job_alerts(catalog, ALERT_JOB),
            "cache": ({**store.usage().to_json(), "cache_bytes": store.cache_bytes}
                      if isinstance(store, CachedObjectStore) else None)}
