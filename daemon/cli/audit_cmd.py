"""``evidock audit …``: the hash-chained audit log."""

from __future__ import annotations

import json
from datetime import datetime

import click

from daemon.cli import Station, cli, emit_json, emit_json_rows, pass_station, paging, say
from daemon.cli.timeopt import TimeParam
from daemon.clock import iso
from daemon.display import Column, local_time, table
from daemon.evidence.auditlog import check_chain, rows
from daemon import i18n
from daemon.i18n import _


@cli.group("audit")
def audit_group() -> None:
    """The audit log of every change to evidence.

    \b
    Example:
      evidock audit verify
    """


@audit_group.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_station
def audit_verify(st: Station, as_json: bool) -> int:
    """Check the whole hash chain; name the first edited, deleted or reordered row.

    Also holds the chain to its anchor (audit.head): rows cut off the end, or the anchor removed
    or garbled while the chain has rows, are breaks; an anchor that only lags is a note. Whether
    the catalog matches the chain is `evidock verify`'s check.

    Exit 0: intact; 2: broken.

    \b
    Example:
      evidock audit verify --json
    """
    with st.catalog() as catalog:
        rep = check_chain(catalog)
    if as_json:
        emit_json(rep.to_json())
    else:
        for n in rep.notes:
            say(_("note: {note}").format(note=i18n.text(n)))
        if rep.ok:
            click.echo(_("audit chain intact: {rows} rows, head {head}").format(rows=rep.rows, head=rep.head))
        else:
            click.echo(_("audit chain BROKEN: {problem}").format(problem=i18n.text(rep.first_broken.get("message_msg") or rep.first_broken["message"])))
    return rep.exit_code


def _details(details: object) -> str:
    """A row's details once, compact: the stored JSON text as it is (``table`` escapes and cuts it)."""
    if isinstance(details, str):
        return details
    return json.dumps(details, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


@audit_group.command("list")
@click.option("--event", metavar="EVENT", help="Only rows of this event (object.ingest, footage.file, …).")
@click.option("--subject", metavar="SUBJECT", help="Only rows about this subject (a SHA-256, case:NO, footage:ID, …).")
@click.option("--since", type=TimeParam(), help="Only rows written at or after this time (station time zone).")
@click.option("--until", type=TimeParam(), help="Only rows written before this time (station time zone).")
@paging.options()
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON array (streamed row by row: every row unless --limit).")
@pass_station
def audit_list(st: Station, event: str | None, subject: str | None, since: datetime | None, until: datetime | None,
               limit: int | None, after: int | None, before: int | None, as_json: bool) -> int:
    """Show audit rows: for people the newest 50 (the line after them says how to see more).

    Rows are in the chain's order; pages are keyed on the row number (--after, --before).

    \b
    Example:
      evidock audit list --limit 20
      evidock audit list --event footage.file --since 2026-03-01
    """
    latest = not as_json and limit is None
    limit = paging.PAGE if latest else limit
    with st.catalog() as catalog:
        got = rows(catalog, event=event, subject=subject, since=iso(since) if since else None,
                   until=iso(until) if until else None, limit=limit, after=after, before=before, latest=latest)
        if as_json:
            emit_json_rows(got)
            return 0
        page = list(got)
    tz = st.config.ui.timezone
    cols = [Column(_("row"), align=">"), Column(_("time"), 19), Column(_("by"), 16), Column(_("event"), 20),
            Column(_("subject"), 40), Column(_("details"), 80)]
    click.echo(table(cols, [[r["id"], local_time(r["at"], tz, seconds=True), r["actor"], r["event"], r["subject"],
                             _details(r["details"])] for r in page],
                     empty=_("the audit log is empty")))
    paging.hint(page, limit, latest, before, "id", after)
    return 0
