"""``evidock case …``: cases that footage is filed to (art. 11), by hand or from the case system."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from daemon.cases import activities, activity_import, filing, records, register
from daemon.cases.filing_rules import FilingRules
from daemon.cli import Station, cli, emit_json, emit_json_rows, pass_station, paging, say
from daemon.cli.devices_cmd import warn_unregistered
from daemon.cli.labels import CASE_STATUS, FILED_HOW, SENSITIVITY, label
from daemon.cli.timeopt import TimeParam
from daemon.clock import iso
from daemon.display import Column, local_time, shown, table
from daemon.i18n import N_, _, pgettext


@cli.group("case")
def case_group() -> None:
    """Cases (案件): case number, party, handling officers, window; footage is filed to them.

    \b
    Example:
      evidock case open 人社监察〔2026〕12号 --party 某某建筑公司 --handler 010203
    """


CASE_ACTIONS = {"opened": N_("case {case_no} opened"), "changed": N_("case {case_no} changed"),
                "closed": N_("case {case_no} closed"), "unchanged": N_("case {case_no} unchanged")}


# A case's fields as a change report names them (the CSV's Chinese headers, in Chinese).
CASE_FIELDS = {"party": N_("party"), "handlers": N_("handling officers"), "opened_at": N_("opened at"),
               "closed_at": N_("closed at"), "sensitivity": N_("sensitivity"), "notes": N_("notes"),
               "unit": N_("handling unit")}


def _field_value(field: str, value: object, tz: str) -> str:
    """One value of a case field for people: a local time, a sensitivity word, badges listed."""
    if value is None or value == "" or value == []:
        return "-"
    if field in ("opened_at", "closed_at"):
        return local_time(str(value), tz)
    if field == "sensitivity":
        return label(SENSITIVITY, str(value))
    if isinstance(value, (list, tuple)):
        return _(", ").join(shown(str(v)) for v in value)
    return shown(str(value))


def _report(result: register.CaseResult, as_json: bool, tz: str) -> int:
    if as_json:
        emit_json(result.to_json())
        return 0
    click.echo(_(CASE_ACTIONS.get(result.action, "case {case_no} {action}")).format(
        case_no=shown(result.case_no), action=result.action))
    for k, (old, new) in (result.changed.items() if result.action != "opened" else ()):
        say(_("  {field}: {old} → {new}").format(field=_(CASE_FIELDS[k]) if k in CASE_FIELDS else k,
                                                  old=_field_value(k, old, tz), new=_field_value(k, new, tz)))
    for line in result.filing.lines():
        say(line)
    return 0


@case_group.command("open")
@click.argument("case_no")
@click.option("--party", required=True, help="Party (当事人): the person or organisation.")
@click.option("--handler", "handlers", multiple=True, required=True, metavar="BADGE",
              help="Badge number (警号) of a handling officer; repeat for each.")
@click.option("--opened-at", metavar="TIME", help="When the case was opened (立案时间); default: now. "
              "Without an offset: ui.timezone.")
@click.option("--unit", help="Unit (单位) handling the case.")
@click.option("--sensitivity", type=click.Choice(["normal", "secret"]), default="normal", show_default=True,
              help="secret: a state-secret case (art. 10).")
@click.option("--notes", help="Free text kept with the case.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: the change and the filing it caused.")
@pass_station
def case_open(st: Station, case_no: str, party: str, handlers: tuple[str, ...], opened_at: str | None,
              unit: str | None, sensitivity: str, notes: str | None, as_json: bool) -> int:
    """Open a case; footage its handlers recorded inside its window is filed to it.

    A backdated --opened-at picks up footage already in the store.

    \b
    Example:
      evidock case open 2026-0042 --party 张三 --handler 010203 --handler 010204 --opened-at "2026-11-20 09:00"
    """
    with st.catalog() as catalog:
        result = register.open_case(catalog, {"case_no": case_no, "party": party, "handlers": list(handlers),
                                           "opened_at": opened_at, "unit": unit, "sensitivity": sensitivity,
                                           "notes": notes}, st.config.ui.timezone,
                                    rules=FilingRules.of(st.config.filing))
        warned = warn_unregistered(catalog, handlers)
    return _report(result, as_json, st.config.ui.timezone) or warned


@case_group.command("edit")
@click.argument("case_no")
@click.option("--party", help="New party.")
@click.option("--handler", "handlers", multiple=True, metavar="BADGE", help="New set of handling officers (repeat).")
@click.option("--opened-at", metavar="TIME", help="Corrected opening time.")
@click.option("--unit", help="New unit.")
@click.option("--sensitivity", type=click.Choice(["normal", "secret"]), help="New sensitivity.")
@click.option("--notes", help="New notes.")
@click.option("--reopen", is_flag=True, help="Reopen a closed case (clears its closing time).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: the change and the filing it caused.")
@pass_station
def case_edit(st: Station, case_no: str, party: str | None, handlers: tuple[str, ...], opened_at: str | None,
              unit: str | None, sensitivity: str | None, notes: str | None, reopen: bool, as_json: bool) -> int:
    """Change a case; its officers' footage is filed again under the new facts (audited).

    \b
    Example:
      evidock case edit 2026-0042 --handler 010203 --handler 010299 --opened-at "2026-11-19 14:00"
    """
    given = {"party": party, "handlers": list(handlers) or None, "opened_at": opened_at, "unit": unit,
             "sensitivity": sensitivity, "notes": notes, "closed_at": "" if reopen else None}
    with st.catalog() as catalog:
        result = register.edit_case(catalog, case_no, given, st.config.ui.timezone, rules=FilingRules.of(st.config.filing))
        warned = warn_unregistered(catalog, handlers)
    return _report(result, as_json, st.config.ui.timezone) or warned


@case_group.command("close")
@click.argument("case_no")
@click.option("--closed-at", metavar="TIME", help="When the case was closed (结案时间); default: now.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: the change and the filing it caused.")
@pass_station
def case_close(st: Station, case_no: str, closed_at: str | None, as_json: bool) -> int:
    """Close a case: its window ends; footage recorded later is no longer filed to it.

    Footage recorded inside the window and docked after the close is still filed to it.

    \b
    Example:
      evidock case close 2026-0042 --closed-at "2026-11-30 17:00"
    """
    with st.catalog() as catalog:
        result = register.close_case(catalog, case_no, closed_at, st.config.ui.timezone,
                                     rules=FilingRules.of(st.config.filing))
    return _report(result, as_json, st.config.ui.timezone)


@case_group.command("show")
@click.argument("case_no")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_station
def case_show(st: Station, case_no: str, as_json: bool) -> int:
    """Show one case: labels, window, handlers, the footage filed to it and footage it may own.

    \b
    Example:
      evidock case show 2026-0042 --json
    """
    with st.catalog() as catalog:
        case = records.get_case(catalog, case_no)
    if as_json:
        emit_json(case)
        return 0
    click.echo(case_text(case, st.config.ui.timezone))
    return 0


def case_text(case: dict[str, Any], tz: str) -> str:
    """One case for people: its labels, window and handlers, then its footage as a table."""
    # Case fields came from people or a CSV, officer and file data from recorders: all escaped.
    handlers = _(", ").join(f"{shown(h['badge'])}{' ' + shown(h['name']) if h['name'] else ''}" for h in case["handlers"])
    lines = [
        _("case {case_no} ({status}, {sensitivity})").format(
            case_no=shown(case["case_no"]), status=label(CASE_STATUS, case["status"]),
            sensitivity=label(SENSITIVITY, case["sensitivity"])),
        "  " + _("party: {party}").format(party=shown(case["party"])),
        "  " + _("unit: {unit}").format(unit=shown(case["unit"])),
        "  " + _("opened: {opened}  closed: {closed}").format(
            opened=local_time(case["opened_at"], tz), closed=local_time(case["closed_at"], tz, missing=_("(open)"))),
        "  " + _("handling officers: {handlers}").format(handlers=handlers or "-"),
        "",
    ]
    cols = [Column(_("id"), align=">"), Column(_("recorded"), 16), Column(_("officer"), 10), Column(_("name"), 8),
            Column(_("filed at"), 16),
            Column(_("how"), 8), Column(_("by"), 16), Column(_("SHA-256"), 12)]
    rows = [[f["id"], local_time(f["recorded_at"], tz, missing=_("(time unknown)")), f["officer"], f.get("officer_name"),
             local_time(f["filed_at"], tz), label(FILED_HOW, f["how"]), f["filed_by"], f["sha256"][:12]]
            for f in case["footage"]]
    if case.get("activities"):
        acols = [Column(_("activity"), 12), Column(_("start"), 16), Column(_("end"), 16), Column(_("handling officers"), 24)]
        arows = [[a["kind"], local_time(a["start"], tz), local_time(a["end"], tz),
                  "; ".join(a["handlers"]) if a["handlers"] else _("(all handlers)")] for a in case["activities"]]
        lines += [table(acols, arows, empty=""), ""]
    lines.append(table(cols, rows, empty=_("no footage filed to this case")))
    for a in case["ambiguous_footage"]:
        lines.append(_("footage {id} is ambiguous: it matches {cases}; file it with `evidock footage file`").format(
            id=a["id"], cases=_(", ").join(map(shown, a["candidates"]))))
    return "\n".join(lines)


@case_group.command("list")
@click.option("--status", type=click.Choice(["open", "closed"]), help="Only open or only closed cases.")
@click.option("--officer", metavar="BADGE", help="Only cases this officer handles.")
@click.option("--since", type=TimeParam(), help="Only cases opened at or after this time (station time zone).")
@click.option("--until", type=TimeParam(), help="Only cases opened before this time (station time zone).")
@paging.options(click.STRING, "CASE_NO")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON array (streamed row by row: every case unless --limit).")
@pass_station
def case_list(st: Station, status: str | None, officer: str | None, since: datetime | None, until: datetime | None,
              limit: int | None, after: str | None, before: str | None, as_json: bool) -> int:
    """List cases: number, status, window, handlers, party, footage filed.

    In the order they were opened; for people the most recent 50 (the line after them says how
    to see more). Pages are keyed on the case number (--after, --before).

    \b
    Example:
      evidock case list --status open --json
      evidock case list --officer 010203 --since 2026-01-01
    """
    latest = not as_json and limit is None
    limit = paging.PAGE if latest else limit
    with st.catalog() as catalog:
        got = records.list_cases(catalog, status, officer=officer, since=iso(since) if since else None,
                                 until=iso(until) if until else None, limit=limit, after=after, before=before,
                                 latest=latest)
        if as_json:
            emit_json_rows(got)
            return 0
        rows = list(got)
    tz = st.config.ui.timezone
    cols = [Column(_("case"), 30), Column(_("status"), 8), Column(pgettext("column", "opened"), 16),
            Column(pgettext("column", "closed"), 16),
            Column(_("handling officers"), 24), Column(_("footage"), align=">"), Column(_("party"), 30)]
    out = [[r["case_no"], label(CASE_STATUS, r["status"]), local_time(r["opened_at"], tz),
            local_time(r["closed_at"], tz, missing=_("(open)")), "; ".join(r["handlers"]), r["footage"], r["party"]]
           for r in rows]
    click.echo(table(cols, out, empty=_("no cases")))
    paging.hint(rows, limit, latest, before, "case_no", after)
    return 0


@case_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: created, updated, bad rows, filing.")
@pass_station
def case_import(st: Station, file: Path, as_json: bool) -> int:
    """Import the case system's CSV export; re-importing updates cases, never duplicates them.

    Columns: case_no, party, handlers (badges separated by ';'), opened_at, and optionally
    closed_at, unit, sensitivity — or the Chinese headers 案号, 当事人, 承办人警号, 立案时间,
    结案时间, 单位, 密级. UTF-8 (with or without BOM) and GBK/GB18030 are read; the encoding
    used is reported. Bad rows are reported by line and skipped; the good ones are imported.

    An activities CSV (told by its header) adds enforcement activities to existing cases:
    案号, 活动, 开始时间, 结束时间, and optionally 承办人警号 (empty: all of the case's
    handlers) — or case_no, activity, start, end, handlers.

    Exit 0: every row imported; 1: some rows skipped; 2: the file could not be imported.

    \b
    Example:
      evidock case import 案件导出.csv
      evidock case import 执法活动导出.csv
    """
    with st.catalog() as catalog:
        rep = activity_import.import_csv(catalog, file, st.config.ui.timezone, rules=FilingRules.of(st.config.filing))
    if as_json:
        emit_json(rep.to_json())
        return rep.exit_code
    say(_("read {file} as {encoding}").format(file=file, encoding=rep.encoding))
    if rep.ignored_columns:
        say(_("note: columns ignored: {columns}").format(columns=_(", ").join(rep.ignored_columns)))
    for p in rep.problems:
        where = _("{file}: line {line}").format(file=file, line=p.line)
        if p.case_no:
            where = _("{where} ({case_no})").format(where=where, case_no=shown(p.case_no))
        say(_("{where}: {problem}").format(where=where, problem=shown(p.text())))
    for line in rep.filing.lines():
        say(line)
    if rep.what == "activities":
        click.echo(_("{file} ({encoding}): {rows} rows; {added} activities added, {unchanged} unchanged, {bad} rows not "
                     "imported; {filed} footage filed, {unfiled} unfiled, {ambiguous} ambiguous").format(
            file=rep.path, encoding=rep.encoding, rows=rep.rows, added=len(rep.activities),
            unchanged=rep.activities_unchanged, bad=len(rep.problems), filed=len(rep.filing.filed),
            unfiled=len(rep.filing.unfiled), ambiguous=sum(1 for a in rep.filing.ambiguous if a["candidates"])))
        return rep.exit_code
    click.echo(_("{file} ({encoding}): {rows} rows; {created} cases created, {updated} updated, {unchanged} unchanged, "
                 "{bad} rows not imported; {filed} footage filed, {unfiled} unfiled, {ambiguous} ambiguous").format(
        file=rep.path, encoding=rep.encoding, rows=rep.rows, created=len(rep.created), updated=len(rep.updated),
        unchanged=len(rep.unchanged), bad=len(rep.problems), filed=len(rep.filing.filed),
        unfiled=len(rep.filing.unfiled), ambiguous=sum(1 for a in rep.filing.ambiguous if a["candidates"])))
    return rep.exit_code


@case_group.command("refile")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document of the filing changes.")
@pass_station
def case_refile(st: Station, as_json: bool) -> int:
    """Run auto-filing over all footage (e.g. after an ingest whose filing failed). Audited.

    \b
    Example:
      evidock case refile
    """
    with st.catalog() as catalog:
        changes = filing.refile_all(catalog, rules=FilingRules.of(st.config.filing))
    if as_json:
        emit_json(changes.to_json())
        return 0
    for line in changes.lines():
        say(line)
    click.echo(_("{filed} filed, {unfiled} unfiled, {ambiguous} newly ambiguous").format(
        filed=len(changes.filed), unfiled=len(changes.unfiled),
        ambiguous=sum(1 for a in changes.ambiguous if a["candidates"])))
    return 0


@case_group.group("activity")
def activity_group() -> None:
    """Enforcement activities of a case (现场检查, 询问, 送达, 听证 …): auto-filing decides by them first.

    \b
    Example:
      evidock case activity add 2026-0042 --start "2026-11-20 09:00" --end "2026-11-20 11:00" --kind 现场检查
    """


@activity_group.command("add")
@click.argument("case_no")
@click.option("--start", required=True, metavar="TIME", help="When the activity began (开始时间). Without an offset: ui.timezone.")
@click.option("--end", required=True, metavar="TIME", help="When it ended (结束时间); a bare date: the end of that day.")
@click.option("--kind", required=True, metavar="KIND", help="What it was: 现场检查, 询问, 送达, 听证 …")
@click.option("--handler", "handlers", multiple=True, metavar="BADGE",
              help="Badge of an officer taking part (repeat); default: all of the case's handlers.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: the activity and the filing it caused.")
@pass_station
def activity_add(st: Station, case_no: str, start: str, end: str, kind: str, handlers: tuple[str, ...], as_json: bool) -> int:
    """Add an activity to a case; its officers' footage recorded then is filed to the case.

    Footage within filing.activity_margin_min of the activity counts as inside it. Adding the
    same activity again changes nothing.

    \b
    Example:
      evidock case activity add 2026-0042 --start "2026-11-20 09:00" --end "2026-11-20 11:00" --kind 询问 --handler 010203
    """
    with st.catalog() as catalog:
        result = activities.add_activity(catalog, {"case_no": case_no, "start": start, "end": end, "kind": kind,
                                                   "handlers": list(handlers)}, st.config.ui.timezone,
                                         rules=FilingRules.of(st.config.filing))
    if as_json:
        emit_json(result.to_json())
        return 0
    a, tz = result.activity, st.config.ui.timezone
    msg = (_("case {case}: activity {kind} {start} – {end} added") if result.action == "added" else
           _("case {case}: activity {kind} {start} – {end} was there already"))
    click.echo(msg.format(case=shown(a["case"]), kind=shown(a["kind"]), start=local_time(a["start"], tz),
                          end=local_time(a["end"], tz)))
    for line in result.filing.lines():
        say(line)
    return 0
