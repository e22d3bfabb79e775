"""The COMPLIANCE locks of the objects this station holds in the evidence store bucket, kept up
with the retention rules (issue 17).

An object goes up locked until the date the rules gave it then (``store_uploads.retain_until``),
or without a lock when they gave none (filed to an open case, on legal hold). The rules move on:
footage is filed after its upload, a case closes, a case is reopened. Once a day (at an upload
pass, as the catalog snapshot) each stored object whose date is now later than the one recorded —
or that has a date for the first time — gets its version's retention extended (never shortened;
``S3Target.extend_retention`` reads the version's own first). Each station does this for what it
holds, so an object held by several gets the latest of their dates. An object found *present* at
upload (another station's put) is extended at once, as it carries that station's lock.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from daemon.backup.target import Copy
from daemon.catalog.db import Catalog
from daemon.clock import from_iso, iso, now_utc
from daemon.config import RetentionConfig
from daemon.errors import EvidockError
from daemon.evidence import audit
from daemon.i18n import message_of

log = logging.getLogger(__name__)

META_KEY = "store.locks_checked_at"
EVERY = timedelta(hours=24)


def locks_due(catalog: Catalog, now: datetime | None = None) -> bool:
    """Whether the last look at the locks is a day old (or there was none)."""
    last = catalog.get_meta(META_KEY)
    return last is None or (now or now_utc()) - from_iso(last) >= EVERY


def extend_locks(catalog: Catalog, bucket: Any, rules: RetentionConfig) -> tuple[int, list[tuple[str, Any]]]:
    """Extend the lock of every stored object the rules now keep longer than its recorded date;
    (how many were extended, [(sha256, why) of those that wait for the next day's look])."""
    from daemon.cases.retention import keep_until_by_object

    keep = keep_until_by_object(catalog, rules)
    rows = catalog.conn.execute("SELECT sha256, size, version_id, retain_until FROM store_uploads"
                                " WHERE state = 'stored' AND version_id IS NOT NULL").fetchall()
    extended, later = 0, []
    for sha, size, version, until in rows:
        new = keep.get(sha)
        if new is None or (until is not None and iso(new) <= until):  # as recorded: ISO-8601 UTC, one form
            continue  # no date (kept while a case is open, on hold) or already locked that long
        try:
            bucket.extend_retention(Copy(sha, int(size), version, iso(now_utc())), new)
        except EvidockError as e:
            later.append((sha, message_of(e)))
            continue
        with catalog.transaction() as conn:
            conn.execute("UPDATE store_uploads SET retain_until = ? WHERE sha256 = ?", (iso(new), sha))
            audit.append(catalog, "store.lock", sha, {"bucket": bucket.bucket, "version_id": version,
                                                      "retain_until": iso(new), "was": until})
        extended += 1
    if not later:
        catalog.set_meta(META_KEY, iso(now_utc()))
    else:
        log.warning("store: %d object lock(s) could not be extended; the next pass tries again", len(later))
    return extended, later
