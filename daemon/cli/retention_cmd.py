"""``evidock retention …``: what may be deleted, and deleting it (the only deletion of evidence)."""

from __future__ import annotations

from datetime import datetime

import click

from daemon.cases import retention
from daemon.cli import Station, cli, emit_json, pass_station, say
from daemon.cli.timeopt import AS_OF
from daemon.display import cell, shown
from daemon.errors import format_bytes


@cli.group("retention")
def retention_group() -> None:
    """Retention of stored footage: plan (read-only), apply (deletes, audited), deleted.

    Nothing filed to an open case or on legal hold is ever deleted.

    \b
    Example:
      evidock retention plan
    """


@retention_group.command("plan")
@click.option("--as-of", type=AS_OF, metavar="TIME", help="Plan as of this time instead of now, to look ahead (1970-01-01 … 9000-12-31 UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: what would go, by which rule, and the plan id.")
@pass_station
def retention_plan(st: Station, as_of: datetime | None, as_json: bool) -> int:
    """Show what retention would delete and by which rule (read-only).

    The plan id names exactly that list; give it to `retention apply --plan-id` to delete
    exactly what was reviewed.

    \b
    Example:
      evidock retention plan --as-of 2027-06-01 --json
    """
    with st.catalog() as catalog:
        p = retention.plan(catalog, st.config.retention, as_of)
    if as_json:
        emit_json(p.to_json())
        return 0
    for i in p.delete:
        click.echo(f"delete {i.footage_id:>6} {i.sha256[:16]}  {i.size:>12}  {cell(i.officer, 8)} recorded {i.recorded_at or '(time unknown)'}  "
                   f"rule {i.rule} (kept until {i.kept_until}){'  cases ' + ','.join(map(shown, i.cases)) if i.cases else ''}")
    kept = ", ".join(f"{n} by {rule}" for rule, n in p.kept.items()) or "nothing"
    say(f"kept: {kept}")
    if p.pending:
        say(f"{len(p.pending)} earlier deletion(s) still to remove from the store; `retention apply` finishes them")
    click.echo(f"plan {p.plan_id} as of {p.as_of}: {len(p.delete)} to delete ({format_bytes(p.bytes)})")
    return 0


@retention_group.command("apply")
@click.option("--plan-id", metavar="ID", help="Delete only if the plan is still exactly this one (from `retention plan`).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: deleted, skipped, errors.")
@pass_station
def retention_apply(st: Station, plan_id: str | None, as_json: bool) -> int:
    """Delete what `retention plan` lists now; each deletion is audited (SHA-256, rule, actor).

    Every item is re-checked as it is deleted: footage put on hold or filed to an open case
    in the meantime is skipped. Exit 0: all deleted; 1: some skipped; 2: some not deleted.

    \b
    Example:
      evidock retention apply --plan-id 3f9c0a1be2d4c5f6
    """
    with st.catalog() as catalog:
        rep = retention.apply(catalog, st.context, st.config.retention, expect_plan_id=plan_id)
    if as_json:
        emit_json(rep.to_json())
        return rep.exit_code
    for d in rep.deleted:
        click.echo(f"deleted {d['sha256']}  footage {d['footage']}  rule {d['rule']}")
    for s in rep.skipped:
        say(f"skipped footage {s['footage']} ({s['sha256'][:16]}): {s['why']}")
    for e in rep.errors:
        say(f"error: {e['sha256']}: {e['error']}")
    click.echo(rep.summary())
    return rep.exit_code


@retention_group.command("deleted")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@pass_station
def retention_deleted(st: Station, as_json: bool) -> int:
    """List everything retention deleted: what it was, by which rule, who, when.

    \b
    Example:
      evidock retention deleted --json
    """
    with st.catalog() as catalog:
        rows = retention.deleted(catalog)
    if as_json:
        emit_json(rows)
        return 0
    for r in rows:
        click.echo(f"{r['deleted_at']} {cell(r['deleted_by'], 10)} {r['sha256']}  footage {r['footage_id']}  rule {r['rule']}  "
                   f"object {r['object_state']}")
    return 0
