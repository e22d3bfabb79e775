"""Catalog snapshots of the S3 evidence store: where ``evidock reindex --from-store`` starts.

At the end of an upload pass (``daemon.store.uploads.run_queue``), once this pass's audit
segments are in the bucket, the station puts a consistent copy of its catalog under the backup
issue's keys (``catalog/<station-id>/<YYYYMMDDTHHMMSSZ>.sqlite`` + ``.json``: audit head, row
count, version — ``daemon.backup.run.take_snapshot``, SQLite's online backup) when the last one
is older than ``store.snapshot_hours`` (0: never). Chosen over a scheduled job: the pass has just
written the segments, so the snapshot's audit head is a row of the chain in the bucket, and a
station whose daemon runs uploads keeps its snapshots without one more job to configure.

The time of the last snapshot is in the catalog's ``meta`` table; taking one is not audited
(it changes no evidence, and an entry would make every snapshot's head one row stale). A
snapshot that fails is tried again at the next pass; the segments hold the record meanwhile.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from daemon.catalog.db import Catalog
from daemon.clock import from_iso, iso, now_utc

if TYPE_CHECKING:
    from daemon.store.bucket import StoreBucket

META_KEY = "store.snapshot_at"


def snapshot_due(catalog: Catalog, hours: float, now: datetime | None = None) -> bool:
    """Whether the last snapshot put into the bucket is older than ``hours`` (0: never due)."""
    if hours <= 0:
        return False
    last = catalog.get_meta(META_KEY)
    return last is None or (now or now_utc()) - from_iso(last) >= timedelta(hours=hours)


def put_snapshot(catalog: Catalog, b: StoreBucket) -> str:
    """A snapshot of the catalog into the bucket (with COMPLIANCE retention); its key."""
    from daemon.backup.run import take_snapshot

    now = now_utc()
    key = take_snapshot(catalog, b, b.station_id, keep=0)  # keep: prunes path targets only
    catalog.set_meta(META_KEY, iso(now))
    return key
