"""Filing footage to cases (art. 11): automatic filing by officer and time window, its re-run
whenever cases change, and manual filing and unfiling with a reason — every change audited.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from daemon.cases.records import need_case
from daemon.catalog.db import Catalog
from daemon.catalog.kinds import kinds_sql
from daemon.clock import utcnow
from daemon.display import shown
from daemon.errors import FilingError, NotFound
from daemon.evidence import audit
from daemon.i18n import N_, Message, _

log = logging.getLogger(__name__)


# Tables of this module that hang off a footage row (retention removes them with the row).
FOOTAGE_TABLES = ("footage_cases", "filing_blocks", "footage_ambiguous")


# -- filing changes ---------------------------------------------------------------------------


@dataclass
class FilingChanges:
    """What one operation changed in the filing, for the report (each change is also audited)."""

    filed: list[dict[str, Any]] = field(default_factory=list)
    unfiled: list[dict[str, Any]] = field(default_factory=list)
    ambiguous: list[dict[str, Any]] = field(default_factory=list)
    unchanged: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"filed": self.filed, "unfiled": self.unfiled, "ambiguous": self.ambiguous, "unchanged": self.unchanged}

    def lines(self) -> list[str]:
        out = [_("filed footage {id} to case {case} ({how})").format(id=c["footage"], case=shown(c["case"]), how=c["how"])
               for c in self.filed]
        out += [_("unfiled footage {id} from case {case} ({how})").format(id=c["footage"], case=shown(c["case"]),
                                                                         how=c["how"]) for c in self.unfiled]
        out += [_("footage {id} matches several cases ({cases}): filed to none, file it by hand with "
                  "`evidock footage file`").format(id=c["footage"], cases=", ".join(map(shown, c["candidates"])))
                for c in self.ambiguous if c["candidates"]]
        return out


def _sel(ids: Iterable[int] | None, officers: Iterable[str] | None) -> tuple[str, str]:
    """SQL condition on footage ``f`` picking the given ids or officers (json_each: no variable limit)."""
    if ids is not None:
        return "f.id IN (SELECT value FROM json_each(?))", json.dumps(sorted(set(ids)))
    assert officers is not None
    return "f.officer_badge IN (SELECT value FROM json_each(?))", json.dumps(sorted(set(officers)))


# The recording time filing goes by: the corrected one only. It is NULL when the recorder's
# clock was not trusted at that dock (more than a year from the station's, see
# ``daemon.ingest.record.corrected_time``): such footage matches no case and waits for a person.
_T = "f.recorded_at_corrected"
# The time the 2-day deadline runs from: the recording time, else (not trusted) the ingest —
# footage whose recording time is unknown still becomes overdue, counted from when it arrived.
_T_DUE = "COALESCE(f.recorded_at_corrected, f.ingested_at)"


def _refile(catalog: Catalog, *, ids: Iterable[int] | None = None, officers: Iterable[str] | None = None,
            actor: str, trigger: str, changes: FilingChanges | None = None) -> FilingChanges:
    """Re-derive the auto links of the chosen footage from the cases (see the module docstring).

    Runs inside the caller's transaction; audits every change with ``trigger`` (what caused it).
    """
    conn = catalog.conn
    if not conn.in_transaction:
        raise RuntimeError("auto-filing must run inside the transaction of the change that caused it")
    changes = changes if changes is not None else FilingChanges()
    where, arg = _sel(ids, officers)
    footage = {r[0]: (r[1], r[2], r[3]) for r in conn.execute(
        f"SELECT f.id, f.sha256, f.officer_badge, {_T} FROM footage f WHERE {where}", (arg,))}
    if not footage:
        return changes
    # issue 14 (i14b): only fileable kinds are filed by officer and time; tracks and logs follow the
    # media they overlap (file_companions, below), system files belong to the device.
    fileable = {r[0] for r in conn.execute(f"SELECT f.id FROM footage f WHERE {where} AND {kinds_sql()}", (arg,))}
    matches: dict[int, list[str]] = defaultdict(list)
    for fid, case_no in conn.execute(
        f"SELECT f.id, c.case_no FROM footage f JOIN case_handlers h ON h.badge = f.officer_badge"
        f" JOIN cases c ON c.case_no = h.case_no WHERE {where}"
        f" AND c.opened_at <= {_T} AND (c.closed_at IS NULL OR {_T} <= c.closed_at)"
        " AND NOT EXISTS (SELECT 1 FROM filing_blocks b WHERE b.footage_id = f.id AND b.case_no = c.case_no)"
        " ORDER BY c.case_no", (arg,)
    ):
        matches[fid].append(case_no)
    auto: dict[int, set[str]] = defaultdict(set)
    manual: set[int] = set()
    for fid, case_no, how in conn.execute(
        f"SELECT fc.footage_id, fc.case_no, fc.how FROM footage_cases fc JOIN footage f ON f.id = fc.footage_id WHERE {where}",
        (arg,),
    ):
        if how == "manual":
            manual.add(fid)
        elif how == "auto":  # issue 14 (i14b): companion links are file_companions' own
            auto[fid].add(case_no)
    marked = {fid: json.loads(c) for fid, c in conn.execute(
        f"SELECT a.footage_id, a.candidates FROM footage_ambiguous a JOIN footage f ON f.id = a.footage_id WHERE {where}",
        (arg,))}
    now = utcnow()
    touched: set[int] = set()
    for fid, (sha, officer, t) in footage.items():
        cands = matches.get(fid, []) if fid in fileable else []  # issue 14 (i14b)
        want = set() if fid in manual or len(cands) != 1 else {cands[0]}
        for case_no in sorted(auto[fid] - want):
            reason = (f"auto: case {case_no} is no longer the only case of officer {officer} whose window holds "
                      f"the recording ({t}); now matching: {', '.join(cands) or 'none'}") if fid in fileable else (
                "auto: not footage to file by officer and time (a track or log goes with its recordings, "
                "a system file stays with the recorder)")  # issue 14 (i14b)
            conn.execute("DELETE FROM footage_cases WHERE footage_id = ? AND case_no = ?", (fid, case_no))
            _audit_filing(catalog, "footage.unfile", fid, sha, case_no, "auto", reason, actor, trigger)
            changes.unfiled.append({"footage": fid, "case": case_no, "how": "auto", "reason": reason})
            touched.add(fid)
        for case_no in sorted(want - auto[fid]):
            reason = f"auto: officer {officer} handles case {case_no} and the recording ({t}) is inside its window"
            conn.execute(
                "INSERT INTO footage_cases (footage_id, case_no, filed_at, filed_by, how, reason) VALUES (?,?,?,?,?,?)",
                (fid, case_no, now, actor, "auto", reason),
            )
            _audit_filing(catalog, "footage.file", fid, sha, case_no, "auto", reason, actor, trigger)
            changes.filed.append({"footage": fid, "case": case_no, "how": "auto", "reason": reason})
            touched.add(fid)
        ambiguous = cands if fid not in manual and len(cands) > 1 else []
        if ambiguous != marked.get(fid, []):
            if ambiguous:
                conn.execute("INSERT OR REPLACE INTO footage_ambiguous (footage_id, candidates, marked_at) VALUES (?,?,?)",
                             (fid, json.dumps(ambiguous, ensure_ascii=False), now))
            else:
                conn.execute("DELETE FROM footage_ambiguous WHERE footage_id = ?", (fid,))
            audit.append(catalog, "footage.ambiguous", f"footage:{fid}",
                         {"footage": fid, "sha256": sha, "candidates": ambiguous, "trigger": trigger}, actor)
            changes.ambiguous.append({"footage": fid, "candidates": ambiguous})
    _sync_case_no(conn, touched)
    file_companions(catalog, footage_ids=list(footage), actor=actor, trigger=trigger, changes=changes)  # issue 14 (i14b)
    return changes


def _audit_filing(catalog: Catalog, event: str, fid: int, sha: str, case_no: str, how: str, reason: str,
                  actor: str, trigger: str | None = None) -> None:
    details: dict[str, Any] = {"footage": fid, "sha256": sha, "case": case_no, "how": how, "reason": reason}
    if trigger:
        details["trigger"] = trigger
    audit.append(catalog, event, f"footage:{fid}", details, actor)


def _sync_case_no(conn: Any, ids: Iterable[int]) -> None:
    """Keep the compatibility column ``footage.case_no``: the case when there is exactly one."""
    ids = sorted(set(ids))
    if ids:
        conn.execute(
            "UPDATE footage SET case_no = (SELECT CASE WHEN COUNT(*) = 1 THEN MAX(case_no) END"
            " FROM footage_cases fc WHERE fc.footage_id = footage.id) WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(ids),),
        )


def file_new_footage(catalog: Catalog, sha256: str) -> None:
    """Auto-file a footage row just inserted by the offload, inside the offload's transaction.

    Filing must never cost evidence: if it fails, its part is rolled back to a savepoint, the
    footage stays unfiled (it shows in ``footage overdue`` and is filed again at the next case
    change or ``evidock case refile``) and the file itself is still stored.
    """
    conn = catalog.conn
    row = conn.execute("SELECT id FROM footage WHERE sha256 = ?", (sha256,)).fetchone()
    if row is None:
        return
    conn.execute("SAVEPOINT autofile")
    try:
        _refile(catalog, ids=[row[0]], actor=audit.current_actor(), trigger="ingest")
    except Exception as e:  # noqa: BLE001 — see the docstring: the store must not depend on filing
        conn.execute("ROLLBACK TO autofile")
        log.error("footage %s (%s) was stored but could not be auto-filed (%s); it stays unfiled — "
                  "run `evidock case refile` or file it with `evidock footage file`", row[0], sha256, e)
    finally:
        conn.execute("RELEASE autofile")


def refile_all(catalog: Catalog, actor: str | None = None) -> FilingChanges:
    """Run auto-filing over every footage row (e.g. after a restore); audited like any change."""
    actor = actor or audit.current_actor()
    with catalog.transaction():
        officers = [r[0] for r in catalog.conn.execute("SELECT DISTINCT officer_badge FROM footage WHERE officer_badge IS NOT NULL")]
        return _refile(catalog, officers=officers, actor=actor, trigger="refile")


def file_companions(catalog: Catalog, **kw: Any) -> None:
    """Tracks and logs follow the media they overlap (issue 14): ``daemon.cases.companions``."""
    from daemon.cases.companions import file_companions as run  # it builds on this module's helpers

    run(catalog, **kw)


# -- manual filing ----------------------------------------------------------------------------


def _need_reason(reason: str | None) -> str:
    r = (reason or "").strip()
    if not r:
        raise FilingError(N_("a filing change needs a reason (--reason TEXT): it goes into the audit log"))
    return r


def _need_footage(conn: Any, ids: Sequence[int]) -> dict[int, str]:
    have = dict(conn.execute("SELECT id, sha256 FROM footage WHERE id IN (SELECT value FROM json_each(?))",
                             (json.dumps(list(ids)),)))
    missing = [i for i in ids if i not in have]
    if missing:
        raise NotFound(N_("no footage with id {ids}; nothing was changed — see `evidock footage list`"),
                       ids=", ".join(map(str, missing)))
    return have


def file_footage(catalog: Catalog, footage_ids: Sequence[int], case_no: str, reason: str,
                 actor: str | None = None) -> FilingChanges:
    """File footage to a case by hand (audited with ``reason``); all of it or, on any error, none."""
    actor = actor or audit.current_actor()
    reason = _need_reason(reason)
    changes = FilingChanges()
    with catalog.transaction() as conn:
        need_case(conn, case_no)
        shas = _need_footage(conn, footage_ids)
        now = utcnow()
        for fid in dict.fromkeys(footage_ids):
            link = conn.execute("SELECT how, filed_at FROM footage_cases WHERE footage_id = ? AND case_no = ?",
                                (fid, case_no)).fetchone()
            if link is not None and link[0] == "manual":
                changes.unchanged.append({"footage": fid, "case": case_no, "how": "manual", "filed_at": link[1]})
                continue
            if link is not None:
                # A person confirms what the station filed: the label dates from then, the decision is now theirs.
                conn.execute("UPDATE footage_cases SET how='manual', filed_by=?, reason=? WHERE footage_id=? AND case_no=?",
                             (actor, reason, fid, case_no))
            else:
                conn.execute(
                    "INSERT INTO footage_cases (footage_id, case_no, filed_at, filed_by, how, reason) VALUES (?,?,?,?,?,?)",
                    (fid, case_no, now, actor, "manual", reason),
                )
            conn.execute("DELETE FROM filing_blocks WHERE footage_id = ? AND case_no = ?", (fid, case_no))
            was = conn.execute("SELECT candidates FROM footage_ambiguous WHERE footage_id = ?", (fid,)).fetchone()
            conn.execute("DELETE FROM footage_ambiguous WHERE footage_id = ?", (fid,))
            _audit_filing(catalog, "footage.file", fid, shas[fid], case_no, "manual", reason, actor,
                          "confirmed an auto link" if link is not None else
                          (f"resolves ambiguity between {', '.join(json.loads(was[0]))}" if was else None))
            changes.filed.append({"footage": fid, "case": case_no, "how": "manual", "reason": reason})
        _sync_case_no(conn, footage_ids)
        file_companions(catalog, footage_ids=footage_ids, actor=actor, trigger="filed by hand", changes=changes)  # issue 14
    return changes


def unfile_footage(catalog: Catalog, footage_id: int, case_no: str, reason: str, actor: str | None = None) -> FilingChanges:
    """Remove footage from a case by hand (audited); auto-filing will not put it back there."""
    actor = actor or audit.current_actor()
    reason = _need_reason(reason)
    changes = FilingChanges()
    with catalog.transaction() as conn:
        need_case(conn, case_no)
        sha = _need_footage(conn, [footage_id])[footage_id]
        link = conn.execute("SELECT how FROM footage_cases WHERE footage_id = ? AND case_no = ?",
                            (footage_id, case_no)).fetchone()
        if link is None:
            cases = [r[0] for r in conn.execute("SELECT case_no FROM footage_cases WHERE footage_id = ? ORDER BY case_no", (footage_id,))]
            filed_to: object = ", ".join(cases) or Message(N_("no case"))
            raise FilingError(N_("footage {id} is not filed to case {case_no!r} (it is filed to: {cases}); nothing was changed"),
                              id=footage_id, case_no=case_no, cases=filed_to)
        now = utcnow()
        conn.execute("DELETE FROM footage_cases WHERE footage_id = ? AND case_no = ?", (footage_id, case_no))
        conn.execute(
            "INSERT OR REPLACE INTO filing_blocks (footage_id, case_no, blocked_at, blocked_by, reason) VALUES (?,?,?,?,?)",
            (footage_id, case_no, now, actor, reason),
        )
        _audit_filing(catalog, "footage.unfile", footage_id, sha, case_no, "manual", reason, actor,
                      f"was filed {link[0]}")
        changes.unfiled.append({"footage": footage_id, "case": case_no, "how": "manual", "reason": reason})
        _sync_case_no(conn, [footage_id])
        _refile(catalog, ids=[footage_id], actor=actor, trigger=f"footage {footage_id} unfiled from {case_no}", changes=changes)
    return changes
