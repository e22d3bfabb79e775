"""``evidock retention …``: what may be deleted, and deleting it (the only deletion of evidence)."""

from __future__ import annotations

from datetime import datetime

import click

from daemon.cases import retention
from daemon.cases.retention import RULE_LABELS
from daemon.cli import Station, cli, emit_json, pass_station, say
from daemon.cli.labels import label
from daemon.cli.timeopt import AS_OF
from daemon.display import Column, local_time, size, table
from daemon import i18n
from daemon.i18n import _


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
    tz = st.config.ui.timezone
    if p.delete:
        cols = [Column(_("id"), align=">"), Column(_("SHA-256"), 16), Column(_("size"), 10, ">"), Column(_("officer"), 10),
                Column(_("recorded"), 16), Column(_("rule"), 16), Column(_("kept until"), 16), Column(_("case"), 30)]
        click.echo(table(cols, [[i.footage_id, i.sha256[:16], size(i.size), i.officer,
                                 local_time(i.recorded_at, tz, missing=_("(time unknown)")), label(RULE_LABELS, i.rule),
                                 local_time(i.kept_until, tz), _(", ").join(i.cases) or "-"] for i in p.delete], empty=""))
    kept = _(", ").join(_("{n} by {rule}").format(n=n, rule=label(RULE_LABELS, rule)) for rule, n in p.kept.items()) or _("nothing")
    say(_("kept: {kept}").format(kept=kept))
    if p.pending:
        say(_("{n} earlier deletion(s) still to remove from the store; `retention apply` finishes them").format(
            n=len(p.pending)))
    click.echo(_("plan {plan_id} as of {as_of}: {n} to delete ({size})").format(
        plan_id=p.plan_id, as_of=local_time(p.as_of, tz), n=len(p.delete), size=size(p.bytes)))
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
        click.echo(_("deleted {sha256}  footage {id}  rule {rule}").format(sha256=d["sha256"], id=d["footage"], rule=label(RULE_LABELS, d["rule"])))
    for s in rep.skipped:
        say(_("skipped footage {id} ({sha256}): {why}").format(id=s["footage"], sha256=s["sha256"][:16], why=i18n.text(retention.row_text(s, "why"))))
    for e in rep.errors:
        say(_("error: {sha256}: {error}").format(sha256=e["sha256"], error=i18n.text(retention.row_text(e, "error"))))
    click.echo(_("plan {plan_id}: {n} objects deleted ({size}), {skipped} skipped, {errors} not deleted because of errors, "
                 "{finished} earlier deletions finished").format(
        plan_id=rep.plan_id, n=len(rep.deleted), size=size(sum(d["size"] or 0 for d in rep.deleted)),
        skipped=len(rep.skipped), errors=len(rep.errors), finished=len(rep.finished)))
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
    tz = st.config.ui.timezone
    cols = [Column(_("deleted"), 16), Column(_("by"), 16), Column(_("SHA-256"), 64), Column(_("id"), align=">"),
            Column(_("rule"), 16), Column(_("object"), 12)]
    click.echo(table(cols, [[local_time(r["deleted_at"], tz), r["deleted_by"], r["sha256"], r["footage_id"],
                             label(RULE_LABELS, r["rule"]), r["object_state"]] for r in rows], empty=_("retention has deleted nothing")))
    return 0
