"""``evidock verify``: the read-only scrub of stored objects."""

from __future__ import annotations

import click

from ..catalog import Catalog
from ..store import LocalObjectStore
from ..verify import verify_store
from . import Station, cli, emit_json, pass_station, say


@cli.command("verify")
@click.option("--max-duration", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Stop after this long; the next run continues where this one stopped.")
@click.option("--restart", is_flag=True, help="Ignore the checkpoint and start from the first object.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document with the findings.")
@pass_station
def verify_command(st: Station, max_duration: float | None, restart: bool, as_json: bool) -> int:
    """Re-hash stored objects from the disk and report damaged and missing ones (read-only).

    Exit 0: clean; 2: damage or missing objects found. The last line reads
    "checked N objects, M damaged, K missing".

    \b
    Example:
      evidock verify --max-duration 3600
    """
    max_duration = max_duration or st.config.verify.max_duration_s
    with Catalog(st.data_dir) as catalog:
        rep = verify_store(catalog, LocalObjectStore(st.data_dir), max_duration, restart)
    if as_json:
        emit_json(rep.to_json())
    else:
        for d in rep.damaged:
            say(f"damaged: {d['sha256']}: {d['reason']}")
        for m in rep.missing:
            say(f"missing: {m}")
        for u in rep.unreferenced:
            say(f"note: object {u} is in the store but not in the catalog (left by an interrupted offload)")
        click.echo(rep.summary())
    return rep.exit_code
