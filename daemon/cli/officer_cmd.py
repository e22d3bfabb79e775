"""``evidock officer …`` (the registry of officers by name, art. 11) and ``evidock devices assign|
assignments`` (pooled recorders signed out for a shift, 领用)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from daemon.cases.officer_import import import_officers
from daemon.catalog import officers
from daemon.cli import Station, cli, emit_json, pass_station, say
from daemon.cli.devices_cmd import devices_group, warn_unregistered
from daemon.cli.timeopt import AS_OF
from daemon.display import Column, local_time, shown, table
from daemon.i18n import _


@cli.group("officer")
def officer_group() -> None:
    """Officers by badge (警号) and name (姓名): the registry whose names footage, cases and devices show.

    \b
    Example:
      evidock officer add 010203 --name 张伟 --unit 劳动监察一队
    """


def _one(o: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(o)
        return
    say(_("officer {badge} {name} ({unit})").format(badge=shown(o["badge"]), name=shown(o["name"]),
                                                    unit=shown(o["unit"])))


@officer_group.command("add")
@click.argument("badge")
@click.option("--name", required=True, help="The officer's name (姓名).")
@click.option("--unit", help="The officer's unit (单位).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: the officer.")
@pass_station
def officer_add(st: Station, badge: str, name: str, unit: str | None, as_json: bool) -> int:
    """Register an officer (audited); one only seen on a recorder becomes registered.

    \b
    Example:
      evidock officer add 010203 --name 张伟 --unit 劳动监察一队
    """
    with st.catalog() as catalog:
        o = officers.add_officer(catalog, badge, name, unit)
    _one(o, as_json)
    return 0


@officer_group.command("edit")
@click.argument("badge")
@click.option("--name", help="New name.")
@click.option("--unit", help="New unit.")
@click.option("--user", metavar="NAME", help="The login (user name) of the officer: the station's API knows them by it.")
@click.option("--no-user", is_flag=True, help="Untie the officer's login.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: the officer.")
@pass_station
def officer_edit(st: Station, badge: str, name: str | None, unit: str | None, user: str | None, no_user: bool,
                 as_json: bool) -> int:
    """Change a registered officer's name, unit or login (audited).

    The login (--user) ties the user the officer logs in as to the badge: through the station's
    API they see their own footage, and their unit is the officer's.

    \b
    Example:
      evidock officer edit 010203 --unit 劳动监察二队
      evidock officer edit 010203 --user zhangwei
    """
    if user is not None and no_user:
        raise click.UsageError(_("--user and --no-user exclude each other"))
    with st.catalog() as catalog:
        o = officers.edit_officer(catalog, badge, name, unit,
                                  user=None if no_user else officers.KEEP if user is None else user)
    _one(o, as_json)
    return 0


@officer_group.command("list")
@click.option("--registered", is_flag=True, help="Only officers staff registered (not those only seen on a recorder).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@pass_station
def officer_list(st: Station, registered: bool, as_json: bool) -> int:
    """List officers: badge, name, unit, and whether staff registered them or they were only seen.

    \b
    Example:
      evidock officer list --json | jq '.[] | select(.registered | not)'
    """
    with st.catalog() as catalog:
        rows = officers.list_officers(catalog, registered_only=registered)
    if as_json:
        emit_json(rows)
        return 0
    tz = st.config.ui.timezone
    cols = [Column(_("officer"), 10), Column(_("name"), 10), Column(_("unit"), 20), Column(_("registered"), 16)]
    click.echo(table(cols, [[o["badge"], o["name"], o["unit"],
                             local_time(o["registered_at"], tz) if o["registered"] else _("no (only seen)")]
                            for o in rows], empty=_("no officers")))
    return 0


@officer_group.command("show")
@click.argument("badge")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_station
def officer_show(st: Station, badge: str, as_json: bool) -> int:
    """Show one officer: name, unit, registration, recorders bound to them, their assignments.

    \b
    Example:
      evidock officer show 010203
    """
    with st.catalog() as catalog:
        o = officers.show_officer(catalog, badge)
    if as_json:
        emit_json(o)
        return 0
    tz = st.config.ui.timezone
    click.echo(_("officer {badge} {name}").format(badge=shown(o["badge"]), name=shown(o["name"])))
    click.echo("  " + _("unit: {unit}").format(unit=shown(o["unit"])))
    if o["user"]:
        click.echo("  " + _("login: {user}").format(user=shown(o["user"])))
    click.echo("  " + (_("registered: {when}").format(when=local_time(o["registered_at"], tz)) if o["registered"]
                       else _("not in the registry (only seen on a recorder or an ingest)")))
    click.echo("  " + _("recorders bound: {devices}").format(devices=_(", ").join(shown(d) for d in o["devices"]) or "-"))
    click.echo(_assignment_table(o["assignments"], tz))
    return 0


@officer_group.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: the import report.")
@pass_station
def officer_import(st: Station, file: Path, as_json: bool) -> int:
    """Import the bureau's officer list: CSV (UTF-8 or GBK) with 警号, 姓名 and optionally 单位.

    English headers badge, name, unit work too. Bad rows are reported by line and skipped
    (exit 1); the rest are registered or updated in one transaction.

    \b
    Example:
      evidock officer import 民警名册.csv
    """
    with st.catalog() as catalog:
        rep = import_officers(catalog, file)
    if as_json:
        emit_json(rep.to_json())
        return rep.exit_code
    say(_("{file} ({encoding}): {rows} rows; {created} officers registered, {updated} updated, {unchanged} unchanged, "
          "{problems} rows not imported").format(file=shown(rep.path), encoding=rep.encoding, rows=rep.rows,
                                                 created=len(rep.created), updated=len(rep.updated),
                                                 unchanged=len(rep.unchanged), problems=len(rep.problems)))
    for p in rep.problems:
        say(_("  line {line}: {reason}").format(line=p.line, reason=p.reason.text()))
    return rep.exit_code


def _assignment_table(rows: list[dict[str, Any]], tz: str) -> str:
    cols = [Column(_("id"), align=">"), Column(_("recorder"), 16), Column(_("officer"), 10), Column(_("name"), 8),
            Column(_("from"), 16), Column(_("until"), 16), Column(_("written to recorder"), 16)]
    return table(cols, [[a["id"], a["device"], a["officer"], a["officer_name"], local_time(a["from_at"], tz),
                         local_time(a["until_at"], tz) if a["until_at"] else _("(open)"),
                         local_time(a["bound_at"], tz) if a["bound_at"] else "-"] for a in rows],
                 empty=_("no assignments"))


@devices_group.command("assign")
@click.argument("serial")
@click.option("--officer", "badge", required=True, metavar="BADGE", help="Badge number (警号) of the officer signing it out.")
@click.option("--from", "from_at", type=AS_OF, metavar="TIME", help="Start of the assignment; default: now.")
@click.option("--until", "until_at", type=AS_OF, metavar="TIME", help="End; default: until the next assignment.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: the assignment.")
@pass_station
def devices_assign(st: Station, serial: str, badge: str, from_at: datetime | None, until_at: datetime | None,
                   as_json: bool) -> int:
    """Sign a pooled recorder out to an officer (领用): its footage of that time is theirs.

    Footage is attributed to the officer assigned when it was recorded (the corrected time),
    else to the recorder's own binding. The officer is written into the recorder (WriteZFYInfo)
    at its next dock; an open assignment of the same recorder ends where this one begins.

    \b
    Example:
      evidock devices assign ZFY-0001 --officer 010203 --from "2026-11-27 08:00" --until "2026-11-27 20:00"
    """
    with st.catalog() as catalog:
        a = officers.assign(catalog, serial, badge, from_at, until_at)
        code = warn_unregistered(catalog, [a["officer"]])
    if as_json:
        emit_json(a)
        return code
    tz = st.config.ui.timezone
    say(_("recorder {serial} assigned to {officer} {name} from {start} until {until} (assignment {id})").format(
        serial=shown(a["device"]), officer=shown(a["officer"]), name=shown(a["officer_name"], ""),
        start=local_time(a["from_at"], tz), until=local_time(a["until_at"], tz) if a["until_at"] else _("(open)"),
        id=a["id"]))
    return code


@devices_group.command("assignments")
@click.argument("serial", required=False)
@click.option("--officer", "badge", metavar="BADGE", help="Only this officer's assignments.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@pass_station
def devices_assignments(st: Station, serial: str | None, badge: str | None, as_json: bool) -> int:
    """List the assignment history (newest first) of one recorder, one officer, or all.

    \b
    Example:
      evidock devices assignments ZFY-0001 --json
    """
    with st.catalog() as catalog:
        rows = officers.assignments(catalog, serial=serial, badge=badge)
    if as_json:
        emit_json(rows)
        return 0
    click.echo(_assignment_table(rows, st.config.ui.timezone))
    return 0


