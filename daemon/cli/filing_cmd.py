"""``evidock footage file | unfile | overdue | ambiguous | hold``: filing footage to cases, the 2-day rule, legal hold."""

from __future__ import annotations

from datetime import datetime

import click

from daemon.cases import filing, reports, retention
from daemon.cases.filing_rules import FilingRules
from daemon.cases.listing import FootageQuery
from daemon.catalog.kinds import KINDS
from daemon.cli import Station, emit_json, emit_json_object, pass_station, paging, say
from daemon.cli.footage_cmd import footage_group
from daemon.cli.labels import HOLD_STATES, label, yes_no
from daemon.cli.timeopt import AS_OF, TimeParam
from daemon.clock import iso
from daemon.display import Column, duration, local_time, shown, table
from daemon.i18n import _, ngettext


@footage_group.command("file")
@click.argument("footage_ids", metavar="ID…", nargs=-1, required=True, type=click.IntRange(min=1))
@click.option("--case", "case_no", required=True, metavar="CASE_NO", help="The case to file the footage to.")
@click.option("--reason", required=True, help="Why (goes into the audit log with your user name).")
@click.option("--segment", is_flag=True, help="File each ID's whole segment: the other chunks of the same recording.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document of the changes.")
@pass_station
def footage_file(st: Station, footage_ids: tuple[int, ...], case_no: str, reason: str, segment: bool, as_json: bool) -> int:
    """File footage to a case by hand (footage may belong to several cases).

    All the IDs are filed or, if one is unknown, none. Filing resolves an ambiguous match and
    confirms an automatic one; auto-filing never undoes it. With --segment, the chunks a
    recorder split the same recording into are filed with it (see `evidock footage ambiguous`).

    \b
    Example:
      evidock footage file 12 13 --case 2026-0042 --reason "recorded at the site inspection"
      evidock footage file 12 --segment --case 2026-0042 --reason "询问笔录 of 2026-11-20"
    """
    with st.catalog() as catalog:
        changes = filing.file_footage(catalog, footage_ids, case_no, reason, segment=segment,
                                      rules=FilingRules.of(st.config.filing))
    if as_json:
        emit_json(changes.to_json())
        return 0
    for line in changes.lines():
        click.echo(line)
    for u in changes.unchanged:
        say(_("footage {id} was already filed to case {case} by hand").format(id=u["footage"], case=shown(u["case"])))
    return 0


@footage_group.command("unfile")
@click.argument("footage_id", metavar="ID", type=click.IntRange(min=1))
@click.option("--case", "case_no", required=True, metavar="CASE_NO", help="The case to take the footage out of.")
@click.option("--reason", required=True, help="Why (goes into the audit log with your user name).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document of the changes.")
@pass_station
def footage_unfile(st: Station, footage_id: int, case_no: str, reason: str, as_json: bool) -> int:
    """Take footage out of a case by hand; auto-filing will not file it there again.

    \b
    Example:
      evidock footage unfile 12 --case 2026-0042 --reason "wrong case: recorded at another site"
    """
    with st.catalog() as catalog:
        changes = filing.unfile_footage(catalog, footage_id, case_no, reason)
    if as_json:
        emit_json(changes.to_json())
        return 0
    for line in changes.lines():
        click.echo(line)
    return 0


