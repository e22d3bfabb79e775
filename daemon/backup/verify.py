"""``evidock backup verify``: read copies back at their targets and hash them.

A slice takes the copies verified longest ago first (``backup_copies.verified_at``), so slices
that stop at ``--sample N`` or ``--max-duration S`` cover every copy over time, each resuming
where the last stopped (restic's ``check --read-data-subset`` in spirit). A copy that reads back
wrong is damage: an alert, an audit entry, and its row is dropped — it no longer counts as backed
up, and the next run copies the object again. A verify stopped by anything else (Ctrl-C, an
error that is not a target's) still ends its row as failed, with its alert, and the error goes on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from daemon.backup.run import end_row, start_row, unexpected
from daemon.backup.target import Copy
from daemon.backup.targets import open_target, targets_of
from daemon.catalog.db import Catalog
from daemon.clock import now_utc
from daemon.errors import EvidockError
from daemon.evidence import audit
from daemon.i18n import N_, Message, message_of

if TYPE_CHECKING:
    from daemon.context import StationContext

log = logging.getLogger(__name__)


def _stamp() -> str:
    # microseconds: slices within one second must still take the copies in turn (as text, a
    # seconds-only stamp of the same second sorts first, as it should)
    return now_utc().isoformat(timespec="microseconds")


@dataclass
class CopiesReport:
    checked: int = 0
    damaged: list[dict[str, str]] = field(default_factory=list)  # {target, sha256}
    failed: list[dict[str, str]] = field(default_factory=list)  # {target, error}
    complete: bool = True  # every copy of every target checked in this slice

    @property
    def exit_code(self) -> int:
        return 2 if self.damaged or self.failed else 0

    def to_json(self) -> dict[str, Any]:
        return {"checked": self.checked, "damaged": self.damaged, "failed": self.failed, "complete": self.complete,
                "exit_code": self.exit_code}


def verify_copies(ctx: StationContext, catalog: Catalog, target: str | None = None, sample: int | None = None,
                  max_duration: float | None = None) -> CopiesReport:
    """Re-read copies (oldest verified first): ``sample`` of them per target, or all (None), within
    ``max_duration`` seconds in total (at least one copy of each target, however short)."""
    rep = CopiesReport()
    deadline = time.monotonic() + max_duration if max_duration else None
    station = ctx.config.station.station_id()
    for entry in targets_of(ctx.config, target):
        rid = start_row(catalog, entry.name, "verify")
        checked, damaged, error = 0, 0, None
        rows = catalog.conn.execute("SELECT sha256, size, version_id, verified_at FROM backup_copies WHERE target = ?"
                                    " ORDER BY verified_at, sha256", (entry.name,)).fetchall()
        todo = rows if sample is None else rows[:sample]
        if len(todo) < len(rows):
            rep.complete = False
        try:
            t = open_target(entry, station)
            t.check()
            for i, (sha, size, version, verified) in enumerate(todo):
                # Past the deadline a slice still reads one copy of each target: a nightly verify
                # given too little time then still moves on, oldest verified first, and covers all.
                if deadline is not None and checked and time.monotonic() > deadline:
                    rep.complete = False
                    break
                copy = Copy(sha, int(size), version, verified)
                ok = t.verify(copy)
                checked += 1
                with catalog.transaction() as conn:
                    if ok:
                        conn.execute("UPDATE backup_copies SET verified_at = ? WHERE sha256 = ? AND target = ?",
                                     (_stamp(), sha, entry.name))
                    else:
                        conn.execute("DELETE FROM backup_copies WHERE sha256 = ? AND target = ?", (sha, entry.name))
                        audit.append(catalog, "backup.damaged", f"object:{sha}", {"target": entry.name})
                if not ok:
                    damaged += 1
                    rep.damaged.append({"target": entry.name, "sha256": sha})
        except EvidockError as e:
            error = message_of(e)
            rep.failed.append({"target": entry.name, "error": str(error)})
        except BaseException as e:
            # Not a target's error (an interrupt, SQLite's own, a bug): the verify's row still ends
            # as failed with its alert, and the error goes on (the CLI's exit code, the job's failure).
            error = unexpected(entry.name, e, "backup verify")
            log.exception("backup target %s: the verify failed on an unexpected error", entry.name)
            try:
                end_row(catalog, rid, entry.name, "verify", "failed",
                        {"checked": checked, "damaged": damaged, "complete": False}, error)
            except Exception:  # the catalog cannot take it either (a full disk): the first error is raised
                log.exception("backup target %s: could not record the end of verify %d", entry.name, rid)
            raise
        rep.checked += checked
        result = "failed" if error else "damaged" if damaged else "ok"
        if damaged and error is None:
            error = Message(N_("backup target {target}: {n} copies read back damaged; the next backup run copies them "
                               "again — check that disk"), target=entry.name, n=damaged)
        end_row(catalog, rid, entry.name, "verify", result,
                {"checked": checked, "damaged": damaged, "complete": rep.complete and error is None}, error)
    return rep
