"""``evidock officer import``: the bureau's officer list as CSV (UTF-8 or GBK; 警号, 姓名, 单位),
read as the case import reads its export (``daemon.cases.csvimport``: encodings, header aliases,
problems collected per row). Bad rows are reported by line and skipped; a badge twice with
different data imports neither. One transaction, audited (``officer.import``).
"""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.cases.csvimport import csv_rows, decode_csv, read_csv_bytes
from daemon.catalog import officers
from daemon.catalog.db import Catalog
from daemon.errors import EXIT_OK, EXIT_WARNING, CaseImportError, EvidockError
from daemon.evidence import audit
from daemon.i18n import N_, Message, message_of

COLUMNS: dict[str, str] = {
    "badge": "badge", "警号": "badge",
    "name": "name", "姓名": "name",
    "unit": "unit", "单位": "unit",
}
REQUIRED = ("badge", "name")


@dataclass
class OfficerRowProblem:
    line: int
    badge: str | None
    reason: Message

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "badge": self.badge, "reason": str(self.reason)}


@dataclass
class OfficerImport:
    path: str
    encoding: str
    rows: int = 0
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[OfficerRowProblem] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_WARNING if self.problems else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {"file": self.path, "encoding": self.encoding, "rows": self.rows, "created": self.created,
                "updated": self.updated, "unchanged": self.unchanged,
                "problems": [p.to_json() for p in self.problems], "ignored_columns": self.ignored_columns}


def _header(cells: list[str], path: str) -> tuple[dict[int, str], list[str]]:
    columns: dict[int, str] = {}
    ignored: list[str] = []
    for i, cell in enumerate(cells):
        name = unicodedata.normalize("NFC", cell).strip().lstrip("\ufeff")
        fld = COLUMNS.get(name) or COLUMNS.get(name.lower())
        if fld is None or fld in columns.values():
            if name:
                ignored.append(name)
            continue
        columns[i] = fld
    missing = [f for f in REQUIRED if f not in columns.values()]
    if missing:
        raise CaseImportError(N_("{path}: missing column(s) {missing} (警号, 姓名; 单位 optional); the header has: "
                                 "{header}. Nothing was imported"),
                              path=path, missing=", ".join(missing), header=", ".join(repr(c.strip()) for c in cells))
    return columns, ignored


def read_officer_csv(path: Path) -> tuple[OfficerImport, list[tuple[int, str, str, str | None]]]:
    """Parse an officer list: the good rows (line, badge, name, unit) and a report. Writes nothing."""
    name = str(path)
    text, encoding = decode_csv(read_csv_bytes(Path(path)), name)
    first = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if "\t" in first and "," not in first else ",")
    try:
        header = next(reader)
    except StopIteration:
        raise CaseImportError(N_("{path}: is empty; export the officers with a header row (警号, 姓名, 单位)"),
                              path=name) from None
    except csv.Error as e:
        raise CaseImportError(N_("{path}: line 1: {error}"), path=name, error=str(e)) from None
    columns, ignored = _header(header, name)
    report = OfficerImport(name, encoding, ignored_columns=ignored)
    parsed: dict[str, list[tuple[int, str, str | None]]] = {}
    for start, cells, given in csv_rows(reader, columns,
                                        lambda ln, m: report.problems.append(OfficerRowProblem(ln, None, m))):
        report.rows += 1
        raw_badge = given["badge"].strip() or None
        try:
            badge = officers.clean_badge(given["badge"])
            person = officers.clean_text(given["name"], N_("name"), required=True)
            unit = officers.clean_text(given.get("unit"), N_("unit"))
        except EvidockError as e:
            report.problems.append(OfficerRowProblem(start, raw_badge, message_of(e)))
            continue
        assert person is not None
        parsed.setdefault(badge, []).append((start, person, unit))
    good: list[tuple[int, str, str, str | None]] = []
    for badge, rows in parsed.items():
        if all(r[1:] == rows[0][1:] for r in rows[1:]):
            good.append((rows[0][0], badge, rows[0][1], rows[0][2]))
            for ln, *_ in rows[1:]:
                report.problems.append(OfficerRowProblem(ln, badge, Message(
                    N_("repeats line {line} (same badge, same data); imported once"), line=rows[0][0])))
        else:
            lines = ", ".join(str(r[0]) for r in rows)
            for ln, *_ in rows:
                report.problems.append(OfficerRowProblem(ln, badge, Message(
                    N_("badge {badge} is on lines {lines} with different data; none of them was imported — fix the list"),
                    badge=badge, lines=lines)))
    report.problems.sort(key=lambda p: p.line)
    good.sort()
    return report, good


def import_officers(catalog: Catalog, path: Path, actor: str | None = None) -> OfficerImport:
    """Register or update every good row of an officer list, in one transaction, audited."""
    actor = actor or audit.current_actor()
    report, good = read_officer_csv(Path(path))
    source = f"import {Path(path).name}"
    with catalog.transaction():
        for line, badge, person, unit in good:
            action = officers.store_officer(catalog, badge, person, unit, f"{source} line {line}", actor)
            getattr(report, action).append(badge)
        audit.append(catalog, "officer.import", f"file:{Path(path).name}", {
            "file": str(path), "encoding": report.encoding, "rows": report.rows, "created": len(report.created),
            "updated": len(report.updated), "unchanged": len(report.unchanged),
            "problems": [p.to_json() for p in report.problems]}, actor)
    return report
