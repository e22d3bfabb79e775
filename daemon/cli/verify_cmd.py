"""``evidock verify``: the read-only scrub of stored objects."""

from __future__ import annotations

import math
from typing import Any

import click

from daemon.cli import Station, cli, emit_json, pass_station, say
from daemon.display import shown
from daemon.evidence.verify import verify_store
from daemon import i18n
from daemon.i18n import _


def _finite_seconds(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    # FloatRange lets nan through (every comparison with nan is false) and inf means "no limit"
    # in disguise; both would silently turn a nightly slice into an unbounded scrub.
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(_("{value} is not a number of seconds; give a finite time such as 3600").format(value=value))
    return value


@cli.command("verify")
@click.option("--max-duration", type=click.FloatRange(min=0, min_open=True), callback=_finite_seconds, metavar="SECONDS",
              help="Stop after this long; the next run continues where this one stopped.")
@click.option("--restart", is_flag=True, help="Ignore the checkpoint and start from the first object.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document with the findings.")
@pass_station
def verify_command(st: Station, max_duration: float | None, restart: bool, as_json: bool) -> int:
    """Check the catalog against the audit log, re-hash stored objects from the disk (read-only).

    Every footage row, object, sighting, filing and hold must match the audit entries that
    created and changed it; every ingested object must be in the store or have an audited
    deletion; every object must hash to its name and be read-only. Strays in objects/ are
    reported and skipped. `evidock audit verify` checks the chain itself.

    Exit 0: clean; 1: only stray files found; 2: damage, missing objects or catalog rows that do
    not match the audit log. The last line counts the objects checked, damaged and missing.

    \b
    Example:
      evidock verify --max-duration 3600
    """
    max_duration = max_duration or st.config.verify.max_duration_s
    with st.catalog() as catalog:
        rep = verify_store(catalog, st.context.store, max_duration, restart)
    if as_json:
        emit_json(rep.to_json())
    else:
        for d in rep.damaged:
            say(_("damaged: {sha256}: {reason}").format(sha256=d["sha256"], reason=i18n.text(d.get("reason_msg") or d["reason"])))
        for m in rep.missing:
            say(_("missing: {object}").format(object=m))
        for m in rep.mismatches:
            say(_("mismatch: {problem}").format(problem=i18n.text(m.get("problem_msg") or m["problem"])))
        for s in rep.strays:
            say(_("stray: {path}: {why}; not evidence — move it out of objects/ after a look").format(
                path=shown(s["path"]), why=i18n.text(s.get("why_msg") or s["why"])))
        for u in rep.unreferenced:
            if u in rep.pending_removal:
                why = _("deleted by retention at audit row {row}; the next `evidock retention apply` removes the file").format(
                    row=rep.pending_removal[u])
            else:
                why = _("left by an interrupted offload; harmless, its content is right")
            say(_("note: object {sha256} is in the store but not in the catalog ({why})").format(sha256=u, why=why))
        click.echo(summary_text(rep))
    return rep.exit_code


def summary_text(rep: Any) -> str:
    """The scrub's last line for people (the JSON keeps the library's English ``summary``)."""
    text = _("checked {checked} objects, {damaged} damaged, {missing} missing").format(
        checked=rep.checked, damaged=len(rep.damaged), missing=len(rep.missing))
    if rep.mismatches:
        text += _(", {n} catalog row(s) not matching the audit log").format(n=len(rep.mismatches))
    if rep.strays:
        text += _(", {n} stray file(s) in objects/").format(n=len(rep.strays))
    if rep.in_bucket:
        text += _(", {n} checked in the bucket (not cached locally)").format(n=rep.in_bucket)
    if not rep.complete:
        text += _(" (stopped at the time limit; the next run continues after {after}…)").format(after=rep.next_after[:16])
    return text
