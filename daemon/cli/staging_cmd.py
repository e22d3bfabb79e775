"""``evidock staging …``: partial transfers waiting to be resumed."""

from __future__ import annotations

import click

from daemon.catalog.db import Catalog
from daemon.cli import Station, cli, emit_json, pass_station, say
from daemon.errors import NotFound
from daemon.evidence import audit
from daemon.evidence.staging import Staging
from daemon.evidence.store import LocalObjectStore


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
    rows = Staging(LocalObjectStore(st.data_dir).staging_dir).list()
    if as_json:
        emit_json(rows)
    else:
        for r in rows:
            click.echo(f"{r['key']}  {r['staged_bytes']:>12}/{r['size'] or 0:<12} {r['source_id'] or '-'}  {r['path'] or '-'}")
    return 0


@staging_group.command("discard")
@click.argument("key")
@click.option("--reason", required=True, help="Why the partial is dropped (goes into the audit log).")
@pass_station
def staging_discard(st: Station, key: str, reason: str) -> int:
    """Delete one partial transfer whose source is gone for good (audited).

    \b
    Example:
      evidock staging discard 3f2a…e1 --reason "recorder card replaced, file lost"
    """
    store = LocalObjectStore(st.data_dir)
    with Catalog(st.data_dir) as catalog:
        # Deleted inside the transaction that audits it: a failed delete records nothing.
        with catalog.transaction():
            try:
                entry = Staging(store.staging_dir).discard(key)
            except KeyError:
                raise NotFound(f"no partial transfer with key {key}; see `evidock staging list`") from None
            audit.append(catalog, "staging.discard", f"partial:{key}", {**entry, "reason": reason})
    say(f"discarded partial {key} ({entry['staged_bytes']} bytes of {entry['path']})")
    return 0
