"""Footage rows as the listings show them: the catalog's query behind ``evidock footage list``.

Only the ``footage`` table's own columns; the media columns (``daemon.media.listing``) and the
filing columns and filters (``daemon.cases.reports``) are added above the catalog, by
``daemon.cases.listing.list_footage``, the one call the CLI makes.
"""

from __future__ import annotations

import base64
from typing import Any

from daemon.catalog.db import Catalog

_COLUMNS = ("id, sha256, size, device_serial AS device, officer_badge AS officer, source_path, source_path_raw, "
            "recorded_at, recorded_at_corrected, important, case_no, session_id, ingested_at")


def footage_rows(catalog: Catalog) -> list[dict[str, Any]]:
    """Every footage row in id order: hash, size, recorder, officer, source path, times, flags.

    ``important`` is a bool; a source path that is not UTF-8 also comes as
    ``source_path_bytes_b64`` (the exact name on the recorder, losslessly).
    """
    rows = []
    for r in catalog.db.query(f"SELECT {_COLUMNS} FROM footage ORDER BY id"):
        raw = r.pop("source_path_raw")
        r["important"] = bool(r["important"])
        try:
            bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            r["source_path_bytes_b64"] = base64.b64encode(raw).decode()
        rows.append(r)
    return rows
