"""``evidock staging …``: partial transfers waiting to be resumed."""

from __future__ import annotations

import click

from daemon.cli import Station, cli, emit_json, pass_station, say
from daemon.display import Column, shown, size, table
from daemon.evidence.staging import discard_partial
from daemon.i18n import _


@cli.group("staging")
def staging_group() -> None:
    """Partial transfers (interrupted offloads) kept in the staging area.

    \b
    Example:
      evidock staging list
    """


@staging_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@pass_station
def staging_list(st: Station, as_json: bool) -> int:
    """List partial transfers: recorder, path, bytes staged, resume point.

    \b
    Example:
      evidock staging list --json
    """
    rows = st.context.staging.list()
    if as_json:
        emit_json(rows)
    else:
        cols = [Column(_("key"), 64), Column(_("staged"), 10, ">"), Column(_("of"), 10, ">"),
                Column(_("recorder"), 20), Column(_("file"), 60)]
        click.echo(table(cols, [[r["key"], size(r["staged_bytes"]), size(r["size"]), r["source_id"], r["path"]]
                                for r in rows], empty=_("no partial transfers")))
    return 0


@staging_group.command("discard")
@click.argument("key")
@click.option("--reason", required=True, help="Why the partial is dropped (goes into the audit log).")
@pass_station
def staging_discard(st: Station, key: str, reason: str) -> int:
    """Delete one partial transfer whose source is gone for good (audited).

    KEY is a key from `evidock staging list`, or enough of its start to name one.

    \b
    Example:
      evidock staging discard 3f2a91 --reason "recorder card replaced, file lost"
    """
    with st.catalog() as catalog:
        entry = discard_partial(catalog, st.context.staging, key, reason)
    say(_("discarded partial {key} ({staged} of {path})").format(
        key=entry["key"], staged=size(entry["staged_bytes"]), path=shown(entry["path"])))
    return 0
