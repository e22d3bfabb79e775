"""The 2-day report (footage not filed within ``filing.deadline_days``) and the filing columns of
the footage listing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from daemon.cases import segments
from daemon.cases.filing import _T_DUE
from daemon.cases.filing_rules import FilingRules
from daemon.catalog.db import Catalog
from daemon.catalog.kinds import kinds_sql
from daemon.clock import format_duration, from_iso, iso, now_utc
from daemon.errors import EXIT_OK, EXIT_WARNING

# -- the 2-day report and the footage listing -------------------------------------------------


@dataclass
class OverdueReport:
    as_of: str
    deadline_days: int
    officers: list[dict[str, Any]]

    @property
    def count(self) -> int:
        return sum(o["count"] for o in self.officers)

    @property
    def exit_code(self) -> int:
        return EXIT_WARNING if self.count else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {"as_of": self.as_of, "deadline_days": self.deadline_days, "count": self.count, "officers": self.officers}


def overdue(catalog: Catalog, deadline_days: int, as_of: datetime | None = None) -> OverdueReport:
    """Footage to file (``kinds.FILEABLE``) recorded more than ``deadline_days`` before ``as_of``
    and still filed to no case."""
    as_of = as_of or now_utc()
    deadline = timedelta(days=deadline_days)
    cutoff = iso(as_of - deadline)
    groups: dict[str | None, dict[str, Any]] = {}
    for fid, sha, officer, name, t, device, path, cands, recorded, ingested in catalog.conn.execute(
        f"SELECT f.id, f.sha256, f.officer_badge, o.name, {_T_DUE}, f.device_serial, f.source_path, a.candidates,"
        " f.recorded_at_corrected, f.ingested_at"
        " FROM footage f LEFT JOIN officers o ON o.badge = f.officer_badge"
        " LEFT JOIN footage_ambiguous a ON a.footage_id = f.id"
        f" WHERE NOT EXISTS (SELECT 1 FROM footage_cases fc WHERE fc.footage_id = f.id) AND {_T_DUE} < ?"
        f" AND {kinds_sql()}"  # issue 14: only what must be filed (video, audio, photo)
        f" ORDER BY f.officer_badge, {_T_DUE}, f.id", (cutoff,)
    ):
        due = from_iso(t) + deadline
        late = (as_of - due).total_seconds()
        g = groups.setdefault(officer, {"officer": officer, "name": name, "count": 0, "most_late_s": 0, "footage": []})
        g["count"] += 1
        g["most_late_s"] = max(g["most_late_s"], int(late))
        g["footage"].append({
            "id": fid, "sha256": sha, "device": device, "source_path": path, "recorded_at": recorded,
            "ingested_at": ingested, "due_at": iso(due),
            "late_by_s": int(late), "late_by": format_duration(late),
            "ambiguous": json.loads(cands) if cands else [],
        })
    officers = sorted(groups.values(), key=lambda g: (-g["most_late_s"], g["officer"] or ""))
    return OverdueReport(iso(as_of), deadline_days, officers)


def ambiguous_queue(catalog: Catalog, deadline_days: int, rules: FilingRules | None = None,
                    now: datetime | None = None) -> list[dict[str, Any]]:
    """The clerk's queue: each segment with ambiguous footage, its candidate cases and its deadline
    (the earliest of its chunks' recording time, or ingest when not trusted, + ``deadline_days``),
    soonest first."""
    conn = catalog.conn
    marked = {fid: json.loads(c) for fid, c in conn.execute("SELECT footage_id, candidates FROM footage_ambiguous")}
    if not marked:
        return []
    deadline, now = timedelta(days=deadline_days), now or now_utc()
    out = []
    for seg in segments.segments_of_ids(conn, marked, rules or FilingRules()):
        mine = [r for r in seg if r["id"] in marked]
        due = min(from_iso(r["recorded_at_corrected"] or r["ingested_at"]) for r in mine) + deadline
        last = seg[-1]
        end = (iso(from_iso(last["recorded_at_corrected"]) + timedelta(seconds=float(last["duration_s"])))
               if last["recorded_at_corrected"] and last.get("duration_s") else last["recorded_at_corrected"])
        out.append({
            "footage": [r["id"] for r in mine], "segment": [r["id"] for r in seg], "officer": seg[0]["officer_badge"],
            "device": seg[0]["device_serial"], "start": seg[0]["recorded_at_corrected"], "end": end,
            "candidates": sorted({c for r in mine for c in marked[r["id"]]}), "due_at": iso(due), "overdue": due < now,
            "files": [r["source_path"] for r in seg],
        })
    out.sort(key=lambda e: (e["due_at"], e["officer"] or "", e["footage"][0]))
    return out
