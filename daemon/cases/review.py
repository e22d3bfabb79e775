"""The review ledger (评查台帐, regulation art. 16): sampled cases, their completeness, findings.

Art. 16 has the legal section cross-review case files periodically and keep a ledger of the
results. evidock draws the sample reproducibly — ``random.Random(seed)`` over the sorted case
numbers, and the seed goes into the ledger, so anyone can redraw it and see the sample was not
hand-picked — and computes for each sampled case what articles 11 and 14 ask of its recordings:

- how much footage is filed to it, and whether each piece was filed within
  ``filing.deadline_days`` of being recorded (with the longest delay, and how far past the
  deadline the latest-filed piece was);
- whether the case carries its labels: the party, and handling officers (with their names, if the
  station knows them);
- recording coverage per handler: how many recordings each handler has filed to the case, the
  first and last recording time, and which handlers have none (art. 14: gaps are visible);
- footage of its handlers recorded inside its window that is still filed to no case.

The figures are a snapshot taken when the sample is drawn: the ledger shows what the reviewers
saw, even if filing changes later. Findings are recorded against a case (and the latest sample
that holds it). Recording length per handler needs the media probe; until that exists coverage
counts recordings, not minutes.
"""

from __future__ import annotations

import csv
import io
import json
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from daemon.cases.records import need_case
from daemon.catalog.db import Catalog
from daemon.catalog.kinds import kinds_sql
from daemon.clock import from_iso, utcnow
from daemon.errors import ReviewError
from daemon.evidence import audit
from daemon.i18n import N_


def case_metrics(catalog: Catalog, case_no: str, deadline_days: int) -> dict[str, Any]:
    """What art. 11 and 14 ask of one case's recordings, as of now."""
    conn = catalog.conn
    case = need_case(conn, case_no)
    names = dict(conn.execute("SELECT badge, name FROM officers"))
    deadline = timedelta(days=deadline_days).total_seconds()
    rows = conn.execute(
        "SELECT f.officer_badge, COALESCE(f.recorded_at_corrected, f.recorded_at), f.size, fc.filed_at"
        " FROM footage_cases fc JOIN footage f ON f.id = fc.footage_id WHERE fc.case_no = ?"
        f" AND {kinds_sql()} ORDER BY 2", (case_no,)  # issue 14: recordings, not their tracks and logs
    ).fetchall()
    delays = [(from_iso(filed) - from_iso(t)).total_seconds() for _, t, _, filed in rows if t]
    coverage = []
    for badge in case["handlers"]:
        mine = [r for r in rows if r[0] == badge]
        coverage.append({
            "badge": badge, "name": names.get(badge), "footage": len(mine), "bytes": sum(r[2] or 0 for r in mine),
            "first_recorded": mine[0][1] if mine else None, "last_recorded": mine[-1][1] if mine else None,
        })
    others = sorted({r[0] for r in rows if r[0] not in case["handlers"]} - {None})
    for badge in others:  # filed by hand from an officer who is not a handler: shown, not hidden
        mine = [r for r in rows if r[0] == badge]
        coverage.append({
            "badge": badge, "name": names.get(badge), "footage": len(mine), "bytes": sum(r[2] or 0 for r in mine),
            "first_recorded": mine[0][1], "last_recorded": mine[-1][1], "not_a_handler": True,
        })
    unfiled = conn.execute(
        "SELECT COUNT(*) FROM footage f JOIN case_handlers h ON h.badge = f.officer_badge AND h.case_no = ?"
        " JOIN cases c ON c.case_no = h.case_no"
        " WHERE COALESCE(f.recorded_at_corrected, f.recorded_at) >= c.opened_at"
        " AND (c.closed_at IS NULL OR COALESCE(f.recorded_at_corrected, f.recorded_at) <= c.closed_at)"
        " AND NOT EXISTS (SELECT 1 FROM footage_cases fc WHERE fc.footage_id = f.id)"
        f" AND {kinds_sql()}", (case_no,)  # issue 14: only what must be filed
    ).fetchone()[0]
    return {
        "case_no": case_no,
        "party": case["party"],
        "status": case["status"],
        "opened_at": case["opened_at"],
        "closed_at": case["closed_at"],
        "sensitivity": case["sensitivity"],
        "footage_count": len(rows),
        # None, not True, when there is nothing to judge
        "filed_on_time": all(d <= deadline for d in delays) if delays else None,
        "late_count": sum(d > deadline for d in delays),
        "max_filing_delay_s": int(max(delays)) if delays else None,
        "max_late_by_s": int(max(max(d - deadline for d in delays), 0)) if delays else None,
        "party_labelled": bool(case["party"]),
        "handler_labelled": bool(case["handlers"]),
        "handlers_without_name": [b for b in case["handlers"] if not names.get(b)],
        "handlers_without_footage": [c["badge"] for c in coverage if not c["footage"] and not c.get("not_a_handler")],
        "coverage": coverage,
        "unfiled_in_window": unfiled,
    }


@dataclass
class Sample:
    id: int
    seed: int
    requested: int
    population: int
    entries: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"sample": self.id, "seed": self.seed, "requested": self.requested, "population": self.population,
                "cases": self.entries}


def draw(case_nos: Sequence[str], n: int, seed: int) -> list[str]:
    """The reproducible draw: the same seed over the same cases gives the same picks, in order."""
    return random.Random(seed).sample(sorted(case_nos), min(n, len(case_nos)))


