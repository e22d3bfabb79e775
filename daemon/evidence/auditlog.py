"""The audit log as staff read it: the newest rows, and the chain check whose report carries
the exit code it ends a command with. ``daemon.evidence.audit`` writes and verifies the chain;
this module only reads it, through that one.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from daemon.catalog.db import Catalog
from daemon.errors import EXIT_ERROR, EXIT_OK
from daemon.evidence import audit


class ChainReport(audit.AuditReport):
    """``audit.verify``'s report, with its exit code: 0 intact, 2 broken."""

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.ok else EXIT_ERROR


def check_chain(catalog: Catalog) -> ChainReport:
    """Walk the whole chain read-only (``audit.verify``); the report names the first broken row."""
    rep = audit.verify(catalog)
    return ChainReport(**{f.name: getattr(rep, f.name) for f in fields(rep)})


def newest(catalog: Catalog, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` audit rows, oldest of them first."""
    rows = list(catalog.db.query("SELECT * FROM audit ORDER BY id DESC LIMIT ?", [limit]))
    rows.reverse()
    return rows
