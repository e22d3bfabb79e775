"""Importing the case system's CSV export (UTF-8 or GBK, English or Chinese headers): bad rows
are reported by line and skipped, a case number twice with different data imports neither.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import stat
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import Any

from daemon.cases.fields import _window_problem, joined, parse_fields
from daemon.cases.filing import FilingChanges, _refile, officer_scopes
from daemon.cases.filing_rules import FilingRules
from daemon.cases.records import _case
from daemon.cases.register import _store_case
from daemon.catalog.db import Catalog
from daemon.errors import EXIT_OK, EXIT_WARNING, CaseImportError
from daemon.evidence import audit
from daemon.i18n import Message, N_, os_error, text

# -- case CSV import --------------------------------------------------------------------------

# Header as the bureau's case system exports it (English or Chinese) -> field.
COLUMNS: dict[str, str] = {
    "case_no": "case_no", "案号": "case_no",
    "party": "party", "当事人": "party",
    "handlers": "handlers", "承办人警号": "handlers",
    "opened_at": "opened_at", "立案时间": "opened_at",
    "closed_at": "closed_at", "结案时间": "closed_at",
    "unit": "unit", "单位": "unit",
    "sensitivity": "sensitivity", "密级": "sensitivity",
}
REQUIRED_COLUMNS = ("case_no", "party", "handlers", "opened_at")

# Tried in order. GB18030 is a superset of GBK (what Chinese office software calls "ANSI").
ENCODINGS: tuple[tuple[str, str], ...] = (("utf-8", "UTF-8"), ("gb18030", "GB18030 (GBK)"))


def decode_csv(raw: bytes, path: str) -> tuple[str, str]:
    """The text of a case CSV and the name of the encoding it was in."""
    if raw.startswith(codecs.BOM_UTF8):
        try:
            return raw[len(codecs.BOM_UTF8):].decode("utf-8"), "UTF-8 with BOM"
        except UnicodeDecodeError as e:
            raise CaseImportError(N_("{path}: starts with a UTF-8 BOM but byte {byte} is not UTF-8; "
                                     "save it again as CSV UTF-8"), path=path, byte=e.start) from None
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise CaseImportError(N_("{path}: is UTF-16 (\"Unicode text\"); save it as CSV (UTF-8 or GBK) and import again"),
                              path=path)
    for codec, name in ENCODINGS:
        try:
            return raw.decode(codec), name
        except UnicodeDecodeError:
            continue
    raise CaseImportError(N_("{path}: is neither UTF-8 nor GBK/GB18030 text; save it as CSV UTF-8 and import again"),
                          path=path)


@dataclass
class RowProblem:
    line: int
    case_no: str | None
    reason: str  # English: the JSON's
    message: Any = field(default=None, repr=False, compare=False)  # the reason as a message, for people

    def text(self) -> str:
        """The reason in the reader's language."""
        return text(self.message) if self.message is not None else self.reason

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "case_no": self.case_no, "reason": self.reason}


