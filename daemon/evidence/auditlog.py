"""The audit log as staff read it: its rows, filtered and paged, and the chain check whose report carries
the exit code it ends a command with. ``daemon.evidence.audit`` writes and verifies the chain;
this module only reads it, through that one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from typing import Any

from daemon.catalog.db import Catalog
from daemon.errors import EXIT_ERROR, EXIT_OK
from daemon.evidence import audit
from daemon.catalog import keyset


class ChainReport(audit.AuditReport):
    """``audit.verify``'s report, with its exit code: 0 intact, 2 broken."""

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.ok else EXIT_ERROR


def check_chain(catalog: Catalog) -> ChainReport:
    """Walk the whole chain read-only (``audit.verify``); the report names the first broken row."""
    rep = audit.verify(catalog)
    return ChainReport(**{f.name: getattr(rep, f.name) for f in fields(rep)})


def rows_sql(*, event: str | None = None, subject: str | None = None, since: str | None = None,
             until: str | None = None, limit: int | None = None, after: int | None = None,
             before: int | None = None, latest: bool = False) -> tuple[str, list[Any]]:
    """The query of ``rows`` and its arguments (``EXPLAIN QUERY PLAN`` of it is tested)."""
    where, args = [], []
    for cond, value in (("event = ?", event), ("subject = ?", subject), ("at >= ?", since), ("at < ?", until),
                        ("id > ?", after), ("id < ?", before)):
        if value is not None:
            where.append(cond)
            args.append(value)
    backwards = keyset.backwards(before, after, latest)
    # A time range alone: SQLite would rather walk the chain in id order than use the time index.
    hint = " INDEXED BY audit_at" if (since or until) and not (event or subject) else ""
    sql = (f"SELECT * FROM audit{hint}" + (" WHERE " + " AND ".join(where) if where else "")
           + (" ORDER BY id DESC" if backwards else " ORDER BY id") + (" LIMIT ?" if limit is not None else ""))
    return sql, args + ([limit] if limit is not None else [])


def rows(catalog: Catalog, **query: Any) -> Iterator[dict[str, Any]]:
    """Audit rows in id order, filtered (each filter an indexed query: migration listing-009) and
    keyset-paged on the row id like the footage listing (``daemon.cases.listing``); one at a time.
    ``query``: the keywords of ``rows_sql``."""
    sql, args = rows_sql(**query)
    got = catalog.db.query(sql, args)
    yield from keyset.in_order(got, keyset.backwards(query.get("before"), query.get("after"), query.get("latest")))