def sample(catalog: Catalog, n: int, deadline_days: int, seed: int | None = None, actor: str | None = None) -> Sample:
    """Draw ``n`` cases (all of them if there are fewer), compute their metrics, keep them in the ledger."""
    actor = actor or audit.current_actor()
    if n < 1:
        raise ReviewError(N_("--cases must be at least 1"))
    seed = secrets.randbelow(2**31) if seed is None else seed
    with catalog.transaction() as conn:
        population = [r[0] for r in conn.execute("SELECT case_no FROM cases")]
        if not population:
            raise ReviewError(N_("there are no cases to review; open or import cases first (`evidock case import`)"))
        picked = draw(population, n, seed)
        cur = conn.execute(
            "INSERT INTO review_samples (sampled_at, sampled_by, seed, requested, population, deadline_days) VALUES (?,?,?,?,?,?)",
            (utcnow(), actor, seed, n, len(population), deadline_days),
        )
        sid = int(cur.lastrowid)
        entries = []
        for pos, case_no in enumerate(picked):
            m = case_metrics(catalog, case_no, deadline_days)
            conn.execute("INSERT INTO review_entries (sample_id, case_no, position, metrics) VALUES (?,?,?,?)",
                         (sid, case_no, pos, json.dumps(m, ensure_ascii=False)))
            entries.append(m)
        audit.append(catalog, "review.sample", f"review:{sid}",
                     {"seed": seed, "requested": n, "population": len(population), "cases": picked}, actor)
    return Sample(sid, seed, n, len(population), entries)


def record_finding(catalog: Catalog, case_no: str, finding: str, actor: str | None = None) -> dict[str, Any]:
    """Record a reviewer's finding on a case (against the latest sample that holds it, if any)."""
    actor = actor or audit.current_actor()
    text = (finding or "").strip()
    if not text:
        raise ReviewError(N_("a finding needs text (--finding TEXT)"))
    with catalog.transaction() as conn:
        need_case(conn, case_no)
        row = conn.execute("SELECT MAX(sample_id) FROM review_entries WHERE case_no = ?", (case_no,)).fetchone()
        sid = row[0] if row else None
        now = utcnow()
        cur = conn.execute(
            "INSERT INTO review_findings (case_no, sample_id, finding, recorded_at, recorded_by) VALUES (?,?,?,?,?)",
            (case_no, sid, text, now, actor),
        )
        audit.append(catalog, "review.finding", f"case:{case_no}", {"sample": sid, "finding": text}, actor)
    return {"id": int(cur.lastrowid), "case_no": case_no, "sample": sid, "finding": text, "recorded_at": now, "recorded_by": actor}


def ledger(catalog: Catalog) -> list[dict[str, Any]]:
    """The ledger: one entry per sampled case (with its findings), then findings on unsampled cases."""
    conn = catalog.conn
    findings: dict[tuple[str, int | None], list[dict[str, Any]]] = {}
    for fid, case_no, sid, text, at, by in conn.execute(
        "SELECT id, case_no, sample_id, finding, recorded_at, recorded_by FROM review_findings ORDER BY id"
    ):
        findings.setdefault((case_no, sid), []).append({"id": fid, "finding": text, "recorded_at": at, "recorded_by": by})
    out = []
    for sid, at, by, seed, case_no, metrics in conn.execute(
        "SELECT s.id, s.sampled_at, s.sampled_by, s.seed, e.case_no, e.metrics FROM review_entries e"
        " JOIN review_samples s ON s.id = e.sample_id ORDER BY s.id, e.position"
    ):
        out.append({"sample": sid, "sampled_at": at, "sampled_by": by, "seed": seed, **json.loads(metrics),
                    "findings": findings.pop((case_no, sid), [])})
    for (case_no, sid), fs in sorted(findings.items(), key=lambda kv: kv[1][0]["id"]):
        out.append({"sample": sid, "sampled_at": None, "sampled_by": None, "seed": None, "case_no": case_no,
                    "findings": fs})
    return out


# The CSV form of the ledger, for the office's spreadsheet: (column, how to get it from an entry).
CSV_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("sample", lambda e: e["sample"]),
    ("sampled_at", lambda e: e["sampled_at"]),
    ("seed", lambda e: e["seed"]),
    ("case_no", lambda e: e["case_no"]),
    ("party", lambda e: e.get("party")),
    ("status", lambda e: e.get("status")),
    ("footage_count", lambda e: e.get("footage_count")),
    ("filed_on_time", lambda e: e.get("filed_on_time")),
    ("max_late_by_s", lambda e: e.get("max_late_by_s")),
    ("party_labelled", lambda e: e.get("party_labelled")),
    ("handler_labelled", lambda e: e.get("handler_labelled")),
    ("handlers_without_footage", lambda e: ";".join(e.get("handlers_without_footage") or [])),
    ("coverage", lambda e: ";".join(f"{c['badge']}:{c['footage']}" for c in e.get("coverage") or [])),
    ("unfiled_in_window", lambda e: e.get("unfiled_in_window")),
    ("findings", lambda e: " | ".join(f"{f['recorded_at']} {f['recorded_by']}: {f['finding']}" for f in e["findings"])),
)


def ledger_csv(entries: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([name for name, _ in CSV_COLUMNS])
    for e in entries:
        w.writerow(["" if (v := get(e)) is None else str(v).lower() if isinstance(v, bool) else v for _, get in CSV_COLUMNS])
    return buf.getvalue()
