"""Enforcement activities of a case (现场检查, 询问, 送达, 听证 …): a time window, a kind and the
officers it concerns. Auto-filing decides by them first (``daemon.cases.filing_rules``): a case
window is too wide when an officer has several open cases.

An activity without handlers applies to all of the case's handlers (as they are when filing
runs, so a later change of handlers counts). The same activity (case, kind, window, handlers)
added twice is one activity. An activity may lie outside its case's window (an inspection
often comes before the case is registered); it still decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from daemon.cases.fields import FieldProblem, _clean_text, _p_handlers, joined
from daemon.cases.filing import FilingChanges, _refile, activity_scope
from daemon.cases.filing_rules import FilingRules
from daemon.cases.records import need_case
from daemon.catalog.db import Catalog
from daemon.clock import iso, parse_time, utcnow
from daemon.errors import CaseError
from daemon.evidence import audit
from daemon.i18n import N_, Message, is_message


def _time(v: Any, what: str, tz: str, end: bool) -> str:
    if v is None or not str(v).strip():
        raise FieldProblem(N_("{what} is empty"), what=what)
    try:
        return iso(parse_time(str(v), tz, end_of_day=end))
    except ValueError as e:
        raise FieldProblem(N_("{what}: {error}"), what=what, error=e) from None


def parse_activity(given: dict[str, Any], tz: str) -> tuple[dict[str, Any], list[Any]]:
    """Parse ``case_no``, ``kind``, ``start``, ``end`` and optional ``handlers``; every problem collected."""
    out: dict[str, Any] = {}
    problems: list[Any] = []
    parsers = {
        "case_no": lambda v: _clean_text(v, N_("case number"), 100, True),
        "kind": lambda v: _clean_text(v, N_("activity kind"), 50, True),
        "start": lambda v: _time(v, N_("activity start (开始时间)"), tz, False),
        "end": lambda v: _time(v, N_("activity end (结束时间)"), tz, True),
        "handlers": lambda v: _p_handlers(v, tz) if v and (not isinstance(v, str) or v.strip()) else (),
    }
    for name, parse in parsers.items():
        try:
            out[name] = parse(given.get(name))
        except FieldProblem as e:
            problems.append(e.message())
        except ValueError as e:
            problems.append(e if is_message(e) else str(e))
    if not problems and out["end"] < out["start"]:
        problems.append(Message(N_("the activity ends ({end}) before it starts ({start})"), end=out["end"], start=out["start"]))
    return out, problems


def store_activity(catalog: Catalog, a: dict[str, Any], source: str, actor: str) -> tuple[dict[str, Any], bool]:
    """Insert one parsed activity unless it is there already (audited); returns it and whether it is new."""
    conn = catalog.conn
    case = need_case(conn, a["case_no"])
    key = ";".join(a["handlers"])
    row = conn.execute("SELECT id FROM case_activities WHERE case_no=? AND kind=? AND start_at=? AND end_at=? AND handlers_key=?",
                       (a["case_no"], a["kind"], a["start"], a["end"], key)).fetchone()
    if row is not None:
        return {**activity_json(a, row[0]), "officers": list(a["handlers"] or case["handlers"])}, False
    cur = conn.execute(
        "INSERT INTO case_activities (case_no, kind, start_at, end_at, all_handlers, handlers_key, source, created_at,"
        " created_by) VALUES (?,?,?,?,?,?,?,?,?)",
        (a["case_no"], a["kind"], a["start"], a["end"], 0 if a["handlers"] else 1, key, source, utcnow(), actor))
    conn.executemany("INSERT INTO case_activity_handlers (activity_id, badge) VALUES (?, ?)",
                     [(cur.lastrowid, b) for b in a["handlers"]])
    doc = activity_json(a, cur.lastrowid)
    audit.append(catalog, "case.activity", f"case:{a['case_no']}", {**doc, "source": source}, actor)
    return {**doc, "officers": list(a["handlers"] or case["handlers"])}, True


def activity_json(a: dict[str, Any], activity_id: int) -> dict[str, Any]:
    return {"id": activity_id, "case": a["case_no"], "kind": a["kind"], "start": a["start"], "end": a["end"],
            "handlers": list(a["handlers"]), "all_handlers": not a["handlers"]}


@dataclass
class ActivityResult:
    activity: dict[str, Any]
    action: str  # added | unchanged
    filing: FilingChanges

    def to_json(self) -> dict[str, Any]:
        return {"activity": {k: v for k, v in self.activity.items() if k != "officers"}, "action": self.action,
                "filing": self.filing.to_json()}


def add_activity(catalog: Catalog, given: dict[str, Any], tz: str, actor: str | None = None,
                 rules: FilingRules | None = None) -> ActivityResult:
    """Add an activity to a case (raw text as typed), then re-file the footage of its officers."""
    actor = actor or audit.current_actor()
    a, problems = parse_activity(given, tz)
    if problems:
        raise CaseError(N_("case {case_no}: {problems}; nothing was changed"), case_no=repr(str(given.get("case_no"))),
                        problems=joined(problems))
    with catalog.transaction():
        doc, new = store_activity(catalog, a, "cli", actor)
        filing = FilingChanges()
        if new:
            filing = _refile(catalog, officers=doc["officers"], actor=actor, rules=rules,
                             trigger=f"activity {a['kind']} added to case {a['case_no']}",
                             cases=[a["case_no"]], within=activity_scope(a["start"], a["end"]))
    return ActivityResult(doc, "added" if new else "unchanged", filing)
