"""Filing footage to cases (art. 11): automatic filing by officer and time window, its re-run
whenever cases change, and manual filing and unfiling with a reason — every change audited.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from daemon.cases import segments
from daemon.cases.filing_rules import FilingRules, decide, fileable
from daemon.cases.records import need_case
from daemon.catalog.db import Catalog
from daemon.clock import from_iso, iso, utcnow
from daemon.display import shown
from daemon.errors import FilingError, NotFound
from daemon.evidence import audit
from daemon.i18n import N_, Message, _, pgettext

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
        out = [_("filed footage {id} to case {case} ({how})").format(id=c["footage"], case=shown(c["case"]),
                                                                     how=_how(c["how"])) for c in self.filed]
        out += [_("unfiled footage {id} from case {case} ({how})").format(id=c["footage"], case=shown(c["case"]),
                                                                         how=_how(c["how"])) for c in self.unfiled]
        out += [_("footage {id} matches several cases ({cases}): filed to none, file it by hand with "
                  "`evidock footage file`").format(id=c["footage"], cases=_(", ").join(map(shown, c["candidates"])))
                for c in self.ambiguous if c["candidates"]]
        return out


def _how(code: str) -> str:
    """How a change was made, in the reader's language (the English is the code itself)."""
    if code == "auto":
        return pgettext("filed how", "auto")
    if code == "manual":
        return pgettext("filed how", "manual")
    return shown(code)


# The recording time filing goes by is the corrected one only (``footage.recorded_at_corrected``).
# It is NULL when the recorder's clock was not trusted at that dock (more than a year from the
# station's, see ``daemon.ingest.record.corrected_time``): such footage matches no case and waits
# for a person.
# The time the 2-day deadline runs from: the recording time, else (not trusted) the ingest —
# footage whose recording time is unknown still becomes overdue, counted from when it arrived.
_T_DUE = "COALESCE(f.recorded_at_corrected, f.ingested_at)"


def _officer_facts(conn: Any, officers: Iterable[str]) -> tuple[dict[str, list[tuple[str, datetime, datetime | None]]],
                                                                 dict[str, list[tuple[str, str, datetime, datetime]]]]:
    """Per officer: the windows of the cases they handle and the activities that apply to them."""
    arg = json.dumps(sorted({o for o in officers if o}))
    windows: dict[str, list[tuple[str, datetime, datetime | None]]] = defaultdict(list)
    for badge, case_no, opened, closed in conn.execute(
        "SELECT h.badge, c.case_no, c.opened_at, c.closed_at FROM case_handlers h JOIN cases c ON c.case_no = h.case_no"
        " WHERE h.badge IN (SELECT value FROM json_each(?)) ORDER BY c.case_no", (arg,)
    ):
        windows[badge].append((case_no, from_iso(opened), from_iso(closed) if closed else None))
    acts: dict[str, list[tuple[str, str, datetime, datetime]]] = defaultdict(list)
    for badge, case_no, kind, start, end in conn.execute(
        "SELECT h.badge, a.case_no, a.kind, a.start_at, a.end_at FROM case_activities a"
        " JOIN case_handlers h ON h.case_no = a.case_no WHERE a.all_handlers = 1 AND h.badge IN (SELECT value FROM json_each(?1))"
        " UNION SELECT ah.badge, a.case_no, a.kind, a.start_at, a.end_at FROM case_activities a"
        " JOIN case_activity_handlers ah ON ah.activity_id = a.id WHERE a.all_handlers = 0"
        " AND ah.badge IN (SELECT value FROM json_each(?1)) ORDER BY 2, 4, 3", (arg,)
    ):
        acts[badge].append((case_no, kind, from_iso(start), from_iso(end)))
    return windows, acts


# A case's footage is looked for in its window widened by this much on each side: a recording that
# begins inside the window may run past its edge in later chunks, which are one segment with it.
SCOPE_MARGIN = timedelta(days=1)


