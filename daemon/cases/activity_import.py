"""``case import`` of either export: a case CSV (``daemon.cases.csvimport``) or an activities CSV.

An activities CSV is told by its header: it has an activity column (活动 / activity) and a start
column (开始时间 / start). Its columns: 案号, 活动, 开始时间, 结束时间 and optionally 承办人警号
(badges separated by ';'; empty: all of the case's handlers). Same encodings and row checks as
the case CSV; a row naming a case that does not exist is reported and skipped (import the cases
first). Importing the same activities again adds nothing. Then the footage of every officer
concerned is re-filed, backdated activities included, all in one transaction.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from pathlib import Path
from typing import Any

from daemon.cases import csvimport
from daemon.cases.activities import parse_activity, store_activity
from daemon.cases.csvimport import ImportReport, _header, _problem, csv_rows, open_csv
from daemon.cases.fields import joined
from daemon.cases.filing import _refile, activity_scope
from daemon.cases.filing_rules import FilingRules
from daemon.catalog.db import Catalog
from daemon.errors import NotFound
from daemon.evidence import audit
from daemon.i18n import N_, Message

ACTIVITY_COLUMNS: dict[str, str] = {
    "case_no": "case_no", "案号": "case_no",
    "activity": "kind", "kind": "kind", "活动": "kind",
    "start": "start", "开始时间": "start",
    "end": "end", "结束时间": "end",
    "handlers": "handlers", "承办人警号": "handlers",
}
REQUIRED = ("case_no", "kind", "start", "end")


def is_activities_header(header: list[str]) -> bool:
    names = {ACTIVITY_COLUMNS.get(unicodedata.normalize("NFC", c).strip().lstrip("\ufeff").lower())
             or ACTIVITY_COLUMNS.get(unicodedata.normalize("NFC", c).strip().lstrip("\ufeff")) for c in header}
    return {"kind", "start"} <= names


def import_csv(catalog: Catalog, path: Path, tz: str, actor: str | None = None,
               rules: FilingRules | None = None) -> ImportReport:
    """Import a case CSV or an activities CSV, whichever the header says it is."""
    _, _, header = open_csv(Path(path))
    if is_activities_header(header):
        return import_activities(catalog, path, tz, actor, rules)
    return csvimport.import_cases(catalog, path, tz, actor, rules)


def import_activities(catalog: Catalog, path: Path, tz: str, actor: str | None = None,
                      rules: FilingRules | None = None) -> ImportReport:
    """Import an activities CSV (see the module docstring); bad rows reported by line and skipped."""
    actor = actor or audit.current_actor()
    name = str(path)
    encoding, reader, header = open_csv(Path(path))
    columns, ignored = _header(header, name, ACTIVITY_COLUMNS, REQUIRED)
    report = ImportReport(name, encoding, ignored_columns=ignored, what="activities")
    parsed: list[tuple[int, dict[str, Any]]] = []
    for start, cells, given in csv_rows(reader, columns,
                                        lambda ln, m: report.problems.append(_problem(ln, None, m))):
        report.rows += 1
        case_no = given["case_no"].strip() or None
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
            report.problems.append(_problem(start, case_no, Message(
                N_("{cells} cells but the header has {header} (an unquoted comma?)"), cells=len(cells), header=len(header))))
            continue
        fields, problems = parse_activity(given, tz)
        if problems:
            report.problems.append(_problem(start, case_no, joined(problems)))
            continue
        parsed.append((start, fields))
    source = f"import {Path(path).name}"
    with catalog.transaction():
        scopes: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
        cases: set[str] = set()
        for ln, a in parsed:
            try:
                doc, new = store_activity(catalog, a, f"{source} line {ln}", actor)
            except NotFound:
                report.problems.append(_problem(ln, a["case_no"], Message(
                    N_("no case {case_no}: import the cases (or open it) first, then the activities"), case_no=a["case_no"])))
                continue
            if new:
                report.activities.append({k: v for k, v in doc.items() if k != "officers"})
                for badge in doc["officers"]:  # a new activity refiles its officers' footage around it only
                    scopes[badge] += activity_scope(a["start"], a["end"])
                cases.add(a["case_no"])
            else:
                report.activities_unchanged += 1
        if scopes:
            _refile(catalog, officers=scopes, actor=actor, trigger=source, changes=report.filing, rules=rules,
                    cases=cases, within=dict(scopes))
        audit.append(catalog, "case.import", f"file:{Path(path).name}", {
            "file": str(path), "encoding": report.encoding, "what": "activities", "rows": report.rows,
            "added": len(report.activities), "unchanged": report.activities_unchanged,
            "problems": [p.to_json() for p in report.problems],
        }, actor)
    report.problems.sort(key=lambda p: p.line)
    return report
