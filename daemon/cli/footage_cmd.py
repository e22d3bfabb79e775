"""``evidock footage …``: list what the catalog holds."""

from __future__ import annotations

import base64

import click

from daemon.cases.listing import list_footage
from daemon.cli import Station, cli, emit_json, pass_station
from daemon.display import cell, shown


@cli.group("footage")
def footage_group() -> None:
    """Footage in the catalog.

    \b
    Example:
      evidock footage list --json
    """


@footage_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array of footage rows.")
@click.option("--case", "case_no", metavar="CASE_NO", help="Only footage filed to this case.")
@click.option("--unfiled", is_flag=True, help="Only footage filed to no case.")
@pass_station
def footage_list(st: Station, as_json: bool, case_no: str | None, unfiled: bool) -> int:
    """List every footage row: id, hash, size, recorder, officer, source path, time, flags.

    With --json each row also has its cases, filed_at and overdue (art. 11 deadline).

    \b
    Example:
      evidock footage list --json | jq '.[] | select(.important)'
      evidock footage list --unfiled
    """
    with st.catalog() as catalog:
        rows = list_footage(catalog, st.config.filing.deadline_days, case_no=case_no, unfiled=unfiled)
    if as_json:
        emit_json(rows)
        return 0
    for r in rows:
        flag = "!" if r["important"] else " "
        # Names from a recorder are escaped (daemon/display.py): a newline or an ESC in a file name
        # must neither split a row nor reach the terminal. The exact bytes when they are not UTF-8.
        b64 = r.get("source_path_bytes_b64")
        name = shown(base64.b64decode(b64) if b64 else r["source_path"])
        click.echo(f"{r['id']:>6} {flag} {r['sha256'][:16]}  {r['size']:>12}  {cell(r['device'], 14)} "
                   f"{cell(r['officer'], 8)} {r['recorded_at'] or '-':25} {name}")
    return 0