def case_scope(conn: Any, case_nos: Iterable[str], windows: Iterable[tuple[str, str | None]] = ()
               ) -> list[tuple[str, str | None]]:
    """The times a change to these cases can refile: each case's window and its activities'
    (with ``windows`` given, e.g. a window before an edit), widened by ``SCOPE_MARGIN``."""
    arg = json.dumps(sorted(set(case_nos)))
    spans = list(windows)
    spans += [(o, c) for o, c in conn.execute(
        "SELECT opened_at, closed_at FROM cases WHERE case_no IN (SELECT value FROM json_each(?))", (arg,))]
    spans += [(a, b) for a, b in conn.execute(
        "SELECT start_at, end_at FROM case_activities WHERE case_no IN (SELECT value FROM json_each(?))", (arg,))]
    return [(iso(from_iso(a) - SCOPE_MARGIN), iso(from_iso(b) + SCOPE_MARGIN) if b else None) for a, b in spans]


def officer_scopes(conn: Any, changed: Iterable[tuple[str, Iterable[str], Iterable[tuple[str, str | None]]]]
                   ) -> dict[str, list[tuple[str, str | None]]]:
    """For a change to many cases at once (an import): per officer, the times it can refile — the
    ``case_scope`` of each changed case (``changed``: its number, the officers who handle or
    handled it, its window before the change, if any) for the officers concerned only."""
    out: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
    for case_no, officers, before in changed:
        spans = case_scope(conn, [case_no], before)
        for badge in set(officers):
            out[badge] += spans
    return dict(out)


def activity_scope(start: str, end: str) -> list[tuple[str, str | None]]:
    """The times a new activity can refile: its own, widened by ``SCOPE_MARGIN`` (no less than the
    largest ``filing.activity_margin_min``, a day)."""
    return [(iso(from_iso(start) - SCOPE_MARGIN), iso(from_iso(end) + SCOPE_MARGIN))]


