"""``evidock audit …``: the hash-chained audit log."""

from __future__ import annotations

import click

from daemon.cli import Station, cli, emit_json, pass_station, say
from daemon.evidence.auditlog import check_chain, newest


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
            say(f"note: {n}")
        if rep.ok:
            click.echo(f"audit chain intact: {rep.rows} rows, head {rep.head}")
        else:
            click.echo(f"audit chain BROKEN: {rep.first_broken['message']}")
    return rep.exit_code


@audit_group.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Newest rows to show.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@pass_station
def audit_list(st: Station, limit: int, as_json: bool) -> int:
    """Show the newest audit rows.

    \b
    Example:
      evidock audit list --limit 20
    """
    with st.catalog() as catalog:
        rows = newest(catalog, limit)
    if as_json:
        emit_json(rows)
    else:
        for r in rows:
            click.echo(f"{r['id']:>6} {r['at']} {r['actor']:10} {r['event']:16} {r['subject']} {r['details']}")
    return 0
