"""The footage listing (``evidock footage list``, and the API's): one call returning rows.

Each catalog footage row (``daemon.catalog.footage``) with its media columns (duration_s, codec,
proxy, proxy_path) and its filing state (cases, filed_at, overdue, ambiguous), keeping only the
rows asked for. Rendering (tables, JSON) is the caller's.
"""

from __future__ import annotations

from typing import Any

from daemon.cases.reports import annotate_filing
from daemon.catalog.db import Catalog
from daemon.catalog.footage import footage_rows
from daemon.media.listing import footage_columns


def list_footage(catalog: Catalog, deadline_days: int, *, case_no: str | None = None,
                 unfiled: bool = False, kind: str | None = None) -> list[dict[str, Any]]:
    """Every footage row, or only those filed to ``case_no`` (an unknown case is an error naming
    it) or, with ``unfiled``, those filed to no case, or those of one ``kind`` (``daemon.catalog.kinds``).
    ``deadline_days`` decides ``overdue`` (art. 11).
    """
    rows = footage_rows(catalog, kind=kind)
    media = footage_columns(catalog)
    for r in rows:
        r.update(media[r["id"]])
    return annotate_filing(catalog, rows, deadline_days, case_no=case_no, unfiled=unfiled)