def _merged(spans: Iterable[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    """Overlapping spans as one (an import's cases of one officer often overlap): fewer ranges to read."""
    out: list[tuple[str, str | None]] = []
    for a, b in sorted(spans, key=lambda s: from_iso(s[0])):
        if out and (out[-1][1] is None or from_iso(a) <= from_iso(out[-1][1])):
            last = out[-1][1]
            out[-1] = (out[-1][0], None if last is None or b is None else max(last, b, key=from_iso))
        else:
            out.append((a, b))
    return out


SPANS_A_QUERY = 100  # ranges OR-ed in one statement: SQLite's expression depth is 1000


def _scoped_rows(conn: Any, officers: Iterable[str], cases: Iterable[str],
                 within: list[tuple[str, str | None]] | dict[str, list[tuple[str, str | None]]],
                 ) -> list[dict[str, Any]]:
    """Footage of ``officers`` recorded inside ``within`` (the same times for all, or per officer:
    ``officer_scopes``; indexed: officer, corrected time), and every row now filed to, or
    ambiguous between, ``cases`` wherever it lies."""
    ids: set[int] = set()
    for badge in sorted(set(officers)):
        spans = _merged(within.get(badge, []) if isinstance(within, dict) else within)
        for i in range(0, len(spans), SPANS_A_QUERY):
            conds, args = [], []
            for a, b in spans[i:i + SPANS_A_QUERY]:  # each span a range of the index (officer_badge, recorded_at_corrected)
                conds.append("(f.officer_badge = ? AND f.recorded_at_corrected >= ?"
                             + (" AND f.recorded_at_corrected <= ?)" if b else ")"))
                args += [badge, a] + ([b] if b else [])
            ids |= {r[0] for r in conn.execute(f"SELECT f.id FROM footage f WHERE {' OR '.join(conds)}", args)}
    arg = json.dumps(sorted(set(cases)))
    ids |= {r[0] for r in conn.execute(
        "SELECT footage_id FROM footage_cases WHERE case_no IN (SELECT value FROM json_each(?1))"
        " UNION SELECT a.footage_id FROM footage_ambiguous a, json_each(a.candidates) j"
        " WHERE j.value IN (SELECT value FROM json_each(?1))", (arg,))}
    return segments.rows(conn, "f.id IN (SELECT value FROM json_each(?))", (json.dumps(sorted(ids)),))


def _refile(catalog: Catalog, *, ids: Iterable[int] | None = None, officers: Iterable[str] | None = None,
            actor: str, trigger: str, changes: FilingChanges | None = None,
            rules: FilingRules | None = None, cases: Iterable[str] | None = None,
            within: list[tuple[str, str | None]] | dict[str, list[tuple[str, str | None]]] | None = None,
            ) -> FilingChanges:
    """Re-derive the auto links of the chosen footage (and the rest of their segments) from the
    cases and their activities, in the order of ``daemon.cases.filing_rules``.

    Runs inside the caller's transaction; audits every change with ``trigger`` (what caused it).
    Footage that is not ``fileable`` is left as it is; what a person filed or unfiled stays.

    With ``cases`` and ``within`` (``case_scope``), only the officers' footage inside those times
    and what is filed to or ambiguous between those cases: a change to one case does not walk
    years of its officers' footage. ``within`` may name the times per officer (``officer_scopes``:
    an import changes many cases, each with its own officers).
    """
    conn = catalog.conn
    if not conn.in_transaction:
        raise RuntimeError("auto-filing must run inside the transaction of the change that caused it")
    changes = changes if changes is not None else FilingChanges()
    rules = rules or FilingRules()
    if ids is not None:
        segs = segments.segments_of_ids(conn, ids, rules)
    elif within is not None:
        assert officers is not None
        segs = segments.completed(conn, segments.group(_scoped_rows(conn, officers, cases or (), within), rules),
                                  rules)
    else:
        assert officers is not None
        segs = segments.group(segments.rows(conn, "f.officer_badge IN (SELECT value FROM json_each(?))",
                                            (json.dumps(sorted(set(officers))),)), rules)
    every = [r for seg in segs for r in seg]
    _unfile_unfileable(catalog, [r for r in every if not fileable(r)], actor, trigger, changes)
    segs = [[r for r in seg if fileable(r)] for seg in segs]
    segs = [seg for seg in segs if seg]
    if not segs:
        file_companions(catalog, footage_ids=[r["id"] for r in every], actor=actor, trigger=trigger, changes=changes)
        return changes
    arg = json.dumps(sorted(r["id"] for seg in segs for r in seg))
    windows, acts = _officer_facts(conn, {r["officer_badge"] for seg in segs for r in seg})
    blocked: dict[int, set[str]] = defaultdict(set)
    for fid, case_no in conn.execute("SELECT footage_id, case_no FROM filing_blocks WHERE footage_id IN"
                                     " (SELECT value FROM json_each(?))", (arg,)):
        blocked[fid].add(case_no)
    auto: dict[int, set[str]] = defaultdict(set)
    manual: set[int] = set()
    for fid, case_no, how in conn.execute(
        "SELECT footage_id, case_no, how FROM footage_cases WHERE footage_id IN (SELECT value FROM json_each(?))", (arg,)
    ):
        if how == "manual":
            manual.add(fid)
        elif how == "auto":  # companion links are file_companions' own
            auto[fid].add(case_no)
    marked = {fid: json.loads(c) for fid, c in conn.execute(
        "SELECT footage_id, candidates FROM footage_ambiguous WHERE footage_id IN (SELECT value FROM json_each(?))", (arg,))}
    margin = timedelta(seconds=rules.activity_margin_s)
    now = utcnow()
    touched: set[int] = set()
    for seg in segs:
        officer = seg[0]["officer_badge"]
        times = [from_iso(r["recorded_at_corrected"]) for r in seg if r["recorded_at_corrected"]]
        hit_acts = [a for a in acts.get(officer, []) if any(a[2] - margin <= t <= a[3] + margin for t in times)]
        hit_cases = [c for c, opened, closed in windows.get(officer, [])
                     if any(opened <= t and (closed is None or t <= closed) for t in times)]
        of_seg = f" (with its segment: footage {', '.join(str(r['id']) for r in seg)})" if len(seg) > 1 else ""
        for row in seg:
            fid, sha, t = row["id"], row["sha256"], row["recorded_at_corrected"]
            d = decide([a[0] for a in hit_acts], hit_cases, blocked[fid]) if times and officer else decide([], [])
            want = set() if fid in manual or d.case is None else {d.case}
            for case_no in sorted(auto[fid] - want):
                reason = (f"auto: case {case_no} is no longer the only case of officer {officer} whose activities or window "
                          f"hold the recording ({t}){of_seg}; now matching: {', '.join(d.candidates or want) or 'none'}")
                conn.execute("DELETE FROM footage_cases WHERE footage_id = ? AND case_no = ?", (fid, case_no))
                _audit_filing(catalog, "footage.unfile", fid, sha, case_no, "auto", reason, actor, trigger)
                changes.unfiled.append({"footage": fid, "case": case_no, "how": "auto", "reason": reason})
                touched.add(fid)
            for case_no in sorted(want - auto[fid]):
                if d.rule == "activity":
                    a = next(a for a in hit_acts if a[0] == case_no)
                    reason = (f"auto: the recording ({t}){of_seg} of officer {officer} is inside activity {a[1]} "
                              f"({iso(a[2])} to {iso(a[3])}, ± {rules.activity_margin_s / 60:g} min) of case {case_no}, "
                              "the only case with an activity then")
                else:
                    reason = (f"auto: officer {officer} handles case {case_no} and the recording ({t}){of_seg} is inside "
                              "its window, the only case of the officer open then")
                conn.execute(
                    "INSERT INTO footage_cases (footage_id, case_no, filed_at, filed_by, how, reason) VALUES (?,?,?,?,?,?)",
                    (fid, case_no, now, actor, "auto", reason),
                )
                _audit_filing(catalog, "footage.file", fid, sha, case_no, "auto", reason, actor, trigger, now)
                changes.filed.append({"footage": fid, "case": case_no, "how": "auto", "reason": reason})
                touched.add(fid)
            ambiguous = d.candidates if fid not in manual else []
            if ambiguous != marked.get(fid, []):
                if ambiguous:
                    conn.execute("INSERT OR REPLACE INTO footage_ambiguous (footage_id, candidates, marked_at) VALUES (?,?,?)",
                                 (fid, json.dumps(ambiguous, ensure_ascii=False), now))
                else:
                    conn.execute("DELETE FROM footage_ambiguous WHERE footage_id = ?", (fid,))
                audit.append(catalog, "footage.ambiguous", f"footage:{fid}",
                             {"footage": fid, "sha256": sha, "candidates": ambiguous, "rule": d.rule,
                              "segment": [r["id"] for r in seg], "trigger": trigger}, actor)
                changes.ambiguous.append({"footage": fid, "candidates": ambiguous})
    _sync_case_no(conn, touched)
    file_companions(catalog, footage_ids=[r["id"] for r in every], actor=actor, trigger=trigger, changes=changes)
    return changes


def _unfile_unfileable(catalog: Catalog, rows: list[dict[str, Any]], actor: str, trigger: str,
                       changes: FilingChanges) -> None:
    """Auto links of footage that is not filed by officer and time (a track, a log, a system file:
    issue 14's kinds) are removed, audited; a person's links stay."""
    if not rows:
        return
    conn, touched = catalog.conn, set()
    reason = ("auto: not footage to file by officer and time (a track or log goes with its recordings, "
              "a system file stays with the recorder)")
    shas = {r["id"]: r["sha256"] for r in rows}
    for fid, case_no in conn.execute(
            "SELECT footage_id, case_no FROM footage_cases WHERE how = 'auto' AND footage_id IN"
            " (SELECT value FROM json_each(?)) ORDER BY footage_id, case_no", (json.dumps(sorted(shas)),)).fetchall():
        conn.execute("DELETE FROM footage_cases WHERE footage_id = ? AND case_no = ?", (fid, case_no))
        _audit_filing(catalog, "footage.unfile", fid, shas[fid], case_no, "auto", reason, actor, trigger)
        changes.unfiled.append({"footage": fid, "case": case_no, "how": "auto", "reason": reason})
        touched.add(fid)
    conn.execute("DELETE FROM footage_ambiguous WHERE footage_id IN (SELECT value FROM json_each(?))",
                 (json.dumps(sorted(shas)),))
    _sync_case_no(conn, touched)


def _audit_filing(catalog: Catalog, event: str, fid: int, sha: str, case_no: str, how: str, reason: str,
                  actor: str, trigger: str | None = None, filed_at: str | None = None) -> None:
    """``filed_at``: a ``footage.file``'s link time, so a catalog rebuilt from the log has it
    (daemon.store.replay)."""
    details: dict[str, Any] = {"footage": fid, "sha256": sha, "case": case_no, "how": how, "reason": reason}
    if trigger:
        details["trigger"] = trigger
    if filed_at is not None:
        details["filed_at"] = filed_at
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


def file_new_footage(catalog: Catalog, sha256: str, rules: FilingRules | None = None) -> None:
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
        _refile(catalog, ids=[row[0]], actor=audit.current_actor(), trigger="ingest", rules=rules)
    except Exception as e:  # noqa: BLE001 — see the docstring: the store must not depend on filing
        conn.execute("ROLLBACK TO autofile")
        log.error("footage %s (%s) was stored but could not be auto-filed (%s); it stays unfiled — "
                  "run `evidock case refile` or file it with `evidock footage file`", row[0], sha256, e)
    finally:
        conn.execute("RELEASE autofile")


def refile_probed(catalog: Catalog, footage_id: int, rules: FilingRules | None = None) -> None:
    """After a probe gave a chunk its duration: file again its segment and its neighbours' (the
    duration may join or split them). Like ``file_new_footage``, a failure here costs nothing
    stored: it is logged, and the next case change or ``evidock case refile`` files them."""
    try:
        with catalog.transaction() as conn:
            ids = {footage_id}
            for row in segments.rows(conn, "f.id = ?", (footage_id,)):
                ids |= {n["id"] for fwd in (False, True) if (n := segments.next_chunk(conn, row, fwd)) is not None}
            _refile(catalog, ids=ids, actor=audit.current_actor(), trigger=f"footage {footage_id} probed", rules=rules)
    except Exception as e:  # noqa: BLE001 — see the docstring
        log.error("footage %s was probed but could not be filed again (%s); run `evidock case refile`", footage_id, e)


def refile_all(catalog: Catalog, actor: str | None = None, rules: FilingRules | None = None) -> FilingChanges:
    """Run auto-filing over every footage row (e.g. after a restore); audited like any change."""
    actor = actor or audit.current_actor()
    with catalog.transaction():
        officers = [r[0] for r in catalog.conn.execute("SELECT DISTINCT officer_badge FROM footage WHERE officer_badge IS NOT NULL")]
        return _refile(catalog, officers=officers, actor=actor, trigger="refile", rules=rules)


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
                 actor: str | None = None, *, segment: bool = False, rules: FilingRules | None = None) -> FilingChanges:
    """File footage to a case by hand (audited with ``reason``); all of it or, on any error, none.

    With ``segment``, each footage's whole segment (the other chunks of its recording, see
    ``daemon.cases.segments``) is filed with it.
    """
    actor = actor or audit.current_actor()
    reason = _need_reason(reason)
    changes = FilingChanges()
    with catalog.transaction() as conn:
        need_case(conn, case_no)
        shas = _need_footage(conn, footage_ids)
        via: dict[int, int] = {}
        if segment:
            for seg in segments.segments_of_ids(conn, footage_ids, rules or FilingRules()):
                asked = next((r["id"] for r in seg if r["id"] in shas), seg[0]["id"])
                for r in seg:
                    shas.setdefault(r["id"], r["sha256"])
                    if r["id"] not in footage_ids:
                        via[r["id"]] = asked
            footage_ids = sorted(shas)
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
            why = ("confirmed an auto link" if link is not None else
                   (f"resolves ambiguity between {', '.join(json.loads(was[0]))}" if was else None))
            if fid in via:
                why = "; ".join(filter(None, [f"segment of footage {via[fid]}", why]))
            _audit_filing(catalog, "footage.file", fid, shas[fid], case_no, "manual", reason, actor, why,
                          link[1] if link is not None else now)
            changes.filed.append({"footage": fid, "case": case_no, "how": "manual", "reason": reason})
        _sync_case_no(conn, footage_ids)
        file_companions(catalog, footage_ids=list(footage_ids), actor=actor, trigger="filed by hand", changes=changes)
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
