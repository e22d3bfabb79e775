"""``evidock verify``: a read-only, resumable scrub of the stored objects (borg ``check`` style).

Every object the catalog knows is re-read from the disk (page cache dropped first) and its
SHA-256 and size compared with its name and catalog row. Damage and missing objects are
collected and reported once, never repaired here. With a time budget the run stops at the
budget and leaves a checkpoint (the last hash checked) in the catalog's ``meta`` table; the
next run continues after it, so a nightly job can scrub a large store in slices. A run that
reaches the end clears the checkpoint and also lists object files the catalog does not know
(left by a crash between the rename and the catalog commit; harmless, reported as a note).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from .catalog import Catalog
from .errors import EXIT_ERROR, EXIT_OK
from .store import LocalObjectStore
from .transfer import hash_fd

CHECKPOINT_KEY = "verify.position"


@dataclass
class VerifyReport:
    checked: int = 0
    damaged: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unreferenced: list[str] = field(default_factory=list)
    resumed_after: str | None = None
    complete: bool = False
    next_after: str | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_ERROR if self.damaged or self.missing else EXIT_OK

    def summary(self) -> str:
        tail = "" if self.complete else f" (stopped at the time limit; the next run continues after {self.next_after[:16]}…)"
        return f"checked {self.checked} objects, {len(self.damaged)} damaged, {len(self.missing)} missing{tail}"

    def to_json(self) -> dict[str, Any]:
        return {
            "checked": self.checked, "damaged": self.damaged, "missing": self.missing,
            "unreferenced": self.unreferenced, "complete": self.complete,
            "resumed_after": self.resumed_after, "next_after": self.next_after, "summary": self.summary(),
        }


def verify_store(catalog: Catalog, store: LocalObjectStore, max_duration: float | None = None,
                 restart: bool = False) -> VerifyReport:
    """Check objects in hash order, from the last checkpoint, within ``max_duration`` seconds."""
    rep = VerifyReport()
    after = None if restart else catalog.get_meta(CHECKPOINT_KEY)
    rep.resumed_after = after
    deadline = time.monotonic() + max_duration if max_duration else None
    rows = catalog.conn.execute(
        "SELECT sha256, size FROM objects WHERE sha256 > ? ORDER BY sha256", (after or "",)
    ).fetchall()
    last = after
    for sha, size in rows:
        if deadline is not None and time.monotonic() >= deadline and rep.checked:
            rep.next_after = last
            catalog.set_meta(CHECKPOINT_KEY, last)
            return rep
        rep.checked += 1
        last = sha
        try:
            fd = store.open_fd(sha)
        except FileNotFoundError:
            rep.missing.append(sha)
            continue
        except OSError as e:
            rep.damaged.append({"sha256": sha, "reason": f"cannot be opened ({e.strerror})"})
            continue
        try:
            got, got_size = hash_fd(fd)
        except OSError as e:
            rep.damaged.append({"sha256": sha, "reason": f"read error ({e.strerror})"})
            continue
        finally:
            os.close(fd)
        if got != sha:
            rep.damaged.append({"sha256": sha, "reason": f"content hashes to {got}"})
        elif got_size != size:
            rep.damaged.append({"sha256": sha, "reason": f"size {got_size}, catalog says {size}"})
    rep.complete = True
    catalog.set_meta(CHECKPOINT_KEY, None)
    known = {r[0] for r in catalog.conn.execute("SELECT sha256 FROM objects")}
    rep.unreferenced = [s for s in store.iter_objects() if s not in known]
    return rep
