"""``evidock footage …``: list what the catalog holds."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import click

from daemon.cases.listing import FootageQuery, iter_footage
from daemon.catalog.kinds import COMPANION, DEVICE, KINDS
from daemon.cli import Station, cli, emit_json_rows, pass_station, paging
from daemon.cli.timeopt import TimeParam
from daemon.cli.labels import FILE_KINDS, label, yes_no
from daemon.clock import iso
from daemon.display import Column, local_time, size, table
from daemon.i18n import _


@cli.group("footage")
def footage_group() -> None:
    """Footage in the catalog.

    \b
    Example:
      evidock footage list --json
    """


@footage_group.command("list")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON array of footage rows (streamed row by row: every row unless --limit).")
@click.option("--officer", metavar="BADGE", help="Only footage attributed to this officer.")
@click.option("--device", metavar="SERIAL", help="Only footage from this recorder.")
@click.option("--case", "case_no", metavar="CASE_NO", help="Only footage filed to this case.")
@click.option("--since", type=TimeParam(), help="Only footage recorded at or after this time (station time zone).")
@click.option("--until", type=TimeParam(), help="Only footage recorded before this time (station time zone).")
@click.option("--unfiled", is_flag=True, help="Only footage filed to no case.")
@click.option("--kind", type=click.Choice(KINDS), help="Only files of this kind (video, audio, photo, track, log, system, other).")
@paging.options()
@pass_station
def footage_list(st: Station, as_json: bool, officer: str | None, device: str | None, case_no: str | None,
                 since: datetime | None, until: datetime | None, unfiled: bool, kind: str | None, limit: int | None,
                 after: int | None, before: int | None) -> int:
    """List footage: id, recording time (station time zone), recorder, officer, size, kind, case, file.

    The case column names the cases a recording is filed to, or says it is unfiled (and overdue
    past the art. 11 deadline). Every stored file has a kind: only video, audio and photo (and
    files of no known kind) must be filed; GPS tracks and logs go with the recordings they
    overlap, system files belong to the recorder. With --json each row has every field, exact
    sizes and ISO-8601 times, and its kind, cases, filed_at and overdue.

    Rows come in id order (the order they were stored). For people, without --limit, a page of
    the most recent 50; the line after it says how to see the page before. Pages are keyed on
    the id (--after, --before), so rows stored meanwhile never repeat or shift a page.

    \b
    Example:
      evidock footage list --officer 010203 --since 2026-03-01 --limit 100
      evidock footage list --after 1200 --limit 100
      evidock footage list --json | jq '.[] | select(.important)'
      evidock footage list --unfiled --kind video
    """
    people_page = not as_json and limit is None
    q = FootageQuery(officer=officer, device=device, case_no=case_no, since=iso(since) if since else None,
                     until=iso(until) if until else None, kind=kind, unfiled=unfiled,
                     limit=paging.PAGE if people_page else limit, after=after, before=before, latest=people_page)
    with st.catalog() as catalog:
        rows = iter_footage(catalog, st.config.filing.deadline_days, q)
        if as_json:
            emit_json_rows(rows)
            return 0
        page = list(rows)
    click.echo(footage_table(page, st.config.ui.timezone))
    paging.hint(page, q.limit, q.latest, before, "id", after)
    return 0


def footage_table(rows: list[dict[str, Any]], tz: str) -> str:
    """Footage rows as a table for people: local times, human sizes, the cases each is filed to."""
    cols = [Column(_("id"), align=">"), Column(_("recorded"), 16), Column(_("recorder"), 16), Column(_("officer"), 28),
            Column(_("name"), 8), Column(_("size"), 10, ">"), Column(_("kind"), 12), Column(_("case"), 30),
            Column(_("important"), 6), Column(_("SHA-256"), 12),
            Column(_("file"), 60)]
    out = []
    for r in rows:
        # Names from a recorder are escaped (daemon/display.py): a newline or an ESC in a file name
        # must neither split a row nor reach the terminal. The exact bytes when they are not UTF-8.
        b64 = r.get("source_path_bytes_b64")
        name = base64.b64decode(b64) if b64 else r["source_path"]
        when = r.get("recorded_at_corrected") or r.get("recorded_at")
        if r.get("cases"):
            filed = ", ".join(r["cases"])
        elif r.get("kind") in DEVICE:
            filed = _("the recorder's, not filed")
        elif r.get("kind") in COMPANION:
            filed = _("unfiled (companion)")
        elif r.get("ambiguous"):
            filed = _("ambiguous")
        else:
            filed = _("unfiled, overdue") if r.get("overdue") else _("unfiled")
        officer = r["officer"]
        if r.get("bound_officer") and r["bound_officer"] != officer:
            # assigned (pooled recorder) to another officer than the recorder's binding: both shown
            officer = _("{officer} (recorder: {bound})").format(officer=officer, bound=r["bound_officer"])
        out.append([r["id"], local_time(when, tz), r["device"], officer, r.get("officer_name"), size(r["size"]),
                    label(FILE_KINDS, r.get("kind")), filed,
                    yes_no(r["important"]), r["sha256"][:12], name])
    return table(cols, out, empty=_("no footage"))
