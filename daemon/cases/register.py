"""Opening, changing and closing cases; each change re-files the footage it affects, audited."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from daemon.cases.fields import FIELDS, _window_problem, joined, parse_fields
from daemon.cases.filing import FilingChanges, _refile, case_scope
from daemon.cases.filing_rules import FilingRules
from daemon.cases.records import _case, need_case
from daemon.catalog.db import Catalog
from daemon.clock import iso, now_utc, utcnow
from daemon.display import local_time
from daemon.errors import CaseError
from daemon.evidence import audit
from daemon.i18n import N_, Message

log = logging.getLogger(__name__)


# The status of a case in a message for people (the same msgids as the CLI's labels).
CASE_STATUS = {"open": N_("open"), "closed": N_("closed")}


# -- opening, changing, closing cases ---------------------------------------------------------


@dataclass
class CaseResult:
    """One case after a change: what changed in it and in the filing."""

    case_no: str
    action: str  # opened | changed | closed | unchanged
    changed: dict[str, list[Any]]  # field -> [old, new]
    filing: FilingChanges

    def to_json(self) -> dict[str, Any]:
        return {"case": self.case_no, "action": self.action, "changed": self.changed, "filing": self.filing.to_json()}


def _store_case(catalog: Catalog, new: dict[str, Any], old: dict[str, Any] | None, source: str, actor: str) -> dict[str, list[Any]]:
    """Insert or update one case row and its handlers, audited; returns the fields that changed."""
    conn = catalog.conn
    now = utcnow()
    status = "closed" if new.get("closed_at") else "open"
    if old is None:
        conn.execute(
            "INSERT INTO cases (case_no, party, unit, opened_at, closed_at, status, sensitivity, notes, source,"
            " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (new["case_no"], new["party"], new.get("unit"), new["opened_at"], new.get("closed_at"), status,
             new.get("sensitivity") or "normal", new.get("notes"), source, now, now),
        )
        conn.executemany("INSERT INTO case_handlers (case_no, badge) VALUES (?, ?)",
                         [(new["case_no"], b) for b in new["handlers"]])
        snapshot = {k: (list(new[k]) if k == "handlers" else new.get(k)) for k in FIELDS}
        audit.append(catalog, "case.open", f"case:{new['case_no']}", {**snapshot, "status": status, "source": source}, actor)
        return {k: [None, v] for k, v in snapshot.items() if v is not None and k != "case_no"}
    changed = {}
    for k in FIELDS[1:]:
        if k in new and (new[k] or None) != (old.get(k) or None):
            changed[k] = [list(old[k]) if k == "handlers" else old.get(k), list(new[k]) if k == "handlers" else new[k]]
    if not changed:
        return {}
    merged = {**old, **{k: new[k] for k in changed}}
    status = "closed" if merged.get("closed_at") else "open"
    conn.execute(
        "UPDATE cases SET party=?, unit=?, opened_at=?, closed_at=?, status=?, sensitivity=?, notes=?, source=?,"
        " updated_at=? WHERE case_no=?",
        (merged["party"], merged.get("unit"), merged["opened_at"], merged.get("closed_at"), status,
         merged.get("sensitivity") or "normal", merged.get("notes"), source, now, old["case_no"]),
    )
    if "handlers" in changed:
        conn.execute("DELETE FROM case_handlers WHERE case_no = ?", (old["case_no"],))
        conn.executemany("INSERT INTO case_handlers (case_no, badge) VALUES (?, ?)",
                         [(old["case_no"], b) for b in merged["handlers"]])
    event = "case.close" if set(changed) == {"closed_at"} and merged.get("closed_at") else "case.change"
    audit.append(catalog, event, f"case:{old['case_no']}", {"changed": changed, "status": status, "source": source}, actor)
    return changed


def _invalid(case_no: str, problems: list[Any]) -> CaseError:
    return CaseError(N_("case {case_no}: {problems}; nothing was changed"), case_no=repr(case_no),
                     problems=joined(problems))


def open_case(catalog: Catalog, given: dict[str, Any], tz: str, actor: str | None = None,
              rules: FilingRules | None = None) -> CaseResult:
    """Open a new case from the fields given (raw text as typed), then file footage to it."""
    actor = actor or audit.current_actor()
    given = {"sensitivity": "normal", "opened_at": iso(now_utc()), **{k: v for k, v in given.items() if v is not None}}
    fields, problems = parse_fields(given, tz)
    case_no = fields.get("case_no") or str(given.get("case_no"))
    for k in ("party", "handlers"):
        if k not in given:
            problems.append(Message(N_("{field} is required"), field=k.replace("_", "-")))
    if not problems and (p := _window_problem(fields, tz)):
        problems.append(p)
    if problems:
        raise _invalid(case_no, problems)
    with catalog.transaction():
        old = _case(catalog.conn, case_no)
        if old is not None:
            raise CaseError(N_("case {case_no} already exists (opened {opened}, {status}); change it with "
                               "`evidock case edit {case} …`, close it with `evidock case close {case}`"),
                            case_no=repr(case_no), opened=local_time(old["opened_at"], tz), case=case_no,
                            status=Message(CASE_STATUS.get(old["status"], old["status"])))
        changed = _store_case(catalog, fields, None, "cli", actor)
        filing = _refile(catalog, officers=fields["handlers"], actor=actor, trigger=f"case {case_no} opened", rules=rules,
                         cases=[case_no], within=case_scope(catalog.conn, [case_no]))
    return CaseResult(case_no, "opened", changed, filing)


def edit_case(catalog: Catalog, case_no: str, given: dict[str, Any], tz: str, actor: str | None = None,
              rules: FilingRules | None = None) -> CaseResult:
    """Change the fields given (None: leave as is; ``closed_at=''`` reopens), then re-file its officers' footage."""
    actor = actor or audit.current_actor()
    given = {k: v for k, v in given.items() if v is not None and k != "case_no"}
    fields, problems = parse_fields(given, tz)
    if problems:
        raise _invalid(case_no, problems)
    with catalog.transaction():
        old = need_case(catalog.conn, case_no)
        if p := _window_problem({**old, **fields}, tz):
            raise _invalid(case_no, [p])
        changed = _store_case(catalog, fields, old, "cli", actor)
        filing = FilingChanges()
        if changed:
            officers = set(old["handlers"]) | set(fields.get("handlers", ()))
            filing = _refile(catalog, officers=officers, actor=actor, trigger=f"case {case_no} changed", rules=rules,
                             cases=[case_no], within=case_scope(catalog.conn, [case_no],
                                                                [(old["opened_at"], old["closed_at"])]))
    action = ("closed" if set(changed) == {"closed_at"} and fields.get("closed_at") else "changed") if changed else "unchanged"
    return CaseResult(case_no, action, changed, filing)


def close_case(catalog: Catalog, case_no: str, closed_at: str | None, tz: str, actor: str | None = None,
               rules: FilingRules | None = None) -> CaseResult:
    """Close a case at ``closed_at`` (default: now); footage recorded after it is no longer filed to it."""
    return edit_case(catalog, case_no, {"closed_at": closed_at or iso(now_utc())}, tz, actor, rules)