@dataclass
class ImportReport:
    path: str
    encoding: str
    rows: int = 0
    created: list[str] = field(default_factory=list)
    updated: list[dict[str, Any]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    filing: FilingChanges = field(default_factory=FilingChanges)
    what: str = "cases"  # cases | activities (daemon.cases.activity_import)
    activities: list[dict[str, Any]] = field(default_factory=list)  # activities added
    activities_unchanged: int = 0

    @property
    def exit_code(self) -> int:
        return EXIT_WARNING if self.problems else EXIT_OK

    def summary(self) -> str:
        if self.what == "activities":
            return (f"{self.path} ({self.encoding}): {self.rows} rows; {len(self.activities)} activities added, "
                    f"{self.activities_unchanged} unchanged, {len(self.problems)} rows not imported; "
                    f"{len(self.filing.filed)} footage filed, {len(self.filing.unfiled)} unfiled, "
                    f"{sum(1 for a in self.filing.ambiguous if a['candidates'])} ambiguous")
        return (f"{self.path} ({self.encoding}): {self.rows} rows; {len(self.created)} cases created, "
                f"{len(self.updated)} updated, {len(self.unchanged)} unchanged, {len(self.problems)} rows not imported; "
                f"{len(self.filing.filed)} footage filed, {len(self.filing.unfiled)} unfiled, "
                f"{sum(1 for a in self.filing.ambiguous if a['candidates'])} ambiguous")

    def to_json(self) -> dict[str, Any]:
        if self.what == "activities":
            return {"file": self.path, "encoding": self.encoding, "what": self.what, "rows": self.rows,
                    "activities": self.activities, "unchanged": self.activities_unchanged,
                    "problems": [p.to_json() for p in self.problems], "ignored_columns": self.ignored_columns,
                    "filing": self.filing.to_json(), "summary": self.summary()}
        return {
            "file": self.path, "encoding": self.encoding, "what": self.what, "rows": self.rows, "created": self.created,
            "updated": self.updated, "unchanged": self.unchanged,
            "problems": [p.to_json() for p in self.problems], "ignored_columns": self.ignored_columns,
            "filing": self.filing.to_json(), "summary": self.summary(),
        }


def _header(cells: list[str], path: str, columns_of: dict[str, str] | None = None,
            required: tuple[str, ...] = REQUIRED_COLUMNS) -> tuple[dict[int, str], list[str]]:
    """Map column positions to fields; unknown headers are ignored (the export has more columns)."""
    cols = columns_of or COLUMNS
    columns: dict[int, str] = {}
    ignored: list[str] = []
    seen: dict[str, str] = {}
    for i, cell in enumerate(cells):
        name = unicodedata.normalize("NFC", cell).strip().lstrip("\ufeff")
        fld = cols.get(name) or cols.get(name.lower())
        if fld is None:
            if name:
                ignored.append(name)
            continue
        if fld in seen:
            raise CaseImportError(N_("{path}: columns {first!r} and {second!r} both give {field}; keep one and import again"),
                                  path=path, first=seen[fld], second=name, field=fld)
        seen[fld] = name
        columns[i] = fld
    missing = [f for f in required if f not in seen]
    if missing:
        want = ", ".join(f"{f} ({next(k for k, v in cols.items() if v == f and not k.isascii())})" for f in missing)
        has: object = ", ".join(repr(c.strip()) for c in cells) or Message(N_("nothing"))
        raise CaseImportError(N_("{path}: missing column(s) {want}; the header has: {has}. Nothing was imported"),
                              path=path, want=want, has=has)
    return columns, ignored


# A case export of a whole bureau is a few MiB; a bigger "CSV" is the wrong file, read into memory.
MAX_CSV_BYTES = 64 * 1024 * 1024


def read_csv_bytes(path: Path) -> bytes:
    """The bytes of a case CSV: a regular file of at most ``MAX_CSV_BYTES``, else CaseImportError.

    A FIFO, a device (``/dev/zero`` never ends) or a directory is refused before anything is read:
    the file is opened non-blocking (a FIFO without a writer would block the open itself) and its
    type checked on the open descriptor, so it cannot be swapped between the check and the read.
    """
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except IsADirectoryError:
        raise CaseImportError(N_("{name}: is a directory, not a CSV file; give the exported .csv file"), name=name) from None
    except OSError as e:
        raise CaseImportError(N_("{name}: cannot read it ({error}); check the path"), name=name, error=os_error(e)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = Message(N_("a FIFO (named pipe)") if stat.S_ISFIFO(st.st_mode) else N_("a device")
                           if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else N_("a directory")
                           if stat.S_ISDIR(st.st_mode) else N_("not a regular file"))
            raise CaseImportError(N_("{name}: is {kind}, not a regular file; only a saved CSV file is imported — "
                                     "save the export to a file and import that. Nothing was imported"),
                                  name=name, kind=kind)
        if st.st_size > MAX_CSV_BYTES:
            raise CaseImportError(N_("{name}: is {size} bytes, more than the {max_mib} MiB a "
                                     "case CSV may have; is it the right file? Split the export. Nothing was imported"),
                                  name=name, size=st.st_size, max_mib=MAX_CSV_BYTES // (1024 * 1024))
        os.set_blocking(fd, True)
        chunks, size = [], 0
        while size <= MAX_CSV_BYTES:  # a file that grows while it is read is still bounded
            chunk = os.read(fd, min(1 << 20, MAX_CSV_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_CSV_BYTES:
            raise CaseImportError(N_("{name}: grew past {max_mib} MiB while it was read; "
                                     "import a finished export. Nothing was imported"),
                                  name=name, max_mib=MAX_CSV_BYTES // (1024 * 1024))
        return b"".join(chunks)
    except OSError as e:
        raise CaseImportError(N_("{name}: cannot read it ({error}); check the path"), name=name, error=os_error(e)) from None
    finally:
        os.close(fd)


def _problem(line: int, case_no: str | None, message: Message) -> RowProblem:
    return RowProblem(line, case_no, str(message), message)


def open_csv(path: Path) -> tuple[str, Any, list[str]]:
    """A CSV file's encoding, its reader (after the header) and its header row."""
    name = str(path)
    raw = read_csv_bytes(Path(path))
    text, encoding = decode_csv(raw, name)
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise CaseImportError(N_("{name}: is empty; export the cases with a header row and import again"),
                              name=name) from None
    except csv.Error as e:
        raise CaseImportError(N_("{name}: line 1: {error}"), name=name, error=str(e)) from None
    return encoding, reader, header


def csv_rows(reader: Any, columns: dict[int, str],
             on_error: Callable[[int, Message], None]) -> Iterator[tuple[int, list[str], dict[str, str]]]:
    """The rows of an import after its header: (the row's first line, its cells, its cells by
    field), blank rows skipped. A row that is not valid CSV ends the reading: told to ``on_error``
    with its line (the rows before it stand)."""
    line = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            on_error(line, Message(N_("not valid CSV ({error})"), error=str(e)))
            return
        start, line = line, reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue  # blank line
        yield start, cells, {fld: (cells[i] if i < len(cells) else "") for i, fld in columns.items()}


def read_case_csv(path: Path, tz: str) -> tuple[ImportReport, list[tuple[int, dict[str, Any]]]]:
    """Parse a case export: the good rows (line, fields) and a report of the bad ones. Writes nothing."""
    name = str(path)
    encoding, reader, header = open_csv(path)
    columns, ignored = _header(header, name)
    report = ImportReport(name, encoding, ignored_columns=ignored)
    parsed: list[tuple[int, dict[str, Any]]] = []
    for start, cells, given in csv_rows(reader, columns,
                                        lambda ln, m: report.problems.append(_problem(ln, None, m))):
        report.rows += 1
        case_no = given["case_no"].strip() or None
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
            report.problems.append(_problem(start, case_no, Message(
                N_("{cells} cells but the header has {header} (an unquoted comma?)"), cells=len(cells), header=len(header))))
            continue
        fields, problems = parse_fields(given, tz)
        if not problems and (p := _window_problem(fields, tz)):
            problems.append(p)
        if problems:
            report.problems.append(_problem(start, case_no, joined(problems)))
            continue
        parsed.append((start, fields))
    # A case number twice in one file: identical rows are one case; differing rows cannot be
    # told apart, so none of them is imported.
    by_no: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for ln, f in parsed:
        by_no[f["case_no"]].append((ln, f))
    good: list[tuple[int, dict[str, Any]]] = []
    for case_no, rows in by_no.items():
        first_line, first_fields = rows[0]
        if all(f == first_fields for _, f in rows[1:]):
            good.append(rows[0])
            for ln, _ in rows[1:]:
                report.problems.append(_problem(ln, case_no, Message(
                    N_("repeats line {line} (same case number, same data); imported once"), line=first_line)))
        else:
            lines = ", ".join(str(ln) for ln, _ in rows)
            for ln, _ in rows:
                report.problems.append(_problem(ln, case_no, Message(
                    N_("case number {case_no} is on lines {lines} with different data; none of them was imported — "
                       "fix the export"), case_no=case_no, lines=lines)))
    report.problems.sort(key=lambda p: p.line)
    good.sort(key=lambda r: r[0])
    return report, good


def import_cases(catalog: Catalog, path: Path, tz: str, actor: str | None = None,
                 rules: FilingRules | None = None) -> ImportReport:
    """Import the bureau's case export: good rows create or update cases (keyed by case number),
    bad rows are reported by line, then the footage of every officer concerned is re-filed.
    One transaction: the cases, the filing and their audit entries commit together."""
    actor = actor or audit.current_actor()
    report, good = read_case_csv(Path(path), tz)
    source = f"import {Path(path).name}"
    with catalog.transaction():
        changed_cases: list[tuple[str, set[str], list[tuple[str, str | None]]]] = []
        for line, fields in good:
            old = _case(catalog.conn, fields["case_no"])
            changed = _store_case(catalog, fields, old, f"{source} line {line}", actor)
            if old is None:
                report.created.append(fields["case_no"])
            elif changed:
                report.updated.append({"case": fields["case_no"], "changed": changed})
            else:
                report.unchanged.append(fields["case_no"])
            if old is None or changed:
                changed_cases.append((fields["case_no"], set(fields["handlers"]) | set(old["handlers"] if old else ()),
                                      [(old["opened_at"], old["closed_at"])] if old else []))
        if changed_cases:
            # as a case open or edit: each case's officers' footage inside its window (old and new)
            # and its activities', and what is filed to it, not everything its officers recorded
            scopes = officer_scopes(catalog.conn, changed_cases)
            _refile(catalog, officers=scopes, actor=actor, trigger=source, changes=report.filing, rules=rules,
                    cases=[c for c, _o, _w in changed_cases], within=scopes)
        audit.append(catalog, "case.import", f"file:{Path(path).name}", {
            "file": str(path), "encoding": report.encoding, "rows": report.rows, "created": len(report.created),
            "updated": len(report.updated), "unchanged": len(report.unchanged),
            "problems": [p.to_json() for p in report.problems],
        }, actor)
    return report