@footage_group.command("overdue")
@click.option("--as-of", type=AS_OF, metavar="TIME", help="Judge the deadline at this time instead of now (1970-01-01 … 9000-12-31 UTC).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON document: the summary by officer, then the rows (streamed: every row unless --limit).")
@click.option("--officer", metavar="BADGE", help="Only footage attributed to this officer.")
@click.option("--device", metavar="SERIAL", help="Only footage from this recorder.")
@click.option("--since", type=TimeParam(), help="Only footage recorded at or after this time (station time zone).")
@click.option("--until", type=TimeParam(), help="Only footage recorded before this time (station time zone).")
@click.option("--kind", type=click.Choice(KINDS), help="Only files of this kind (video, audio, photo, track, log, system, other).")
@paging.options()
@pass_station
def footage_overdue(st: Station, as_of: datetime | None, as_json: bool, officer: str | None, device: str | None,
                    since: datetime | None, until: datetime | None, kind: str | None, limit: int | None,
                    after: int | None, before: int | None) -> int:
    """Footage still unfiled more than filing.deadline_days (art. 11: 2 days) after recording.

    Only what must be filed: video, audio, photo (and files of no known kind). GPS tracks and
    logs go with the recordings they overlap; the recorder's system files are never listed.
    First each officer with how many are overdue and how late the latest is, then the rows in
    id order: for people, without --limit, the most recent 50 (the line after them says how to
    see the page before); pages are keyed on the id (--after, --before) as in `footage list`.
    Exit 0: nothing overdue; 1: something is.

    \b
    Example:
      evidock footage overdue --as-of "2026-12-01 08:00" --json
      evidock footage overdue --officer 010203 --limit 100
    """
    people_page = not as_json and limit is None
    q = FootageQuery(officer=officer, device=device, since=iso(since) if since else None,
                     until=iso(until) if until else None, kind=kind,
                     limit=paging.PAGE if people_page else limit, after=after, before=before, latest=people_page)
    tz = st.config.ui.timezone
    with st.catalog() as catalog:
        rep = reports.overdue(catalog, st.config.filing.deadline_days, as_of, q)
        if as_json:
            emit_json_object(rep.head(), "footage", rep.footage)
            return rep.exit_code
        page = list(rep.footage)
    for o in rep.officers:
        no_officer = _("(no officer)")
        who = f"{shown(o['officer'], no_officer)}{' ' + shown(o['name']) if o['name'] else ''}"
        click.echo(ngettext("officer {who}: {n} recording unfiled, the latest {late} overdue",
                            "officer {who}: {n} recordings unfiled, the latest {late} overdue", o["count"]).format(
            who=who, n=o["count"], late=duration(o["most_late_s"])))
    if page:
        cols = [Column(_("id"), align=">"), Column(_("officer"), 10), Column(_("recorded"), 16), Column(_("ingested"), 16),
                Column(_("overdue by"), 14, ">"), Column(_("ambiguous between"), 30), Column(_("file"), 60)]
        rows = [[f["id"], shown(f["officer"], "-"), local_time(f["recorded_at"], tz, missing=_("(time unknown)")),
                 local_time(f["ingested_at"], tz), duration(f["late_by_s"]), ", ".join(f["ambiguous"]) or "-",
                 f["source_path"]] for f in page]
        click.echo("")
        click.echo(table(cols, rows, empty=""))
        paging.hint(page, q.limit, q.latest, before, "id", after)
    say(ngettext("{n} recording overdue as of {as_of} (deadline {days} days)",
                 "{n} recordings overdue as of {as_of} (deadline {days} days)", rep.count).format(
        n=rep.count, as_of=local_time(rep.as_of, tz), days=rep.deadline_days))
    return rep.exit_code


@footage_group.command("ambiguous")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array: one entry per segment.")
@pass_station
def footage_ambiguous(st: Station, as_json: bool) -> int:
    """The clerk's queue: footage matching several cases, one line per segment, soonest deadline first.

    Each segment (the chunks of one recording) with its candidate cases; file it with
    `evidock footage file ID --segment --case CASE_NO`. Exit 0: empty; 1: something waits.

    \b
    Example:
      evidock footage ambiguous --json
    """
    with st.catalog() as catalog:
        queue = reports.ambiguous_queue(catalog, st.config.filing.deadline_days, FilingRules.of(st.config.filing))
    if as_json:
        emit_json(queue)
        return 1 if queue else 0
    tz = st.config.ui.timezone
    cols = [Column(_("due"), 16), Column(_("overdue"), 6), Column(_("officer"), 10), Column(_("footage"), 16), Column(_("recorded"), 16),
            Column(_("until"), 16), Column(_("candidates"), 40)]
    rows = [[local_time(q["due_at"], tz), yes_no(q["overdue"]), q["officer"] or "-",
             ", ".join(map(str, q["segment"])), local_time(q["start"], tz, missing=_("(time unknown)")),
             local_time(q["end"], tz, missing="-"), ", ".join(q["candidates"])] for q in queue]
    click.echo(table(cols, rows, empty=_("no ambiguous footage")))
    return 1 if queue else 0


@footage_group.command("hold")
@click.argument("footage_ids", metavar="ID…", nargs=-1, required=True, type=click.IntRange(min=1))
@click.option("--reason", required=True, help="Why (goes into the audit log with your user name).")
@click.option("--release", is_flag=True, help="Lift the hold instead of setting it.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array of the results.")
@pass_station
def footage_hold(st: Station, footage_ids: tuple[int, ...], reason: str, release: bool, as_json: bool) -> int:
    """Put footage on legal hold: retention never deletes it until the hold is lifted.

    \b
    Example:
      evidock footage hold 12 --reason "administrative review 2026-07 requested"
    """
    with st.catalog() as catalog:
        fn = retention.release_hold if release else retention.set_hold
        rows = fn(catalog, footage_ids, reason)
    if as_json:
        emit_json(rows)
        return 0
    for r in rows:
        click.echo(_("footage {id}: {state}").format(id=r["footage"], state=label(HOLD_STATES, r["state"])))
    return 0
